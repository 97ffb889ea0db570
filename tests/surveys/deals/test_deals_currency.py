"""Deal amounts in the reporting currency (issue 15): each deal converted at
the rate in effect on its close date, checked against the independent
computation of tests/builders/deal_scorecards.py; deals whose currency has
no rate left out of the weighted view and named; rates kept through the CLI
(with its row-by-row report), the API and the admin's page, and deals
converted again by a worker when rates change; the amount filter of a moment
in the reporting currency; the smallest weight cap."""

from datetime import date

import pytest
from sqlalchemy import func, select

from surveys.audit import AuditEvent
from surveys.deals import currency
from surveys.deals.models import Deal, ExchangeRate, MomentInvitation
from surveys.deals.scorecard import SIZE_BANDS, Options, ScorecardQueryInvalid, csv_rows, deal_scorecard
from surveys.extensions import db
from tests.builders.deal_scorecards import (
    LOSS_REASONS, answered_deals, check_group, in_reporting_currency, lost_moment, rate_on,
)
from tests.builders.deals import DATA, configure, event_body, post_signed
from tests.conftest import run_worker

# As in tests/data/deals/exchange_rates.csv.
RATES = [("EUR", 1.05, date(2026, 1, 1)), ("EUR", 1.10, date(2026, 7, 1)),
         ("GBP", 1.25, date(2026, 1, 1)), ("GBP", 1.30, date(2026, 10, 1))]


def deal(amount, day, code="USD", segment="SMB", reason="price", closeness=3, gaps=()):
    answers = {"loss_reason": reason, "closeness": closeness}
    if gaps:
        answers["product_gap"] = list(gaps)
    return {"amount": float(amount), "currency": code, "close_date": day, "segment": segment, "products": ["Platform"],
            "answers": answers}


def import_rates_file(app, name="exchange_rates.csv"):
    return app.test_cli_runner().invoke(args=["deals", "rates", "import", str(DATA / name)])


def quarter(day):
    return f"{day.year}-Q{(day.month + 2) // 3}"


