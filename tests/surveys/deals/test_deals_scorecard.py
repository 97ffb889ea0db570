"""Deal scorecards against an independent computation: counts, per-deal
shares with Wilson intervals, revenue-weighted shares with the cap and Kish's
effective n, weighted means, slices, period-over-period tests, the
calibration table, the CSV (issue 15)."""

import csv
import io
import math

import pytest

from surveys.deals.scorecard import Options, deal_scorecard
from tests.builders.deal_scorecards import LOSS_REASONS, lost_moment, seed

Z = 1.959963984540054


def quarter(d):
    return f"{d.year}-Q{(d.month + 2) // 3}"


def wilson(successes, n):
    p = successes / n
    denominator = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / denominator
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denominator
    return [round(100 * max(0.0, centre - half), 1), round(100 * min(1.0, centre + half), 1)]


def weights(deals, cap=0.10):
    total = sum(d["amount"] for d in deals)
    return [min(d["amount"], cap * total) for d in deals]


@pytest.fixture
def seeded(app):
    moment = lost_moment()
    return moment, seed(moment)


def test_per_deal_counts_shares_and_intervals(app, seeded):
    moment, made = seeded
    card = deal_scorecard(moment, Options(period="quarter"))
    keys = sorted({quarter(d["close_date"]) for d in made})
    assert [p["key"] for p in card["periods"]] == keys
    for period in card["periods"]:
        mine = [d for d in made if quarter(d["close_date"]) == period["key"]]
        assert period["deals"] == len(mine)
        assert period["revenue"] == pytest.approx(sum(d["amount"] for d in mine), abs=0.01)
        question = next(q for q in period["questions"] if q["key"] == "loss_reason")
        assert question["n"] == len(mine)
        for option in LOSS_REASONS:
            chosen = sum(1 for d in mine if d["answers"]["loss_reason"] == option)
            assert question["metrics"]["option_pct"][option] == round(100 * chosen / len(mine), 1)
            assert question["ci95"]["option_pct"][option] == wilson(chosen, len(mine))
        closeness = next(q for q in period["questions"] if q["key"] == "closeness")
        values = [d["answers"]["closeness"] for d in mine]
        assert closeness["metrics"]["mean"] == round(sum(values) / len(values), 2)
        gap = next(q for q in period["questions"] if q["key"] == "product_gap")
        answered_gap = [d for d in mine if "product_gap" in d["answers"]]
        assert gap["n"] == len(answered_gap)
        security = sum(1 for d in answered_gap if "security" in d["answers"]["product_gap"])
        assert gap["metrics"]["option_pct"]["security"] == round(100 * security / len(answered_gap), 1)


def test_revenue_weighted_shares_use_the_capped_weights_and_kish_n(app, seeded):
    moment, made = seeded
    card = deal_scorecard(moment, Options(period="quarter", weight="revenue"))
    for period in card["periods"]:
        mine = [d for d in made if quarter(d["close_date"]) == period["key"]]
        w = weights(mine)
        n_eff = sum(w) ** 2 / sum(x * x for x in w)
        assert period["n_eff"] == round(n_eff, 2)
        question = next(q for q in period["questions"] if q["key"] == "loss_reason")
        block = question["weighted"]
        assert block["deals"] == len(mine)  # the deal count is always shown
        assert block["n_eff"] == round(n_eff, 2)
        for option in LOSS_REASONS:
            share = sum(x for x, d in zip(w, mine) if d["answers"]["loss_reason"] == option) / sum(w)
            assert block["metrics"]["option_pct"][option] == round(100 * share, 1)
            assert block["metrics"]["option_revenue"][option] == pytest.approx(
                sum(d["amount"] for d in mine if d["answers"]["loss_reason"] == option), abs=0.01)
            assert block["ci95"]["option_pct"][option] == wilson(share * n_eff, n_eff)
        closeness = next(q for q in period["questions"] if q["key"] == "closeness")["weighted"]
        values = [d["answers"]["closeness"] for d in mine]
        mean = sum(x * v for x, v in zip(w, values)) / sum(w)
        assert closeness["metrics"]["mean"] == round(mean, 2)


def test_the_cap_keeps_a_whale_deal_at_ten_percent_of_the_total(app, seeded):
    moment, made = seeded
    whale = next(d for d in made if d["amount"] == 5_000_000.0)
    card = deal_scorecard(moment, Options(period="quarter", weight="revenue"))
    period = next(p for p in card["periods"] if p["key"] == quarter(whale["close_date"]))
    mine = [d for d in made if quarter(d["close_date"]) == period["key"]]
    w = weights(mine)
    assert max(w) == pytest.approx(0.10 * sum(d["amount"] for d in mine))
    question = next(q for q in period["questions"] if q["key"] == "loss_reason")["weighted"]
    option = whale["answers"]["loss_reason"]
    uncapped = sum(d["amount"] for d in mine if d["answers"]["loss_reason"] == option) / sum(d["amount"] for d in mine)
    assert question["metrics"]["option_pct"][option] < round(100 * uncapped, 1)
    looser = deal_scorecard(moment, Options(period="quarter", weight="revenue", cap=1.0))
    period = next(p for p in looser["periods"] if p["key"] == quarter(whale["close_date"]))
    block = next(q for q in period["questions"] if q["key"] == "loss_reason")["weighted"]
    assert block["metrics"]["option_pct"][option] == round(100 * uncapped, 1)


