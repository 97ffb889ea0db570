"""Moments: which deal events ask the deal's owner which questions, and when.

A processed deal event calls `on_deal_changed`; each active moment whose
trigger and filters match gets one invitation for the deal (the unique
(moment, deal) decides, so a repeated or racing event adds nothing). Its send
time is the close plus the moment's delay, moved into the owner's working
hours in their own time zone. `run_moments(now)`, called by the tick job,
sends what is due, gives each rep one daily email listing their deals still
waiting (the reminders), and expires what is past its expiry.
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cadence import mail
from cadence.mail import mail_backend
from surveys.org.models import Person
from surveys import answers as rep_answers
from surveys.deals.models import TRIGGERS, Deal, DealAnswer, DealDigest, Moment, MomentInvitation
from surveys import payloads
from surveys.extensions import db
from surveys.limits import MAX_ID
from surveys.models import QuestionSet

LINK_SALT = "canary.deal-link.v1"
HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
# Open stages in the order a deal moves through them; a move to an earlier
# one is "stage_back". DEAL_STAGE_ORDER (comma-separated) replaces it.
DEFAULT_STAGE_ORDER = ("prospecting", "qualification", "discovery", "needs analysis", "value proposition",
                       "demo", "proposal", "proposal/price quote", "negotiation", "negotiation/review", "commit")
OUTCOME_TRIGGER = {"lost": "closed_lost", "won": "closed_won", "no_decision": "no_decision"}


class MomentInvalid(Exception):
    def __init__(self, errors: dict):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# -- Defining moments ---------------------------------------------------------


_NAMES = {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}}
_MOMENT_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "question_set_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID,
                        "description": "A published question set whose answers are attributed."},
    "on": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(TRIGGERS)}},
    "min_amount": {"type": ["number", "null"], "minimum": 0,
                   "description": "In the reporting currency; a deal whose currency has no rate on its close date passes."},
    "segments": _NAMES, "regions": _NAMES, "products": _NAMES,
    "delay_minutes": {"type": "integer", "minimum": 0, "maximum": 14 * 24 * 60, "default": 60,
                      "description": "Minutes after the close (at most two weeks)."},
    "working_hours": {"type": "string", "pattern": HOURS.pattern, "default": "09:00-18:00",
                      "title": "'HH:MM-HH:MM' with the start before the end, e.g. '09:00-18:00'"},
    "reminder_days": {"type": "array", "uniqueItems": True, "items": {"type": "integer", "minimum": 1},
                      "description": "Days after sending, each before the expiry."},
    "expire_days": {"type": "integer", "minimum": 1, "maximum": 60, "default": 7},
}
payloads.declare("MomentInput", {"type": "object", "required": ["name", "question_set_id", "on"],
                                 "additionalProperties": False, "properties": _MOMENT_FIELDS}, sentences=True)
payloads.declare("MomentChange", {"type": "object", "additionalProperties": False, "properties": _MOMENT_FIELDS,
                                  "description": "The fields to change."}, sentences=True)


def validate_moment(data: dict, partial: bool = False) -> dict:
    """Check a MomentInput (a MomentChange when `partial`), then what a schema
    cannot say; raise MomentInvalid (errors keyed by field) or return the
    model's fields."""
    data = payloads.stripped(data)
    errors = payloads.shape_errors("MomentChange" if partial else "MomentInput", data, depth=1)
    defaults = {} if partial else {"min_amount": None, "segments": None, "regions": None, "products": None,
                                   "delay_minutes": 60, "working_hours": "09:00-18:00", "expire_days": 7,
                                   "reminder_days": []}
    values = {**defaults, **{name: value for name, value in data.items() if name not in errors}}
    if "question_set_id" in values:
        question_set = db.session.get(QuestionSet, values["question_set_id"])
        if question_set is None:
            errors["question_set_id"] = "No such question set."
        elif question_set.confidentiality != "attributed":
            errors["question_set_id"] = "A deal identifies its owner: moments ask attributed question sets only."
        elif question_set.latest_published is None:
            errors["question_set_id"] = "Publish the question set first."
    if "on" in values:
        values["on"] = sorted(set(values["on"]), key=TRIGGERS.index)
    if values.get("min_amount") is not None:
        values["min_amount"] = float(values["min_amount"])
    for name in ("segments", "regions", "products"):
        if name in values:
            values[name] = values[name] or []
    hours = values.get("working_hours")
    if hours and hours[:5] >= hours[6:]:
        errors["working_hours"] = "'HH:MM-HH:MM' with the start before the end, e.g. '09:00-18:00'."
    if "reminder_days" in values:
        values["reminder_days"] = sorted(values["reminder_days"])
        if "expire_days" not in errors and any(day >= values.get("expire_days", 60) for day in values["reminder_days"]):
            errors["reminder_days"] = "Distinct whole days after sending, each before the expiry."
    if errors:
        raise MomentInvalid(errors)
    return values