def test_weighted_views_convert_each_deal_at_the_rate_of_its_close_date(app):
    assert import_rates_file(app).exit_code == 0
    moment = lost_moment()
    deals = [
        # 2026-Q2: EUR at 1.05, GBP at 1.25; a EUR whale over the cap once converted.
        deal(600_000, date(2026, 4, 3), "EUR", segment="Enterprise", reason="missing_feature", closeness=5, gaps=("security",)),
        deal(80_000, date(2026, 6, 30), "EUR", reason="price", closeness=2),
        deal(40_000, date(2026, 5, 14), "GBP", reason="competitor", closeness=4, gaps=("reporting",)),
        deal(9_000, date(2026, 5, 20), "BRL", reason="timing", closeness=1),  # no BRL rate: left out, and said so
        deal(12_000, date(2026, 5, 21), "BRL", reason="price", closeness=2),
    ] + [deal(20_000 + 3_000 * n, date(2026, 4, 5 + n), reason=LOSS_REASONS[n % 6], closeness=1 + n % 5,
              segment=("SMB", "Enterprise")[n % 2]) for n in range(12)]
    deals += [
        # 2026-Q3: EUR at 1.10 from its first day; GBP still at 1.25 on 09-30.
        deal(80_000, date(2026, 7, 1), "EUR", reason="price", closeness=4),
        deal(9_500, date(2026, 9, 30), "GBP", reason="missing_feature", closeness=3, gaps=("integrations", "security")),
        deal(45_000, date(2026, 8, 2), "JPY", reason="timing", closeness=2),
    ] + [deal(15_000 + 2_000 * n, date(2026, 7, 10 + n), reason=LOSS_REASONS[n % 6], closeness=1 + n % 5) for n in range(8)]
    made = answered_deals(moment, deals)
    converted, left_out = in_reporting_currency(made, RATES)
    assert {d["currency"] for d in left_out} == {"BRL", "JPY"}
    assert rate_on(RATES, "EUR", date(2026, 6, 30)) == 1.05 and rate_on(RATES, "EUR", date(2026, 7, 1)) == 1.10
    whale = next(d for d in converted if d["original"] == 600_000)
    q2 = [d for d in converted if quarter(d["close_date"]) == "2026-Q2"]
    assert whale["amount"] > 0.10 * sum(d["amount"] for d in q2)  # the cap binds on the converted amount

    card = deal_scorecard(moment, Options(period="quarter", weight="revenue"))
    assert card["reporting_currency"] == "USD"
    assert [p["key"] for p in card["periods"]] == ["2026-Q2", "2026-Q3"]
    for period in card["periods"]:
        check_group(period, [d for d in converted if quarter(d["close_date"]) == period["key"]],
                    left_out=[d for d in left_out if quarter(d["close_date"]) == period["key"]])
    assert card["periods"][0]["left_out"] == [{"currency": "BRL", "deals": 2, "reason": "no rate"}]

    # Slices: the overall view is added up from them, each capped on its own converted total.
    by_segment = deal_scorecard(moment, Options(period="quarter", by="segment", weight="revenue", cap=0.2))
    for period in by_segment["periods"]:
        mine = [d for d in converted if quarter(d["close_date"]) == period["key"]]
        out = [d for d in left_out if quarter(d["close_date"]) == period["key"]]
        check_group(period, mine, cap=0.2, left_out=out)
        for entry in period["slices"]:
            check_group(entry, [d for d in mine if d["segment"] == entry["name"]], cap=0.2,
                        left_out=[d for d in out if d["segment"] == entry["name"]])

    # Size bands by the converted amount; a deal without a rate is in a band of its own.
    def band(d):
        return next(label for upper, label in SIZE_BANDS if upper is None or d["amount"] < upper)

    (q3,) = [p for p in deal_scorecard(moment, Options(period="quarter", by="size", weight="revenue"))["periods"]
             if p["key"] == "2026-Q3"]
    mine = [d for d in converted if quarter(d["close_date"]) == "2026-Q3"]
    eur = next(d for d in mine if d["currency"] == "EUR")
    assert band(eur) == "50k-250k" and band({"amount": eur["original"]}) == "50k-250k"
    gbp = next(d for d in mine if d["currency"] == "GBP")
    assert band(gbp) == "10k-50k" and band({"amount": gbp["original"]}) == "under 10k"  # 9,500 GBP is 11,875 USD
    names = {entry["name"]: entry for entry in q3["slices"]}
    assert set(names) == {band(d) for d in mine} | {"(no rate)"}
    for name, entry in names.items():
        if name == "(no rate)":
            assert entry["deals"] == 1 and entry["weighted_deals"] == 0
            assert entry["left_out"] == [{"currency": "JPY", "deals": 1, "reason": "no rate"}]
        else:
            check_group(entry, [d for d in mine if band(d) == name])

    # The per-deal view counts every deal; the CSV's revenue is in the reporting currency.
    per_deal = deal_scorecard(moment, Options(period="quarter"))
    assert [p["deals"] for p in per_deal["periods"]] == [17, 11]
    rows = csv_rows(card)
    assert {row["currency"] for row in rows} == {"USD"}
    q3_price = next(r for r in rows if (r["period"], r["question"], r["option"]) == ("2026-Q3", "loss_reason", "price"))
    assert q3_price["revenue"] == pytest.approx(sum(d["amount"] for d in converted if quarter(d["close_date"]) == "2026-Q3"), abs=0.01)


