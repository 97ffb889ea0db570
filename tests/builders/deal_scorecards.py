"""Answered deal moments for the scorecard tests and the demo-sized benchmark:
deals, their invitations and answers, made through the models and the
moments service (answers through `store_answers`, as the rep form does)."""

import random
import secrets
from datetime import date, datetime, timedelta, timezone

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
