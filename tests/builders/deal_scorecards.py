"""Answered deal moments for the scorecard tests and the demo-sized benchmark:
deals, their invitations and answers, made through the models and the
moments service (answers through `store_answers`, as the rep form does);
and the independent computation the scorecard tests check against: each
deal's amount in the reporting currency from a plain list of rates, capped
weights, shares, Kish's effective n and Wilson intervals, written here
without the scorecard's code."""

import math
import random
import secrets
from datetime import date, datetime, timedelta, timezone

import pytest

from surveys.org.models import Person
from surveys.deals.currency import convert_deals
from surveys.deals.models import Deal, DealProduct, MomentInvitation
from surveys.deals.moments import create_moment, store_answers
from surveys.extensions import db
from surveys.questions.drafts import publish
from surveys.starter_templates import create_from_template, template_by_slug

LOSS_REASONS = ("missing_feature", "price", "competitor", "no_decision", "timing", "relationship")
CRM_REASONS = ("Missing Feature", "Price", "Competitor", "No Decision", "Timing", "Budget")
SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
PRODUCTS = ("Platform", "SSO", "Analytics")


def lost_moment(owner=None):
    question_set = create_from_template(owner, template_by_slug("deal-lost"))
    db.session.flush()
    publish(question_set)
    moment = create_moment(owner, {"name": "Lost deals", "question_set_id": question_set.id, "on": ["closed_lost"],
                                   "delay_minutes": 60, "expire_days": 14, "reminder_days": [2]})
    db.session.commit()
    return moment


def answered_deals(moment, deals):
    """Answered lost deals exactly as given: each a dict with amount,
    close_date, segment, products, answers (as the rep form cleans them) and
    optionally currency (USD). Their amounts are converted by the same SQL as
    an applied event's. Returns them with their ids, for independent checks."""
    rep = Person(email="fixed.rep@example.com", name="Fixed Rep", timezone="UTC")
    rep.set_roles(["rep"])
    db.session.add(rep)
    db.session.flush()
    version = moment.question_set.latest_published
    now = datetime(2027, 1, 5, 12, tzinfo=timezone.utc)
    made = []
    for n, fields in enumerate(deals):
        deal = Deal(source="api", external_id=f"FIXED-{n}", owner_id=rep.id, account=f"Fixed {n}", amount=fields["amount"],
                    currency=fields.get("currency", "USD"), stage="Closed Lost", outcome="lost",
                    close_date=fields["close_date"], competitor=None,
                    segment=fields["segment"], region="NA", products=fields["products"], loss_reason="Price")
        db.session.add(deal)
        db.session.flush()
        db.session.add_all([DealProduct(deal_id=deal.id, product=p) for p in fields["products"]])
        invitation = MomentInvitation(moment_id=moment.id, deal_id=deal.id, person_id=rep.id, version_id=version.id,
                                      trigger="closed_lost", status="sent", send_at=now, sent_at=now,
                                      expires_at=now + timedelta(days=14), nonce=secrets.token_urlsafe(8))
        db.session.add(invitation)
        db.session.flush()
        store_answers(invitation, fields["answers"], now)
        made.append({**fields, "id": deal.id})
    convert_deals(Deal.id.in_([d["id"] for d in made]))
    db.session.commit()
    return made


def seed(moment, count=80, seed_value=15, start=date(2026, 7, 1), days=180, huge=True):
    """`count` lost deals closed between `start` and `start + days`, each answered.
    Returns the list of (deal fields, answers) it made, for independent checks."""
    rng = random.Random(seed_value)
    reps = []
    for n in range(4):
        person = Person(email=f"seed.rep{n}@example.com", name=f"Seed Rep {n}", timezone="UTC")
        person.set_roles(["rep"])
        db.session.add(person)
        reps.append(person)
    db.session.flush()
    version = moment.question_set.latest_published
    made = []
    now = datetime(2027, 1, 5, 12, tzinfo=timezone.utc)
    for n in range(count):
        amount = round(rng.lognormvariate(10.5, 1.0), 2)
        if huge and n == 7:
            amount = 5_000_000.0  # one whale, so the cap matters
        crm = rng.choice(CRM_REASONS)
        rep_reason = (crm.lower().replace(" ", "_") if rng.random() < 0.6 else rng.choice(LOSS_REASONS))
        rep_reason = rep_reason if rep_reason in LOSS_REASONS else "price"
        products = rng.sample(PRODUCTS, rng.randint(1, 2))
        deal = Deal(source="api", external_id=f"SEED-{n}", owner_id=reps[n % 4].id, account=f"Account {n}",
                    amount=amount, currency="USD", stage="Closed Lost", outcome="lost",
                    close_date=start + timedelta(days=rng.randrange(days)), competitor=rng.choice(("Globex", "Initech", None)),
                    segment=rng.choice(SEGMENTS), region=rng.choice(("EMEA", "NA")), products=products, loss_reason=crm)
        db.session.add(deal)
        db.session.flush()
        db.session.add_all([DealProduct(deal_id=deal.id, product=p) for p in products])
        invitation = MomentInvitation(moment_id=moment.id, deal_id=deal.id, person_id=deal.owner_id, version_id=version.id,
                                      trigger="closed_lost", status="sent", send_at=now, sent_at=now,
                                      expires_at=now + timedelta(days=14), nonce=secrets.token_urlsafe(8))
        db.session.add(invitation)
        db.session.flush()
        answers = {"loss_reason": rep_reason, "closeness": rng.randint(1, 5),
                   "product_gap": rng.sample(("security", "integrations", "reporting"), rng.randint(0, 2))}
        if not answers["product_gap"]:
            del answers["product_gap"]
        store_answers(invitation, answers, now)
        made.append({"id": deal.id, "amount": amount, "close_date": deal.close_date, "segment": deal.segment,
                     "products": products, "crm": crm, "answers": answers})
    convert_deals(Deal.id.in_([d["id"] for d in made]))
    db.session.commit()
    return made