def test_rates_changed_later_convert_the_deals_again_on_a_worker(app, client, clock, make_person, api_token):
    configure(app)
    make_person(email="ana.rep@example.com", name="Ana Rep", roles=("rep",), password=None)
    post_signed(client, event_body("evt_eur", id="OPP-EUR", amount=100_000, currency="EUR", close_date="2026-11-30"), clock())
    post_signed(client, event_body("evt_usd", id="OPP-USD", amount=50_000, currency="USD", close_date="2026-11-30"), clock())
    run_worker(app)
    admin = api_token(roles=("admin",))
    eur = db.session.scalar(select(Deal).where(Deal.external_id == "OPP-EUR"))
    shown = client.get(f"/api/v1/deals/{eur.id}", headers=admin).json
    assert (shown["amount"], shown["currency"], shown["amount_reporting"], shown["reporting_currency"]) == (
        100_000, "EUR", None, "USD")
    listing = client.get("/api/v1/exchange-rates", headers=admin).json
    assert listing["rates"] == [] and listing["deals_without_rate"] == [{"currency": "EUR", "deals": 1}]

    added = client.post("/api/v1/exchange-rates", headers=admin,
                        json={"currency": "eur", "rate": 1.08, "effective_from": "2026-11-01"})
    assert added.status_code == 201 and added.json["currency"] == "EUR"
    run_worker(app)
    db.session.expire_all()
    assert db.session.get(Deal, eur.id).amount_reporting == pytest.approx(108_000)
    # A rate from after the close date changes nothing; one for the same date replaces the rate.
    later = client.post("/api/v1/exchange-rates", headers=admin, json={"currency": "EUR", "rate": 2, "effective_from": "2026-12-01"})
    changed = client.post("/api/v1/exchange-rates", headers=admin, json={"currency": "EUR", "rate": 1.12, "effective_from": "2026-11-01"})
    assert later.status_code == 201 and changed.status_code == 200 and changed.json["rate"] == 1.12
    run_worker(app)
    db.session.expire_all()
    assert db.session.get(Deal, eur.id).amount_reporting == pytest.approx(112_000)
    assert client.delete(f"/api/v1/exchange-rates/{changed.json['id']}", headers=admin).status_code == 204
    run_worker(app)
    db.session.expire_all()
    assert db.session.get(Deal, eur.id).amount_reporting is None
    assert db.session.scalar(select(Deal.amount_reporting).where(Deal.external_id == "OPP-USD")) == 50_000
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("exchange_rate.%"))) == 4

    bad = client.post("/api/v1/exchange-rates", headers=admin, json={"currency": "EUR", "rate": 0, "effective_from": "2026-13-01"})
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    assert set(bad.json["errors"]) == {"rate", "effective_from"}
    unknown = client.post("/api/v1/exchange-rates", headers=admin, json={"currency": "XYZ", "rate": 1, "effective_from": "2026-01-01"})
    assert unknown.status_code == 422 and "unknown currency 'XYZ'" in unknown.json["errors"]["currency"]
    reporting = client.post("/api/v1/exchange-rates", headers=admin, json={"currency": "USD", "rate": 1, "effective_from": "2026-01-01"})
    assert reporting.status_code == 422 and "reporting currency" in reporting.json["errors"]["currency"]
    pm = api_token(roles=("pm",), email="pm@example.com")
    assert client.post("/api/v1/exchange-rates", headers=pm, json={"currency": "GBP", "rate": 1.3,
                                                                   "effective_from": "2026-01-01"}).status_code == 403
    assert client.get("/api/v1/exchange-rates", headers=pm).status_code == 200


def test_rates_import_reports_each_bad_line_and_changes_nothing(app):
    result = import_rates_file(app, "exchange_rates_bad.csv")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "line 3: unknown currency 'XYZ' (an ISO 4217 code)",
        "line 4: rate '0' is not a positive number",
        "line 5: rate '-1.2' is not a positive number",
        "line 6: effective_from '2026-13-01' is not a date (YYYY-MM-DD)",
        "line 7: EUR from 2026-04-01 is also on line 2",
        "line 8: rate '2000000' is over 1,000,000: is it the wrong way round?",
        "nothing imported: 6 bad rows of 7",
    ]
    assert db.session.scalar(select(func.count()).select_from(ExchangeRate)) == 0
    dry = app.test_cli_runner().invoke(args=["deals", "rates", "import", str(DATA / "exchange_rates.csv"), "--dry-run"])
    assert dry.exit_code == 0 and "dry run: 4 good rows; nothing written" in dry.output
    assert db.session.scalar(select(func.count()).select_from(ExchangeRate)) == 0
    first = import_rates_file(app)
    assert first.exit_code == 0 and "imported 4 rates (4 added, 0 changed, 0 unchanged)" in first.output
    again = import_rates_file(app)
    assert "imported 4 rates (0 added, 0 changed, 4 unchanged)" in again.output
    assert [(r.currency, r.rate, r.effective_from) for r in currency.list_rates()] == [
        ("EUR", 1.10, date(2026, 7, 1)), ("EUR", 1.05, date(2026, 1, 1)),
        ("GBP", 1.30, date(2026, 10, 1)), ("GBP", 1.25, date(2026, 1, 1))]


