"""The audit log in words, for its admin page: a target such as "rounds:12"
becomes "round 2026-01 of Monthly pulse", details become short phrases
("as CSV", "by team"), and empty values (None, "", [], {}) are left out.
The stored events stay as they were written; only their reading changes."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from cadence.models import Cadence, Round
from surveys.audit import AuditEvent
from surveys.extensions import db
from surveys.models import QuestionSet
from surveys.org.models import Person

# Detail keys that name a row, and the table of that row.
REFERENCES = {"round_id": "rounds", "author_id": "people", "person_id": "people", "question_set_id": "question_sets"}

# Detail keys with a phrase of their own; any other key reads "key words: value".
PHRASES = {
    "format": lambda value: f"as {str(value).upper()}",
    "slice": lambda value: f"by {value}",
    "version": lambda value: f"version {value}",
    # An archived cadence's open round goes on: say which.
    "open_round": lambda value: f"round {value} runs on to its close",
    "changed": lambda value: "changed " + ", ".join(str(name).replace("_", " ") for name in value),
}


def readable_events(events: list[AuditEvent]) -> list[dict]:
    """[{"event", "target", "details": [phrase, ...]}] in the events' order."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for audit_event in events:
        table, identity = _reference(audit_event.target)
        if table:
            wanted[table].add(identity)
        for key, table in REFERENCES.items():
            value = (audit_event.details or {}).get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                wanted[table].add(value)
    names = _names(wanted)
    return [
        {"event": audit_event, "target": _target_text(audit_event.target, names),
         "details": _detail_phrases(audit_event.details or {}, names)}
        for audit_event in events
    ]


def _reference(target: str | None) -> tuple[str | None, int | None]:
    """("rounds", 12) for "rounds:12"; (None, None) for any other target."""
    table, _, identity = (target or "").partition(":")
    if table in NAMERS and identity.isdigit():
        return table, int(identity)
    return None, None


def _target_text(target: str | None, names: dict) -> str:
    table, identity = _reference(target)
    if table is None:
        return target or ""
    return _named(table, identity, names)


def _named(table: str, identity: int, names: dict) -> str:
    name = names.get(table, {}).get(identity)
    if name is None:
        return f"{SINGULAR[table]} #{identity} (deleted)"
    return name


def _detail_phrases(details: dict, names: dict) -> list[str]:
    phrases = []
    for key, value in sorted(details.items()):
        if _empty(value):
            continue
        if key in REFERENCES and isinstance(value, int) and not isinstance(value, bool):
            phrases.append(_named(REFERENCES[key], value, names))
        elif key in PHRASES:
            phrases.append(PHRASES[key](value))
        else:
            phrases.append(f"{key.replace('_', ' ')}: {_value_text(value)}")
    return phrases


def _empty(value) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _value_text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_value_text(item) for item in value if not _empty(item))
    if isinstance(value, dict):
        return ", ".join(f"{key.replace('_', ' ')} {_value_text(item)}"
                         for key, item in sorted(value.items()) if not _empty(item))
    return str(value)


def _round_names(ids: set[int]) -> dict[int, str]:
    rows = db.session.execute(
        select(Round.id, Round.period_key, Cadence.name).join(Cadence, Cadence.id == Round.cadence_id)
        .where(Round.id.in_(ids))
    )
    return {identity: f"round {period_key} of {cadence}" for identity, period_key, cadence in rows}


def _person_names(ids: set[int]) -> dict[int, str]:
    rows = db.session.execute(select(Person.id, Person.email).where(Person.id.in_(ids)))
    return {identity: email for identity, email in rows}


def _question_set_names(ids: set[int]) -> dict[int, str]:
    rows = db.session.execute(select(QuestionSet.id, QuestionSet.name).where(QuestionSet.id.in_(ids)))
    return {identity: f"question set {name}" for identity, name in rows}


def _cadence_names(ids: set[int]) -> dict[int, str]:
    rows = db.session.execute(select(Cadence.id, Cadence.name).where(Cadence.id.in_(ids)))
    return {identity: f"cadence {name}" for identity, name in rows}


NAMERS = {"rounds": _round_names, "people": _person_names, "question_sets": _question_set_names,
          "cadences": _cadence_names}
SINGULAR = {"rounds": "round", "people": "person", "question_sets": "question set", "cadences": "cadence"}


def _names(wanted: dict[str, set[int]]) -> dict[str, dict[int, str]]:
    return {table: NAMERS[table](ids) for table, ids in wanted.items() if ids}