def create_moment(actor, data: dict) -> Moment:
    moment = Moment(created_by_id=getattr(actor, "id", None), status="active", **validate_moment(data))
    db.session.add(moment)
    db.session.flush()
    return moment


def update_moment(moment: Moment, data: dict) -> Moment:
    for name, value in validate_moment(data, partial=True).items():
        setattr(moment, name, value)
    return moment


def moment_dict(moment: Moment) -> dict:
    return {
        "id": moment.id, "name": moment.name, "question_set_id": moment.question_set_id, "on": list(moment.on),
        "min_amount": moment.min_amount, "segments": list(moment.segments), "regions": list(moment.regions),
        "products": list(moment.products), "delay_minutes": moment.delay_minutes,
        "working_hours": moment.working_hours, "reminder_days": list(moment.reminder_days),
        "expire_days": moment.expire_days, "status": moment.status,
    }


# -- Deciding who is asked, and when ------------------------------------------


def triggers_for(previous: dict | None, deal: Deal) -> set[str]:
    """What this change of the deal is: a close (from an open or unknown
    state), or an open deal moved back a stage."""
    before = (previous or {}).get("outcome")
    found = set()
    if deal.outcome in OUTCOME_TRIGGER and before != deal.outcome:
        found.add(OUTCOME_TRIGGER[deal.outcome])
    if deal.outcome == "open" and before == "open":
        order = _stage_order()
        old, new = (previous.get("stage") or "").strip().lower(), (deal.stage or "").strip().lower()
        if old in order and new in order and order.index(new) < order.index(old):
            found.add("stage_back")
    return found


def _stage_order() -> list[str]:
    configured = current_app.config.get("DEAL_STAGE_ORDER")
    if configured:
        return [s.strip().lower() for s in configured.split(",") if s.strip()]
    return list(DEFAULT_STAGE_ORDER)


def matches(moment: Moment, deal: Deal) -> bool:
    """Whether the deal passes the moment's filters. "Amount at least X" is
    in the reporting currency. A deal whose currency has no rate on its close
    date passes it: a moment fires once, when the deal closes, and a rate
    added later cannot ask again, so Canary would rather ask about a deal
    that proves small than never hear about one that was large."""
    if moment.min_amount is not None and deal.amount_reporting is not None and deal.amount_reporting < moment.min_amount:
        return False
    if moment.segments and deal.segment not in moment.segments:
        return False
    if moment.regions and deal.region not in moment.regions:
        return False
    if moment.products and not set(moment.products) & set(deal.products or []):
        return False
    return True


def within_working_hours(instant: datetime, zone: str, hours: str) -> datetime:
    """The first instant at or after `instant` that falls in the working hours
    (Monday to Friday) of the zone."""
    tz = ZoneInfo(zone)
    start = time(int(hours[0:2]), int(hours[3:5]))
    end = time(int(hours[6:8]), int(hours[9:11]))
    local = instant.astimezone(tz)
    for _ in range(8):
        if local.weekday() < 5:
            opening = datetime.combine(local.date(), start, tzinfo=tz)
            closing = datetime.combine(local.date(), end, tzinfo=tz)
            if local < opening:
                return opening.astimezone(ZoneInfo("UTC"))
            if local < closing:
                return local.astimezone(ZoneInfo("UTC"))
        local = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=tz)
    raise AssertionError("a week always has working hours")


def _zone(person: Person) -> str:
    try:
        ZoneInfo(person.timezone or "UTC")
        return person.timezone or "UTC"
    except Exception:  # an unknown zone name: fall back to UTC rather than never asking
        return "UTC"


def _insert_ignoring_conflicts(model):
    module = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing()


