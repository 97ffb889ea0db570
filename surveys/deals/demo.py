"""The demo's deals (issue 15): a year of closed deals of the sample org, fed
through the same path as a CRM's events (stored, then processed), with
answered deal moments, so a newcomer sees a deal scorecard and its
revenue-weighted view on first run. The "Lost deals" moment has no delay and
round-the-clock hours, so a signed sample event (README) shows its
invitation in the outbox at the next tick. A few deals are in EUR and GBP,
with quarterly rates to the reporting currency, so the scorecards show them
converted at the rate of their close date (and /deals/rates lists the rates)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from surveys.org.models import Person, PersonRole
from surveys.deals.currency import reporting_currency
from surveys.deals.models import ExchangeRate, MomentInvitation
from surveys.deals.moments import create_moment, store_answers
from surveys.deals.processing import process_event, store_events
from surveys.extensions import db
from surveys.questions.drafts import publish
from surveys.starter_templates import create_from_template, template_by_slug

DEALS_PER_YEAR = 360
COMPETITORS = ("Globex", "Initech", "Acme", None)
PRODUCTS = ("Platform", "SSO", "Analytics", "Mobile")
# The CRM's loss-reason picklist, and what reps answer: in Enterprise the
# picklist says "Price" where reps mostly say a missing feature.
CRM_REASONS = ("Price", "Missing Feature", "Competitor", "No Decision", "Timing")
# Every 9th deal is in EUR, every 13th in GBP (unless either is the reporting
# currency); their rates change each quarter, as a finance team publishes them.
FOREIGN = ((9, "EUR", 1.08), (13, "GBP", 1.27))


def _seed_rates(now, rng) -> None:
    start = now.date().replace(day=1) - timedelta(days=400)
    for _every, code, base in FOREIGN:
        if code == reporting_currency():
            continue
        for quarter in range(6):
            effective = (start + timedelta(days=92 * quarter)).replace(day=1)
            db.session.add(ExchangeRate(currency=code, rate=round(base * rng.uniform(0.96, 1.04), 4), effective_from=effective))
    db.session.flush()


def _currency_of(n: int) -> str:
    for every, code, _base in FOREIGN:
        if n % every == every - 1 and code != reporting_currency():
            return code
    return reporting_currency()


def seed_deal_moments(owner, now, rng: random.Random) -> list[str]:
    reps = db.session.scalars(select(Person).join(PersonRole).where(PersonRole.role == "rep").order_by(Person.id)).all()
    if not reps:
        return []
    moments = {}
    for slug, trigger, name in (("deal-lost", "closed_lost", "Lost deals"), ("deal-won", "closed_won", "Won deals")):
        question_set = create_from_template(owner, template_by_slug(slug))
        db.session.flush()
        publish(question_set, now=now - timedelta(days=400))
        moments[trigger] = create_moment(owner, {
            "name": name, "question_set_id": question_set.id, "on": [trigger], "delay_minutes": 0,
            "working_hours": "00:00-23:59", "reminder_days": [1, 3], "expire_days": 7})
    _seed_rates(now, rng)
    db.session.commit()
    answered = 0
    for n in range(DEALS_PER_YEAR):
        rep = reps[n % len(reps)]
        closed = now - timedelta(days=rng.randrange(10, 365))
        won = rng.random() < 0.35
        segment = rep.segment or rng.choice(("Enterprise", "Mid-Market", "SMB"))
        amount = round(rng.lognormvariate(11.3 if segment == "Enterprise" else 10.2, 0.8), -2)
        reason = None if won else rng.choice(CRM_REASONS)
        deal = {"id": f"DEMO-{n + 1:04d}", "owner_email": rep.email, "account": f"{rng.choice(ACCOUNTS)} {n + 1}",
                "amount": amount, "currency": _currency_of(n), "stage": "Closed Won" if won else "Closed Lost",
                "outcome": "won" if won else "lost", "close_date": closed.date().isoformat(),
                "competitor": rng.choice(COMPETITORS), "segment": segment, "region": rep.region,
                "products": rng.sample(PRODUCTS, rng.randint(1, 2)), "loss_reason": reason}
        [stored] = store_events("api", [{"event_id": f"demo-{n + 1}", "type": "deal.closed_won" if won else "deal.closed_lost",
                                         "occurred_at": closed, "deal": deal}], "", closed, queue=False)
        process_event(stored.id, closed)  # the moment invites the owner, as for a live event
        invitation = db.session.scalar(select(MomentInvitation).where(
            MomentInvitation.deal_id == stored.event.deal_id, MomentInvitation.moment_id == moments["closed_won" if won else "closed_lost"].id))
        if invitation is not None and rng.random() < 0.8:
            answered += _answer(invitation, won, segment, reason, rng)
    db.session.commit()
    return [f"deals: {DEALS_PER_YEAR} closed over the year, {answered} answered deal moments (see /deals); "
            "some in EUR and GBP, converted to the reporting currency (see /deals/rates)"]


ACCOUNTS = ("Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Litware", "Proseware", "Adatum")


def _answer(invitation, won, segment, crm_reason, rng) -> int:
    """The invitation went out on time (the demo does not send a year of old
    emails) and the rep answered within a day or so."""
    sent = invitation.send_at
    invitation.status, invitation.sent_at = "sent", sent
    db.session.flush()
    if won:
        answers = {"win_reason": rng.choice(("product_fit", "product_fit", "relationship", "price", "time_to_value")),
                   "product_weight": rng.randint(2, 5)}
    else:
        honest = crm_reason.lower().replace(" ", "_")
        if segment == "Enterprise" and crm_reason == "Price" and rng.random() < 0.7:
            honest = "missing_feature"  # the picklist's blind spot the calibration table shows
        answers = {"loss_reason": honest if honest in ("price", "missing_feature", "competitor", "no_decision", "timing") else "price",
                   "closeness": rng.randint(1, 5)}
        if answers["loss_reason"] == "missing_feature":
            answers["product_gap"] = rng.sample(("security", "integrations", "reporting"), rng.randint(1, 2))
            answers["save_story"] = "SSO with SCIM provisioning was a hard requirement." if "security" in answers["product_gap"] else "They needed a native CRM sync."
    store_answers(invitation, answers, sent + timedelta(hours=rng.randint(1, 30)))
    return 1