def test_slices_by_segment_and_product_count_each_deal_in_its_slices(app, seeded):
    moment, made = seeded
    by_segment = deal_scorecard(moment, Options(period="quarter", by="segment"))
    for period in by_segment["periods"]:
        mine = [d for d in made if quarter(d["close_date"]) == period["key"]]
        assert {s["name"]: s["deals"] for s in period["slices"]} == {
            seg: sum(1 for d in mine if d["segment"] == seg) for seg in {d["segment"] for d in mine}}
    by_product = deal_scorecard(moment, Options(period="month", by="product"))
    for period in by_product["periods"]:
        mine = [d for d in made if f"{d['close_date'].year}-{d['close_date'].month:02d}" == period["key"]]
        assert {s["name"]: s["deals"] for s in period["slices"]} == {
            p: sum(1 for d in mine if p in d["products"]) for p in {p for d in mine for p in d["products"]}}


def test_period_over_period_delta_and_two_proportion_test(app, seeded):
    moment, made = seeded
    card = deal_scorecard(moment, Options(period="quarter"))
    first, second = card["periods"][0], card["periods"][1]
    a = [d for d in made if quarter(d["close_date"]) == first["key"]]
    b = [d for d in made if quarter(d["close_date"]) == second["key"]]
    question = next(q for q in second["questions"] if q["key"] == "loss_reason")
    for option in LOSS_REASONS:
        xa = sum(1 for d in a if d["answers"]["loss_reason"] == option)
        xb = sum(1 for d in b if d["answers"]["loss_reason"] == option)
        assert question["delta"]["option_pct"][option] == round(
            round(100 * xb / len(b), 10) - round(100 * xa / len(a), 10), 1)
        pooled = (xa + xb) / (len(a) + len(b))
        se = math.sqrt(pooled * (1 - pooled) * (1 / len(a) + 1 / len(b)))
        if se:
            p_value = math.erfc(abs(xb / len(b) - xa / len(a)) / se / math.sqrt(2))
            assert question["significant"]["option_pct"][option] == (p_value < 0.05)


def test_calibration_crm_loss_reason_against_the_reps_answer_per_segment(app, seeded):
    moment, made = seeded
    table = deal_scorecard(moment, Options())["calibration"]
    assert table["question_key"] == "loss_reason"
    for entry in table["segments"]:
        mine = [d for d in made if d["segment"] == entry["segment"]]
        assert entry["deals"] == len(mine)
        agree = sum(1 for d in mine if d["crm"].lower().replace(" ", "_") == d["answers"]["loss_reason"])
        assert entry["agree"] == agree and entry["agree_pct"] == round(100 * agree / len(mine), 1)
        cells = {(c["crm"], c["rep"]): c["deals"] for c in entry["cells"]}
        expected = {}
        for d in mine:
            expected[(d["crm"], d["answers"]["loss_reason"])] = expected.get((d["crm"], d["answers"]["loss_reason"]), 0) + 1
        assert cells == expected


def test_the_api_answers_json_and_csv_and_refuses_bad_parameters(app, client, seeded, api_token):
    moment, made = seeded
    headers = api_token(roles=("leader",))
    card = client.get(f"/api/v1/moments/{moment.id}/scorecard?period=quarter&by=segment&weight=revenue", headers=headers)
    assert card.status_code == 200 and card.json["weight"] == "revenue" and card.json["weight_cap_pct"] == 10.0
    assert sum(p["deals"] for p in card.json["periods"]) == len(made)
    exported = client.get(f"/api/v1/moments/{moment.id}/scorecard?weight=revenue&format=csv", headers=headers)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    row = next(r for r in rows if r["question"] == "loss_reason" and r["option"] == "price" and r["slice"] == "")
    period = next(p for p in card.json["periods"] if p["key"] == row["period"])
    question = next(q for q in period["questions"] if q["key"] == "loss_reason")
    assert float(row["value"]) == question["metrics"]["option_pct"]["price"]
    assert float(row["weighted_value"]) == question["weighted"]["metrics"]["option_pct"]["price"]
    for bad in ("period=week", "by=colour", "weight=magic", "cap=2", "cap=lots"):
        assert client.get(f"/api/v1/moments/{moment.id}/scorecard?{bad}", headers=headers).status_code == 400, bad
    rep = api_token(roles=("rep",), email="nosy.rep@example.com")
    assert client.get(f"/api/v1/moments/{moment.id}/scorecard", headers=rep).status_code == 403
