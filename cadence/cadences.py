"""Cadences: validate, create, edit, pause, resume, nudge, preview, describe
(archive and restore are in `surveys.lifecycle`, with the question sets').

Plain functions shared by the staff UI, the API and the CLI. Most add to the
session and leave the commit to the caller; the staff commands (pause,
resume, nudge) are whole actions: they record the audit event, commit and
hand out what is due, so the page and the API do exactly the same thing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select

from cadence.clock import isoformat_z
from cadence.models import Cadence, Invitation, Round, RoundOverride
from surveys.org.models import Team
from cadence.planner import hand_out_due_deliveries, nudge_non_responders, occurrences_to_plan, refresh_next_open
from cadence.recurrence import MAX_MOVE_DAYS, RECIPIENT, RecurrenceError, parse_send_time, validate_rule, zone_for
from surveys import audit, payloads
from surveys.disclosure import effective_policy, round_counts
from surveys.extensions import db
from surveys.models import QuestionSet
from surveys.limits import MAX_ID
from surveys.payloads import ONE_LINE, ONE_LINE_TITLE

MAX_OPEN_DAYS = 90


class CadenceInvalid(ValueError):
    def __init__(self, errors: dict):
        super().__init__("invalid cadence")
        self.errors = errors


_NAMES = {"type": "array", "items": {"type": "string", "pattern": r"\S", "title": "a name, not blank"}}
_CADENCE_INPUT = payloads.declare("CadenceInput", {
    "type": "object",
    "required": ["name", "question_set_id", "rrule"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 200, "pattern": ONE_LINE, "title": ONE_LINE_TITLE},
        "question_set_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "rrule": {"type": "string", "maxLength": 500,
                  "description": "RFC 5545 RRULE without DTSTART, e.g. FREQ=MONTHLY;BYDAY=+1MO"},
        "send_time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
                      "title": "a time as HH:MM (24-hour clock)", "default": "09:00"},
        "timezone": {"type": "string", "maxLength": 64, "description": "IANA zone name, or 'recipient'", "default": "UTC"},
        "open_days": {"type": "integer", "minimum": 1, "maximum": MAX_OPEN_DAYS, "default": 5},
        "reminder_days": {"type": "array", "items": {"type": "integer", "minimum": 1},
                          "description": "Days after opening, each before the round closes; at most 5 distinct days."},
        "grace_days": {"type": "integer", "minimum": 0, "maximum": 30, "default": 0},
        "add_late_joiners": {"type": "boolean", "default": False},
        "audience": {"type": "object", "additionalProperties": False,
                     "properties": {"teams": _NAMES, "regions": _NAMES, "segments": _NAMES}},
        "starts_on": {"type": "string", "format": "date"},
        "ends_on": {"type": ["string", "null"], "format": "date"},
    },
})
payloads.declare("CadenceChanges", {
    **_CADENCE_INPUT, "required": [],
    "description": "Any of a cadence's fields (as CadenceInput); those left out keep their values.",
})


def validate_cadence(data: dict, today: date, keep_set_id: int | None = None) -> dict:
    """Check a cadence payload: its shape against CadenceInput, then what a
    schema cannot say (the set exists and is published, the rule parses, the
    zone exists, the teams exist, reminders fall inside the round, the dates
    are in order). Raise CadenceInvalid with a message per field, or return
    the model's fields. An archived set is refused, unless it is
    `keep_set_id`, the set an archived cadence being edited already sends."""
    errors = payloads.shape_errors("CadenceInput", data)
    if "body" in errors:
        raise CadenceInvalid(errors)

    def fits(field):
        return payloads.fits(errors, field)

    name = data.get("name", "")
    if fits("name") and not name.strip():
        errors["name"] = "give the cadence a name"

    set_id = data.get("question_set_id")
    if fits("question_set_id"):
        question_set = db.session.get(QuestionSet, set_id)
        if question_set is None:
            errors["question_set_id"] = f"no question set with id {set_id}"
        elif question_set.latest_published is None:
            errors["question_set_id"] = "publish the question set before scheduling it"
        elif question_set.is_archived and set_id != keep_set_id:
            errors["question_set_id"] = f"the question set “{question_set.name}” is archived: restore it first"

    rule = data.get("rrule", "").strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[6:]
    if fits("rrule"):
        try:
            validate_rule(rule)
        except RecurrenceError as error:
            errors["rrule"] = str(error)

    tz_name = data.get("timezone", "UTC")
    if fits("timezone") and tz_name != RECIPIENT:
        try:
            zone_for(tz_name)
        except RecurrenceError as error:
            errors["timezone"] = f"{error}; use an IANA name such as Europe/Berlin, or \"recipient\""

    open_days = data.get("open_days", 5)
    reminder_days = sorted(set(data.get("reminder_days", [])))
    if fits("reminder_days") and fits("open_days"):
        if any(day >= open_days for day in reminder_days):
            errors["reminder_days"] = "each reminder must fall after opening and before the round closes"
        elif len(reminder_days) > 5:
            errors["reminder_days"] = "at most 5 reminders"

    audience = {key: [v.strip() for v in values] for key, values in data.get("audience", {}).items()}
    if fits("audience.teams"):
        known = set(db.session.scalars(select(Team.path).where(Team.path.in_(audience.get("teams", [])))))
        unknown = [t for t in audience.get("teams", []) if t not in known]
        if unknown:
            errors["audience.teams"] = f"unknown team {unknown[0]!r} (use the full path, e.g. 'Sales / EMEA')"

    starts_on = date.fromisoformat(data["starts_on"]) if fits("starts_on") and "starts_on" in data else today
    ends_on = date.fromisoformat(data["ends_on"]) if fits("ends_on") and data.get("ends_on") else None
    if ends_on and ends_on < starts_on:
        errors["ends_on"] = "must not be before the start date"

    if errors:
        raise CadenceInvalid(errors)
    return {
        "name": name.strip(), "question_set_id": set_id, "rrule": rule, "send_time": data.get("send_time", "09:00"),
        "timezone": tz_name, "open_days": open_days, "grace_days": data.get("grace_days", 0),
        "add_late_joiners": data.get("add_late_joiners", False), "reminder_days": reminder_days,
        "audience": audience, "starts_on": starts_on, "ends_on": ends_on,
    }


def create_cadence(data: dict, created_by, now: datetime) -> Cadence:
    """Validate, store and audit a new cadence (CadenceInvalid: nothing stored)."""
    fields = validate_cadence(data, now.date())
    cadence = Cadence(**fields, created_by_id=created_by.id if created_by else None, created_at=now, status="active")
    db.session.add(cadence)
    db.session.flush()
    refresh_next_open(cadence)
    audit.record(created_by, "cadence.created", cadence)
    db.session.commit()
    return cadence


def update_cadence(cadence: Cadence, data: dict, by, now: datetime) -> Cadence:
    """Validate and store new settings for a cadence, and audit what changed
    (CadenceInvalid: nothing changes). `data` may give only some fields (a
    CadenceChanges payload); the others keep their values. Rounds already
    recorded keep the version, audience and times they were opened with; the
    next tick plans the rest of the series from the new settings."""
    if errors := payloads.shape_errors("CadenceChanges", data):
        raise CadenceInvalid(errors)
    current = {key: value for key, value in cadence_to_dict(cadence).items() if key in _CADENCE_INPUT["properties"]}
    fields = validate_cadence({**current, **data}, now.date(), keep_set_id=cadence.question_set_id)
    changed = {}
    for name, value in fields.items():
        if _comparable(name, getattr(cadence, name)) != _comparable(name, value):
            changed[name] = value
            setattr(cadence, name, value)
    refresh_next_open(cadence)
    if changed:
        audit.record(by, "cadence.updated", cadence, {"changed": sorted(changed)})
    db.session.commit()
    return cadence


def _comparable(field: str, value):
    """An audience without its empty lists: {} and {"teams": []} both mean everyone."""
    if field == "audience":
        return {key: values for key, values in (value or {}).items() if values}
    return value


def pause(cadence: Cadence, by) -> Cadence:
    """No new rounds open until the cadence is resumed; open rounds go on."""
    cadence.status = "paused"
    audit.record(by, "cadence.paused", cadence)
    db.session.commit()
    return cadence


def resume(cadence: Cadence, by) -> Cadence:
    """The next tick plans the cadence again: an occurrence missed while paused
    whose window is still open opens (late); older ones are recorded as skipped."""
    cadence.status = "active"
    cadence.next_open_at = None
    audit.record(by, "cadence.resumed", cadence)
    db.session.commit()
    return cadence


def nudge(round_: Round, by, now: datetime) -> int | None:
    """Remind the round's non-responders now (refused with NudgeRefused
    within 24 hours of the last nudge); returns how many were nudged, or
    None for a round whose results are held until close: how many have not
    answered moves with the answers, so it is not said, not even in the audit log."""
    count = nudge_non_responders(round_, now)
    if effective_policy(round_)["hold_until_close"]:
        count = None
    audit.record(by, "round.nudged", round_, {"nudged": count})
    db.session.commit()
    hand_out_due_deliveries(now)
    return count


def preview(cadence: Cadence, now: datetime, count: int = 5) -> list[dict]:
    """The next `count` occurrences the scheduler will act on, with reminder
    times: the same list the tick reads (`occurrences_to_plan`), so a period
    that has a round is never offered. The first may already be due (its
    window is open and no round exists yet): `due_now` says the next tick
    opens it, late."""
    items = []
    zone = zone_for("UTC" if cadence.uses_recipient_timezone else cadence.timezone)
    for occurrence in occurrences_to_plan(cadence, open_at=now, limit=count):
        items.append(
            {
                "period_key": occurrence.period_key,
                "opens_at": isoformat_z(occurrence.scheduled_at),
                "closes_at": isoformat_z(occurrence.closes_at),
                "reminders_at": [isoformat_z(t) for t in occurrence.reminder_times(cadence.reminder_days or [], zone)],
                "opens_at_local": occurrence.scheduled_at.astimezone(zone).isoformat(),
                "closes_at_local": occurrence.closes_at.astimezone(zone).isoformat(),
                "due_now": occurrence.scheduled_at <= now,
                "skipped": occurrence.skip,
                "moved_from": occurrence.moved_from.isoformat() if occurrence.moved_from else None,
            }
        )
    return items


def change_occurrence(cadence: Cadence, period_key: str, action: str, opens_on: date | None, by, now: datetime) -> RoundOverride:
    """Skip one upcoming occurrence, or move it to another date (the series
    is unchanged). Raises CadenceInvalid with a reason."""
    if action not in ("skip", "move"):
        raise CadenceInvalid({"action": "choose skip or move"})
    if db.session.scalar(select(Round.id).where(Round.cadence_id == cadence.id, Round.period_key == period_key)):
        raise CadenceInvalid({"period_key": f"the {period_key} round has already opened (or been recorded)"})
    natural = next((o for o in _natural_upcoming(cadence, now) if o.period_key == period_key), None)
    if natural is None:
        raise CadenceInvalid({"period_key": f"{period_key} is not one of the upcoming rounds"})
    if action == "move":
        if opens_on is None:
            raise CadenceInvalid({"opens_on": "give the date the round should open"})
        if abs((opens_on - natural.local_date).days) > MAX_MOVE_DAYS:
            raise CadenceInvalid({"opens_on": f"move a round by at most {MAX_MOVE_DAYS} days"})
        zone = zone_for("UTC" if cadence.uses_recipient_timezone else cadence.timezone)
        if datetime.combine(opens_on, parse_send_time(cadence.send_time), zone) <= now:
            raise CadenceInvalid({"opens_on": "the new date must be in the future"})
    override = db.session.scalar(
        select(RoundOverride).where(RoundOverride.cadence_id == cadence.id, RoundOverride.period_key == period_key)
    ) or RoundOverride(cadence_id=cadence.id, period_key=period_key)
    override.action = action
    override.opens_on = opens_on if action == "move" else None
    override.created_by_id = by.id if by else None
    db.session.add(override)
    cadence.next_open_at = None  # the next tick plans again
    audit.record(by, "cadence.occurrence_changed", cadence,
                 {"period_key": period_key, "action": action, "opens_on": opens_on.isoformat() if opens_on else None})
    db.session.commit()
    return override


def restore_occurrence(cadence: Cadence, period_key: str, by) -> None:
    """Undo a skip or a move: the occurrence is back on the series' date."""
    db.session.execute(
        delete(RoundOverride).where(RoundOverride.cadence_id == cadence.id, RoundOverride.period_key == period_key)
    )
    cadence.next_open_at = None
    audit.record(by, "cadence.occurrence_restored", cadence, {"period_key": period_key})
    db.session.commit()