def on_deal_changed(deal: Deal, previous: dict | None, happened_at: datetime, now: datetime) -> int:
    """Invite the deal's owner for each matching moment, in the caller's
    transaction (the one that records the event's outcome, so the two are
    committed together or not at all); returns how many invitations this
    call created (0 when they already existed)."""
    found = triggers_for(previous, deal)
    if not found:
        return 0
    owner = db.session.get(Person, deal.owner_id)
    if owner is None or not owner.active:
        return 0
    created = 0
    closed_on = deal.close_date
    moments = db.session.scalars(select(Moment).where(Moment.status == "active").order_by(Moment.id)).all()
    for moment in moments:
        trigger = next((t for t in moment.on if t in found), None)
        if trigger is None or not matches(moment, deal):
            continue
        if closed_on is not None and closed_on < (now - timedelta(days=moment.expire_days)).date():
            continue  # a close learned too late to ask about (an old deal in an import)
        question_set = db.session.get(QuestionSet, moment.question_set_id)
        version = question_set.latest_published
        if question_set.confidentiality != "attributed" or version is None:
            continue
        send_at = within_working_hours(max(happened_at, now - timedelta(days=1)) + timedelta(minutes=moment.delay_minutes),
                                       _zone(owner), moment.working_hours)
        expires_at = send_at + timedelta(days=moment.expire_days)
        result = db.session.execute(_insert_ignoring_conflicts(MomentInvitation).values(
            moment_id=moment.id, deal_id=deal.id, person_id=owner.id, version_id=version.id, trigger=trigger,
            status="scheduled", send_at=send_at, expires_at=expires_at, reminders_sent=0,
            nonce=secrets.token_urlsafe(12), created_at=now).returning(MomentInvitation.id))
        created += len(result.all())
    return created


# -- Links --------------------------------------------------------------------


def _serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=LINK_SALT)


def invitation_token(invitation: MomentInvitation) -> str:
    return _serializer().dumps([invitation.id, invitation.nonce])


def invitation_url(invitation: MomentInvitation) -> str:
    return f"{current_app.config['BASE_URL']}/d/{invitation_token(invitation)}"


def invitation_for_token(token: str) -> MomentInvitation | None:
    try:
        invitation_id, nonce = _serializer().loads(token)
        invitation = db.session.get(MomentInvitation, int(invitation_id))
    except (BadSignature, ValueError, TypeError):
        return None
    if invitation is None or invitation.nonce != str(nonce) or invitation.status in ("scheduled", "cancelled"):
        return None
    return invitation


def accepts_answers(invitation: MomentInvitation, now: datetime) -> bool:
    return invitation.status in ("sent", "answered") and now < invitation.expires_at


def store_answers(invitation: MomentInvitation, cleaned: dict, now: datetime) -> None:
    """Replace the invitation's answers, all or nothing; they are stored with the deal."""
    version = rep_answers.published_version(invitation.version_id)
    rows = []
    for question in version.questions:
        if question.key in cleaned:
            for row in rep_answers.answer_rows(question, cleaned[question.key], cleaned.get(question.key + rep_answers.OTHER_SUFFIX)):
                rows.append({"invitation_id": invitation.id, "moment_id": invitation.moment_id,
                             "deal_id": invitation.deal_id, "question_key": question.key, **row})
    db.session.execute(delete(DealAnswer).where(DealAnswer.invitation_id == invitation.id))
    if rows:
        db.session.execute(DealAnswer.__table__.insert(), rows)
    db.session.execute(update(MomentInvitation).where(MomentInvitation.id == invitation.id).values(
        status="answered", responded_at=now))
    db.session.commit()


def stored_values(invitation: MomentInvitation) -> dict:
    version = rep_answers.published_version(invitation.version_id)
    rows = db.session.scalars(select(DealAnswer).where(DealAnswer.invitation_id == invitation.id)).all()
    values = {}
    for question in version.questions:
        mine = [r for r in rows if r.question_key == question.key]
        if not mine:
            continue
        if question.type in ("scale", "nps"):
            values[question.key] = str(int(mine[0].value_num))
        elif question.type == "number":
            values[question.key] = rep_answers.plain_number(mine[0].value_num)
        elif question.type == "yes_no":
            values[question.key] = "yes" if mine[0].value_num else "no"
        elif question.type == "multi_choice":
            values[question.key] = [r.value_text for r in mine]
        else:
            values[question.key] = mine[0].value_text
    return values


# -- The tick: send, remind (one digest a day per rep), expire ---------------


def run_moments(now: datetime) -> dict:
    report = {"expired": expire(now), "sent": send_due(now)}
    report["digests"] = send_digests(now)
    return report


def expire(now: datetime) -> int:
    result = db.session.execute(update(MomentInvitation).where(
        MomentInvitation.status.in_(("scheduled", "sent")), MomentInvitation.expires_at <= now).values(status="expired"))
    db.session.commit()
    return result.rowcount or 0