Z = 1.959963984540054
GAPS = ("integrations", "reporting", "security")


def rate_on(rates, currency, day, reporting="USD"):
    """The rate of `currency` on `day` from rates given as (currency, rate,
    effective_from) tuples: the latest effective on or before the day; 1 for
    the reporting currency; None without one."""
    if currency == reporting:
        return 1.0
    effective = [(start, rate) for code, rate, start in rates if code == currency and start <= day]
    return max(effective)[1] if effective else None


def in_reporting_currency(made, rates, reporting="USD"):
    """The deals split into those a rate converts (with "amount" now in the
    reporting currency and "original" the deal's own) and those left out."""
    converted, left_out = [], []
    for deal in made:
        rate = rate_on(rates, deal.get("currency", "USD"), deal["close_date"], reporting)
        if rate is None:
            left_out.append(deal)
        else:
            converted.append({**deal, "original": deal["amount"], "amount": deal["amount"] * rate})
    return converted, left_out


def wilson(share, n):
    denominator = 1 + Z * Z / n
    centre = (share + Z * Z / (2 * n)) / denominator
    half = Z * math.sqrt(share * (1 - share) / n + Z * Z / (4 * n * n)) / denominator
    return [round(100 * max(0.0, centre - half), 1), round(100 * min(1.0, centre + half), 1)]


def kish(weights):
    return round(sum(weights) ** 2 / sum(w * w for w in weights), 2)


def check_group(group, deals, cap=0.10, left_out=()):
    """Every figure of one period or slice against weights computed here:
    min(amount, cap x the group's total amount), amounts as given (in the
    reporting currency). `left_out` deals (no rate) count in the per-deal
    view only, and the group names them by currency."""
    everyone = list(deals) + list(left_out)
    total = sum(d["amount"] for d in deals)
    weight = {d["id"]: min(d["amount"], cap * total) for d in deals}
    assert group["deals"] == len(everyone)
    assert group["weighted_deals"] == len(deals)
    assert group["revenue"] == pytest.approx(total, abs=0.01)
    assert group["n_eff"] == kish(list(weight.values()))
    missing = {}
    for d in left_out:
        missing[d["currency"]] = missing.get(d["currency"], 0) + 1
    assert {item["currency"]: item["deals"] for item in group["left_out"]} == missing
    assert all(item["reason"] == "no rate" for item in group["left_out"])
    questions = {q["key"]: q for q in group["questions"]}
    reasons = questions["loss_reason"]
    assert reasons["n"] == len(everyone)
    for option in LOSS_REASONS:  # per deal: every deal, with or without a rate
        chosen = sum(1 for d in everyone if d["answers"]["loss_reason"] == option)
        assert reasons["metrics"]["option_pct"][option] == round(100 * chosen / len(everyone), 1), option
        assert reasons["ci95"]["option_pct"][option] == wilson(chosen / len(everyone), len(everyone)), option
    block = reasons["weighted"]
    assert block["deals"] == len(deals) and block["n_eff"] == kish(list(weight.values()))
    all_w = sum(weight.values())
    n_eff = all_w ** 2 / sum(w * w for w in weight.values())
    for option in LOSS_REASONS:
        share = sum(weight[d["id"]] for d in deals if d["answers"]["loss_reason"] == option) / all_w
        assert block["metrics"]["option_pct"][option] == round(100 * share, 1), option
        assert block["ci95"]["option_pct"][option] == wilson(share, n_eff), option
        assert block["metrics"]["option_revenue"][option] == pytest.approx(
            sum(d["amount"] for d in deals if d["answers"]["loss_reason"] == option), abs=0.01)
    mean = sum(weight[d["id"]] * d["answers"]["closeness"] for d in deals) / all_w
    assert questions["closeness"]["weighted"]["metrics"]["mean"] == round(mean, 2)
    gap_deals = [d for d in deals if "product_gap" in d["answers"]]
    if gap_deals:
        gap = questions["product_gap"]
        gap_w = [weight[d["id"]] for d in gap_deals]
        assert gap["n"] == len([d for d in everyone if "product_gap" in d["answers"]])
        assert gap["weighted"]["deals"] == len(gap_deals)
        assert gap["weighted"]["n_eff"] == kish(gap_w)
        assert gap["weighted"]["revenue"] == pytest.approx(sum(d["amount"] for d in gap_deals), abs=0.01)
        for option in GAPS:
            share = sum(weight[d["id"]] for d in gap_deals if option in d["answers"]["product_gap"]) / sum(gap_w)
            assert gap["weighted"]["metrics"]["option_pct"][option] == round(100 * share, 1), option
    story_deals = [d for d in deals if "save_story" in d["answers"]]
    if story_deals:
        story = questions["save_story"]
        assert story["n"] == len([d for d in everyone if "save_story" in d["answers"]])
        assert story["metrics"]["count"] == story["n"]
        assert story["weighted"]["n_eff"] == kish([weight[d["id"]] for d in story_deals])