def test_the_amount_filter_is_in_the_reporting_currency_and_lets_a_deal_without_a_rate_through(
        app, client, clock, make_person, api_token):
    configure(app)
    make_person(email="ana.rep@example.com", name="Ana Rep", roles=("rep",), password=None, timezone="Europe/Paris")
    assert import_rates_file(app).exit_code == 0
    moment = lost_moment()
    moment.min_amount = 100_000
    db.session.commit()
    cases = {"eur_over": (95_000, "EUR"), "eur_under": (90_000, "EUR"), "gbp_over": (80_000, "GBP"),
             "usd_under": (99_999, "USD"), "brl_no_rate": (10, "BRL")}
    for name, (amount, code) in cases.items():
        post_signed(client, event_body(f"evt_{name}", id=f"OPP-{name}", amount=amount, currency=code), clock())
    run_worker(app)
    asked = db.session.scalars(select(Deal.external_id).join(MomentInvitation, MomentInvitation.deal_id == Deal.id)
                               .order_by(Deal.external_id)).all()
    # 95,000 EUR is 104,500 USD and 80,000 GBP 104,000 USD on 2026-11-30; 90,000 EUR is 99,000 USD.
    assert asked == ["OPP-brl_no_rate", "OPP-eur_over", "OPP-gbp_over"]


def test_the_weight_cap_is_at_least_one_percent(app, client, api_token):
    moment = lost_moment()
    answered_deals(moment, [deal(10_000 * (n + 1), date(2026, 4, 1 + n)) for n in range(5)])
    headers = api_token(roles=("leader",))
    for cap in ("0.009", "0.001", "0", "-1", "1.5"):
        refused = client.get(f"/api/v1/moments/{moment.id}/scorecard?weight=revenue&cap={cap}", headers=headers)
        assert refused.status_code == 400 and refused.mimetype == "application/problem+json", cap
        assert set(refused.json["errors"]) == {"cap"}, cap
    assert "from 0.01 to 1" in client.get(f"/api/v1/moments/{moment.id}/scorecard?cap=0.005", headers=headers).json["errors"]["cap"]
    allowed = client.get(f"/api/v1/moments/{moment.id}/scorecard?weight=revenue&cap=0.01", headers=headers)
    assert allowed.status_code == 200 and allowed.json["weight_cap_pct"] == 1.0
    with pytest.raises(ScorecardQueryInvalid):
        deal_scorecard(moment, Options(weight="revenue", cap=0.005))
    document = client.get("/api/v1/openapi.json").json
    assert document["components"]["schemas"]["DealScorecardQuery"]["properties"]["cap"]["minimum"] == 0.01


def test_the_scorecard_page_shows_the_reporting_currency_and_names_the_deals_left_out(app, signed_in_client):
    assert import_rates_file(app).exit_code == 0
    moment = lost_moment()
    answered_deals(moment, [deal(50_000, date(2026, 8, 3), "EUR"), deal(40_000, date(2026, 8, 4)),
                            deal(9_000, date(2026, 8, 5), "BRL"), deal(7_000, date(2026, 8, 6), "BRL"),
                            deal(3_000, date(2026, 8, 7), "BRL")])
    leader = signed_in_client(roles=("leader",))
    assert leader.get(f"/deals/moments/{moment.id}/scorecard?cap=0.005").status_code == 400  # under the 1 % minimum
    page = leader.get(f"/deals/moments/{moment.id}/scorecard").text
    assert "3 deals in BRL left out of the revenue-weighted view: no rate." in page
    assert "5 deals, 95,000 USD" in page  # 50,000 EUR at 1.10 and 40,000 USD; the BRL deals counted, not summed
    assert "Revenue (USD)" in page