def send_due(now: datetime) -> int:
    due = db.session.scalars(select(MomentInvitation.id).where(
        MomentInvitation.status == "scheduled", MomentInvitation.send_at <= now).order_by(MomentInvitation.send_at)).all()
    sent = 0
    for invitation_id in due:
        # Claim it: of two ticks racing, one sends.
        claimed = db.session.execute(update(MomentInvitation).where(
            MomentInvitation.id == invitation_id, MomentInvitation.status == "scheduled").values(status="sent", sent_at=now)).rowcount
        db.session.commit()
        if not claimed:
            continue
        invitation = db.session.get(MomentInvitation, invitation_id)
        try:
            _send(_invitation_message(invitation))
        except Exception as error:  # the mail server refused or is away: the next tick tries again
            db.session.rollback()
            db.session.execute(update(MomentInvitation).where(MomentInvitation.id == invitation_id).values(
                status="scheduled", sent_at=None))
            db.session.commit()
            current_app.logger.warning("deal moment invitation %s not sent: %s", invitation_id, type(error).__name__)
            continue
        invitation.next_reminder_at = _reminder_at(invitation, 0)
        db.session.commit()
        sent += 1
    return sent


def _reminder_at(invitation: MomentInvitation, index: int) -> datetime | None:
    days = invitation.moment.reminder_days
    if index >= len(days):
        return None
    return within_working_hours(invitation.sent_at + timedelta(days=days[index]), _zone(invitation.person),
                                invitation.moment.working_hours)


def send_digests(now: datetime) -> int:
    """One email per rep per local day, listing every deal of theirs still
    waiting, on the days any of them is due a reminder."""
    due = db.session.scalars(select(MomentInvitation).where(
        MomentInvitation.status == "sent", MomentInvitation.next_reminder_at <= now,
        MomentInvitation.expires_at > now)).all()
    by_person: dict[int, list[MomentInvitation]] = {}
    for invitation in due:
        by_person.setdefault(invitation.person_id, []).append(invitation)
    sent = 0
    for person_id, reminded in by_person.items():
        person = db.session.get(Person, person_id)
        day = now.astimezone(ZoneInfo(_zone(person))).date()
        waiting = db.session.scalars(select(MomentInvitation).join(Deal).where(
            MomentInvitation.person_id == person_id, MomentInvitation.status == "sent",
            MomentInvitation.expires_at > now).order_by(Deal.close_date, Deal.id)).all()
        inserted = db.session.execute(_insert_ignoring_conflicts(DealDigest).values(
            person_id=person_id, day=day, deals=len(waiting), sent_at=now).returning(DealDigest.id)).all()
        if not inserted:
            db.session.rollback()
            continue  # today's digest went out already; these wait for tomorrow's
        for invitation in reminded:
            invitation.reminders_sent += 1
            invitation.next_reminder_at = _reminder_at(invitation, invitation.reminders_sent)
        db.session.flush()
        _send(_digest_message(person, waiting, day))
        db.session.commit()
        sent += 1
    return sent


def _send(message: EmailMessage) -> None:
    with mail_backend() as backend:
        backend.send(message)


def _deal_context(deal: Deal) -> dict:
    return {"account": deal.account, "amount": f"{deal.amount:,.0f} {deal.currency}", "competitor": deal.competitor,
            "close_date": deal.close_date, "outcome": deal.outcome.replace("_", " ")}


def _invitation_message(invitation: MomentInvitation) -> EmailMessage:
    deal, person = invitation.deal, invitation.person
    version = rep_answers.published_version(invitation.version_id)
    context = {"person": person, "deal": _deal_context(deal), "link": invitation_url(invitation),
               "question_count": len(version.questions), "minutes": rep_answers.estimated_minutes(version),
               "expires_at": invitation.expires_at, "zone": _zone(person)}
    return mail.compose(to=(person.name, person.email),
                        subject=f"{deal.account}, {deal.outcome.replace('_', ' ')}: {len(version.questions)} quick questions",
                        kind="deal-moment", key=f"deal-moment.{invitation.id}", template="email/deal_moment", **context)


def _digest_message(person: Person, waiting: list[MomentInvitation], day: date) -> EmailMessage:
    items = [{"deal": _deal_context(i.deal), "link": invitation_url(i), "expires_at": i.expires_at} for i in waiting]
    return mail.compose(to=(person.name, person.email),
                        subject=f"{len(items)} closed deal{'s' if len(items) != 1 else ''} waiting for your answers",
                        kind="deal-digest", key=f"deal-digest.{person.id}.{day.isoformat()}", template="email/deal_digest",
                        person=person, items=items, zone=_zone(person))
