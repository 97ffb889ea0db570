"""The demo's deals: a year of closed deals with answered moments, a few in
EUR and GBP with quarterly rates, so the scorecards show them converted at
the rate of their close date (issue 15)."""

import pytest
from sqlalchemy import select

from surveys.deals.models import Deal, ExchangeRate, Moment
from surveys.deals.scorecard import Options, deal_scorecard
from surveys.demo import seed_demo
from surveys.extensions import db
from tests.builders.deal_scorecards import rate_on


def test_the_demo_seeds_deals_in_several_currencies_converted_at_their_close_dates_rate(app, clock):
    lines = seed_demo(clock())
    assert any("EUR and GBP" in line for line in lines)
    rates = [(r.currency, r.rate, r.effective_from) for r in db.session.scalars(select(ExchangeRate))]
    assert {code for code, _rate, _start in rates} == {"EUR", "GBP"}
    deals = db.session.scalars(select(Deal).where(Deal.external_id.like("DEMO-%"))).all()
    foreign = [d for d in deals if d.currency != "USD"]
    assert {d.currency for d in foreign} == {"EUR", "GBP"} and len(foreign) >= 40
    for deal in deals:
        assert deal.amount_reporting == pytest.approx(deal.amount * rate_on(rates, deal.currency, deal.close_date))
    lost = db.session.scalar(select(Moment).where(Moment.name == "Lost deals"))
    card = deal_scorecard(lost, Options(period="quarter", weight="revenue"))
    assert all(period["left_out"] == [] for period in card["periods"])
    assert sum(p["deals"] for p in card["periods"]) == sum(p["weighted_deals"] for p in card["periods"]) > 100