def _natural_upcoming(cadence: Cadence, now: datetime, count: int = 24):
    """The series' own next occurrences, before any override."""
    from cadence.recurrence import occurrences

    return occurrences(cadence.rrule, cadence.starts_on, cadence.send_time, cadence.timezone, cadence.open_days,
                       after=now - timedelta(days=MAX_MOVE_DAYS), ends_on=cadence.ends_on, limit=count)


def cadence_to_dict(cadence: Cadence) -> dict:
    return {
        "id": cadence.id,
        "name": cadence.name,
        "question_set_id": cadence.question_set_id,
        "rrule": cadence.rrule,
        "send_time": cadence.send_time,
        "timezone": cadence.timezone,
        "open_days": cadence.open_days,
        "reminder_days": list(cadence.reminder_days or []),
        "grace_days": cadence.grace_days or 0,
        "add_late_joiners": bool(cadence.add_late_joiners),
        "audience": {
            "teams": list((cadence.audience or {}).get("teams", [])),
            "regions": list((cadence.audience or {}).get("regions", [])),
            "segments": list((cadence.audience or {}).get("segments", [])),
        },
        "starts_on": cadence.starts_on.isoformat(),
        "ends_on": cadence.ends_on.isoformat() if cadence.ends_on else None,
        "status": cadence.status,
        "next_open_at": isoformat_z(cadence.next_open_at),
        "created_at": isoformat_z(cadence.created_at),
        "archived_at": isoformat_z(cadence.archived_at),
    }


def round_summaries(cadence: Cadence) -> list[dict]:
    """Rounds of a cadence with invited and responded counts (one query)."""
    rows = db.session.execute(
        select(
            Round,
            func.count(Invitation.id).label("invited"),
            func.count(Invitation.responded_at).label("responded"),
        )
        .outerjoin(Invitation, Invitation.round_id == Round.id)
        .where(Round.cadence_id == cadence.id)
        .group_by(Round.id)
        .order_by(Round.scheduled_at.desc())
    ).all()
    # Counts go through the confidentiality rules (surveys.disclosure.round_counts):
    # nothing that moves with answers while a held round is open, and nothing
    # but "withheld" for a confidential round under the minimum group size.
    return [
        {
            "id": round_.id,
            "period_key": round_.period_key,
            "opens_at": isoformat_z(round_.opens_at),
            "closes_at": isoformat_z(round_.closes_at),
            "status": round_.status,
            "late": round_.late,
            "note": round_.note,
            **round_counts(round_, invited_count, responded_count),
        }
        for round_, invited_count, responded_count in rows
    ]
