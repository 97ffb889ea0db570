"""The demo organisation: the sample sales org, a monthly win/loss pulse, a
year of answered rounds, and the current month's round open now.

Everything goes through the same functions the product uses (people import,
question sets, cadences, the planner, storing responses); only the answers
and the passage of time are simulated, with a fixed random seed.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from cadence import planner
from cadence.cadences import create_cadence
from cadence.clock import utcnow
from cadence.models import Cadence, Delivery, Invitation, Round
from surveys.org.models import Person, PersonRole
from surveys.org.people import import_people
from cadence.recurrence import Occurrence
from surveys.alerts import watch_round
from surveys.answers import store_response
from surveys.auth.service import hash_password
from surveys.extensions import db
from surveys.models import QuestionSet
from surveys.questions.drafts import create_question_set, publish

DEMO_PASSWORD = "canary-demo"
DEMO_PEOPLE = Path(__file__).parent / "demo_data" / "people.csv"
DEMO_SET_NAME = "Monthly win/loss pulse"
HISTORY_MONTHS = 12

# Directions of good: losing a deal, losses to a competitor and missing
# capabilities are bad news; confidence, recommendation and closed deals are
# good. The pinned questions open the scorecard as key metrics.
PULSE_QUESTIONS = [
    {"key": "win_confidence", "type": "scale", "prompt": "How confident are you in winning the deals you are working now?",
     "scale_max": 5, "favorable_min": 4, "low_label": "Not at all", "high_label": "Very confident", "pinned": True},
    {"key": "recommend", "type": "nps", "prompt": "How likely are you to recommend our product to a prospect like your best customer?",
     "pinned": True},
    {"key": "lost_deal", "type": "yes_no", "prompt": "Did you lose a deal this month?", "higher_is_better": False},
    {"key": "lost_to", "type": "single_choice", "prompt": "Who did you lose it to?", "required": True,
     "options": [{"key": "acme", "label": "Acme", "sentiment": "bad"}, {"key": "globex", "label": "Globex", "sentiment": "bad"},
                 {"key": "initech", "label": "Initech", "sentiment": "bad"},
                 {"key": "in_house", "label": "Built in-house", "sentiment": "bad"},
                 {"key": "no_decision", "label": "No decision"}],
     "show_if": {"question": "lost_deal", "equals": "yes"}},
    {"key": "missing_features", "type": "multi_choice", "prompt": "Which missing capabilities came up in your deals?",
     "required": False, "allow_other": True,
     "options": [{"key": "sso", "label": "Single sign-on", "sentiment": "bad"},
                 {"key": "reporting", "label": "Custom reporting", "sentiment": "bad"},
                 {"key": "api", "label": "Public API", "sentiment": "bad"},
                 {"key": "mobile", "label": "Mobile app", "sentiment": "bad"},
                 {"key": "integrations", "label": "CRM integrations", "sentiment": "bad"}]},
    {"key": "deals_closed", "type": "number", "prompt": "How many deals did you close this month?", "min": 0, "max": 100,
     "unit": "deals", "whole_numbers": True, "pinned": True},
    {"key": "biggest_gap", "type": "text", "prompt": "What is the one thing product should hear from you this month?",
     "required": False, "max_length": 1000, "help": "Concrete beats general: a deal, a quote, a workaround."},
]

COMMENTS = [
    "Two enterprise prospects asked for SAML SSO before they would start a trial.",
    "Globex is discounting heavily in mid-market; we lost one on price alone.",
    "Reporting exports keep coming up: finance teams want scheduled CSVs.",
    "The new onboarding flow shortened our trials, customers noticed.",
    "Prospects compare our mobile app unfavourably with Initech's.",
    "Security questionnaires take weeks; a trust page would help.",
    "Salesforce sync delays made a demo awkward.",
    "Customers love the API docs, keep investing there.",
]


def seed_demo(now=None) -> list[str]:
    now = now or utcnow()
    # Re-running after a partial failure is fine (people import updates by
    # email); running over a real installation's question sets is not.
    if db.session.scalar(select(func.count()).select_from(Cadence)) or db.session.scalar(
        select(func.count()).select_from(QuestionSet)
    ):
        return ["the database already has question sets or cadences; demo seed left it as it is"]
    lines = []
    report = import_people(DEMO_PEOPLE.read_text(encoding="utf-8"))
    if not report.imported:
        db.session.rollback()
        raise RuntimeError("the demo people file did not import: " + "; ".join(f"line {n}: {r}" for n, r in report.errors))
    lines.append(f"people: {report.created} imported")
    staff = db.session.scalars(
        select(Person).join(PersonRole).where(PersonRole.role.in_(("pm", "leader", "admin"))).distinct()
    ).all()
    for person in staff:
        person.password_hash = hash_password(DEMO_PASSWORD)
    owner = db.session.scalar(select(Person).where(Person.email == "aroha.nguyen@example.com"))
    question_set = create_question_set(
        owner,
        {"name": DEMO_SET_NAME, "description": "Twelve questions' worth of signal in seven: confidence, advocacy, losses, gaps.",
         "confidentiality": "confidential", "min_group_size": 5, "questions": PULSE_QUESTIONS},
    )
    publish(question_set, now=now - timedelta(days=400))
    db.session.commit()
    lines.append(f"question set: {DEMO_SET_NAME} (published)")

    first_month = (now.replace(day=1) - timedelta(days=31 * HISTORY_MONTHS)).date().replace(day=1)
    cadence = create_cadence(
        {"name": "Monthly pulse", "question_set_id": question_set.id, "rrule": "FREQ=MONTHLY;BYDAY=+1MO",
         "send_time": "09:00", "timezone": "America/New_York", "open_days": 7, "reminder_days": [2, 4],
         "audience": {}, "starts_on": first_month.isoformat()},
        owner,
        now - timedelta(days=31 * HISTORY_MONTHS + 31),
    )
    db.session.commit()

    history = planner.cadence_occurrences(cadence, until=now - timedelta(days=cadence.open_days), limit=100)
    current_key = f"{now.year:04d}-{now.month:02d}"
    history = [o for o in history if o.period_key != current_key][-HISTORY_MONTHS:]
    rng = random.Random(20261129)
    optimism = {}
    for index, occurrence in enumerate(history):
        round_ = planner.open_round(cadence, occurrence, occurrence.scheduled_at)
        answered = simulate_round(round_, index, len(history), rng, optimism)
        finish_round(round_)
        lines.append(f"round {occurrence.period_key}: {answered} answers")
        raised = watch_round(round_, now)
        if raised:
            lines.append(f"  alerts: {len(raised)} (see /alerts)")

    current = Occurrence(current_key, now, now + timedelta(days=cadence.open_days), now.date())
    round_ = planner.open_round(cadence, current, now)
    if round_ is not None:
        lines.append(f"round {current_key}: open now until {current.closes_at:%Y-%m-%d %H:%M} UTC")
        lines.append(f"{len(round_invitations(round_))} invitations go out at the next tick (flask --app wsgi dev runs one at start)")
    cadence.next_open_at = None  # let the next tick plan from here
    db.session.commit()
    from surveys.triage.demo import seed_triage

    lines += seed_triage(question_set, owner, now)

    from surveys.deals.demo import seed_deal_moments

    lines.extend(seed_deal_moments(owner, now, random.Random(20261215)))
    return lines


def round_invitations(round_: Round) -> list[int]:
    return list(db.session.scalars(select(Invitation.id).where(Invitation.round_id == round_.id)))


def simulate_round(round_: Round, index: int, total: int, rng: random.Random, optimism: dict) -> int:
    """Answer ~75 % of invitations with plausible, slowly drifting values."""
    version = round_.version
    invitations = db.session.scalars(select(Invitation).where(Invitation.round_id == round_.id)).all()
    progress = index / max(1, total - 1)  # 0 .. 1 across the year
    answered = 0
    for invitation in invitations:
        mood = optimism.setdefault(invitation.person_id, rng.gauss(0, 0.8))
        if rng.random() > 0.68 + 0.12 * progress:
            continue
        lost = rng.random() < 0.45 - 0.1 * progress
        values = {
            "win_confidence": _clamp(round(3.0 + 0.7 * progress + mood + rng.gauss(0, 0.7)
                                           - planted_slide(invitation.region, index, total)), 1, 5),
            "recommend": _clamp(round(6.5 + 1.5 * progress + 1.5 * mood + rng.gauss(0, 1.6)), 0, 10),
            "lost_deal": "yes" if lost else "no",
            "deals_closed": float(max(0, round(rng.gauss(2.5 + progress, 1.5)))),
        }
        if lost:
            weights = [0.25, 0.15 + 0.3 * progress, 0.2, 0.15, 0.25 - 0.1 * progress]
            values["lost_to"] = rng.choices(["acme", "globex", "initech", "in_house", "no_decision"], weights)[0]
        features = [key for key, p in (("sso", 0.45 - 0.2 * progress), ("reporting", 0.35), ("api", 0.2),
                                        ("mobile", 0.15 + 0.2 * progress), ("integrations", 0.3)) if rng.random() < p]
        if features:
            values["missing_features"] = features
        if rng.random() < 0.3:
            values["biggest_gap"] = rng.choice(COMMENTS)
        moment = round_.opens_at + timedelta(hours=rng.uniform(1, 24 * 4))
        store_response(invitation, version, values, moment)
        answered += 1
    return answered


# The planted shift, so that a newcomer sees an alert: win confidence in EMEA
# slides over the last three months of history (0.7 of a point a month).
SLIDE_REGION = "EMEA"
SLIDE_MONTHS = 3
SLIDE_PER_MONTH = 0.7


def planted_slide(region, index: int, total: int) -> float:
    months_in = index - (total - SLIDE_MONTHS) + 1
    return SLIDE_PER_MONTH * months_in if region == SLIDE_REGION and months_in > 0 else 0.0


def finish_round(round_: Round) -> None:
    """History happened: invites went out at opening and the window closed."""
    invitation_ids = select(Invitation.id).where(Invitation.round_id == round_.id)
    db.session.execute(
        update(Delivery)
        .where(Delivery.invitation_id.in_(invitation_ids), Delivery.kind == "invite")
        .values(status="sent", sent_at=round_.opens_at, attempts=1)
    )
    db.session.execute(
        update(Round).where(Round.id == round_.id).values(status="closed", closed_at=round_.closes_at)
    )
    planner.cancel_unsent(round_.id)
    db.session.commit()


def _clamp(value, low, high):
    return max(low, min(high, value))
