"""Revenue-weighted deal scorecards when the cap binds, against an independent
computation: several deals over the cap in one group (with a multi-choice and
a text question among their answers), a deal over its slice's cap but not its
period's (the overall view is added up from the slices), and a deal in two
product lines capped in each against that line's own total (issue 15, B9)."""

from datetime import date

from surveys.deals.scorecard import SIZE_BANDS, Options, deal_scorecard
from tests.builders.deal_scorecards import GAPS, LOSS_REASONS, answered_deals, check_group, lost_moment


def deal(amount, day, segment="SMB", products=("Platform",), reason="price", closeness=3, gaps=(), story=None, currency="USD"):
    answers = {"loss_reason": reason, "closeness": closeness}
    if gaps:
        answers["product_gap"] = list(gaps)
    if story:
        answers["save_story"] = story
    return {"amount": float(amount), "close_date": day, "segment": segment, "products": list(products), "answers": answers,
            "currency": currency}


def test_several_deals_over_the_cap_in_one_quarter_each_weigh_the_cap(app):
    moment = lost_moment()
    q1 = [deal(900_000, date(2026, 1, 10), reason="price", closeness=5, gaps=("security", "reporting"), story="Cheaper rival"),
          deal(700_000, date(2026, 2, 3), reason="missing_feature", closeness=2, gaps=("security",), story="No SSO"),
          deal(500_000, date(2026, 3, 30), reason="missing_feature", closeness=4)]
    q1 += [deal(20_000 + 1_000 * n, date(2026, 1 + n % 3, 5 + n), reason=LOSS_REASONS[n % 6], closeness=1 + n % 5,
                gaps=GAPS[n % 3:n % 3 + 1] if n % 2 else (), story="Too late" if n % 4 == 0 else None) for n in range(17)]
    # A quarter of equal deals: nobody over the cap, the weights are the amounts.
    q2 = [deal(30_000, date(2026, 4, 1 + n), reason=LOSS_REASONS[n % 3], closeness=1 + n % 5) for n in range(12)]
    made = answered_deals(moment, q1 + q2)
    assert sum(1 for d in made[:20] if d["amount"] > 0.10 * sum(x["amount"] for x in made[:20])) == 3
    card = deal_scorecard(moment, Options(period="quarter", weight="revenue"))
    assert [p["key"] for p in card["periods"]] == ["2026-Q1", "2026-Q2"]
    check_group(card["periods"][0], made[:20])
    check_group(card["periods"][1], made[20:])
    assert card["periods"][1]["n_eff"] == 12.0
    monthly = deal_scorecard(moment, Options(period="month", weight="revenue"))
    for period in monthly["periods"]:
        check_group(period, [d for d in made if f"{d['close_date']:%Y-%m}" == period["key"]])


def test_a_deal_over_its_slices_cap_but_not_its_periods_and_the_overall_view_added_up_from_the_slices(app):
    moment = lost_moment()
    enterprise = [deal(400_000 + 50_000 * n, date(2026, 7, 1 + n), segment="Enterprise", reason=LOSS_REASONS[n % 6],
                       closeness=1 + n % 5, gaps=("integrations",) if n % 2 else ()) for n in range(10)]
    enterprise.append(deal(3_000_000, date(2026, 8, 15), segment="Enterprise", reason="competitor", closeness=5, gaps=("security",)))
    # 60k is over 10 % of the SMB total (about 0.2M) and far under 10 % of the quarter's.
    smb = [deal(15_000, date(2026, 9, 1 + n), reason=LOSS_REASONS[n % 4], closeness=2) for n in range(9)]
    smb.append(deal(60_000, date(2026, 9, 20), reason="timing", closeness=4, gaps=("reporting", "security")))
    made = answered_deals(moment, enterprise + smb)
    card = deal_scorecard(moment, Options(period="quarter", by="segment", weight="revenue"))
    (period,) = card["periods"]
    check_group(period, made)
    slices = {s["name"]: s for s in period["slices"]}
    assert set(slices) == {"Enterprise", "SMB"}
    check_group(slices["Enterprise"], [d for d in made if d["segment"] == "Enterprise"])
    check_group(slices["SMB"], [d for d in made if d["segment"] == "SMB"])
    per_deal = deal_scorecard(moment, Options(period="quarter", by="segment"))
    assert per_deal["periods"][0]["deals"] == len(made) and per_deal["periods"][0]["n_eff"] == period["n_eff"]
    # Every other cut partitions the deals too: the same overall view, each slice capped on its own total.
    cuts = {"size": lambda d: next(label for upper, label in SIZE_BANDS if upper is None or d["amount"] < upper),
            "region": lambda d: "NA", "competitor": lambda d: "(none)", "outcome": lambda d: "lost"}
    for by, slice_of in cuts.items():
        (period,) = deal_scorecard(moment, Options(period="quarter", by=by, weight="revenue"))["periods"]
        check_group(period, made)
        assert {s["name"] for s in period["slices"]} == {slice_of(d) for d in made}, by
        for entry in period["slices"]:
            check_group(entry, [d for d in made if slice_of(d) == entry["name"]])


def test_a_deal_in_two_product_lines_is_capped_in_each_against_that_lines_total(app):
    moment = lost_moment()
    deals = [deal(2_000_000, date(2026, 10, 2), products=("Platform", "SSO"), reason="price", closeness=5, gaps=("security",))]
    deals += [deal(50_000 + 5_000 * n, date(2026, 10, 3 + n), products=("Platform",) if n % 3 else ("SSO",),
                   reason=LOSS_REASONS[n % 6], closeness=1 + n % 5, gaps=("integrations",) if n % 2 else ()) for n in range(14)]
    deals.append(deal(40_000, date(2026, 11, 1), products=(), reason="timing", closeness=3))
    made = answered_deals(moment, deals)
    card = deal_scorecard(moment, Options(period="quarter", by="product", weight="revenue"))
    (period,) = card["periods"]
    check_group(period, made)  # each deal once in the overall view
    slices = {s["name"]: s for s in period["slices"]}
    assert set(slices) == {"Platform", "SSO", "(none)"}
    for name in ("Platform", "SSO"):
        check_group(slices[name], [d for d in made if name in d["products"]])
    check_group(slices["(none)"], [d for d in made if not d["products"]])
    assert sum(s["deals"] for s in period["slices"]) == len(made) + 1  # the two-line deal in both
