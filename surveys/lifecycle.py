"""Archiving and restoring cadences and question sets.

An archived cadence or set leaves every list (the staff pages' and the API's
by default) but keeps its history: its rounds, scorecards and versions stay
readable by URL, marked "Archived", with a Restore button for editors.

The rules, in one place for the pages and the API:
- archiving a cadence stops new rounds (the planner skips it, as it skips a
  paused one, and invites no late joiners); a round already open runs to its
  close and its reminders still go, since its reps were promised that window;
- restoring a cadence does not back-fill: the next tick plans it as after a
  pause (an occurrence whose window is still open opens, late; older missed
  ones are recorded as skipped, never sent); a cadence archived while paused
  comes back paused;
- a question set used by a cadence that is not archived cannot be archived,
  and a cadence whose set is archived cannot be restored (restore the set
  first): no live cadence ever sends an archived set.
Each action is audited and committed here, so the page and the API do the same.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from cadence.models import Cadence, Round
from surveys import audit
from surveys.extensions import db
from surveys.models import QuestionSet


class LifecycleRefused(ValueError):
    """An archive or restore that a rule forbids; the message names what is in the way."""


def archived_filter(model, archived: bool):
    """The WHERE clause of a list: archived rows only, or (by default) the others."""
    return model.archived_at.isnot(None) if archived else model.archived_at.is_(None)


def live_cadences_using(question_set: QuestionSet) -> list[Cadence]:
    return list(db.session.scalars(
        select(Cadence).where(Cadence.question_set_id == question_set.id, Cadence.archived_at.is_(None))
        .order_by(Cadence.name, Cadence.id)
    ))


def archive_cadence(cadence: Cadence, by, now: datetime) -> Cadence:
    if cadence.is_archived:
        raise LifecycleRefused(f"The cadence “{cadence.name}” is already archived.")
    open_round = db.session.scalar(
        select(Round.period_key).where(Round.cadence_id == cadence.id, Round.status == "open")
        .order_by(Round.opens_at.desc()).limit(1)
    )
    cadence.archived_at = now
    cadence.next_open_at = None
    audit.record(by, "cadence.archived", cadence, {"open_round": open_round})
    db.session.commit()
    return cadence


def restore_cadence(cadence: Cadence, by) -> Cadence:
    if not cadence.is_archived:
        raise LifecycleRefused(f"The cadence “{cadence.name}” is not archived.")
    if cadence.question_set.is_archived:
        raise LifecycleRefused(
            f"The cadence “{cadence.name}” sends the question set “{cadence.question_set.name}”, "
            "which is archived: restore the question set first."
        )
    cadence.archived_at = None
    cadence.next_open_at = None  # the next tick plans it again, as after a resume
    audit.record(by, "cadence.restored", cadence)
    db.session.commit()
    return cadence


def archive_question_set(question_set: QuestionSet, by, now: datetime) -> QuestionSet:
    if question_set.is_archived:
        raise LifecycleRefused(f"The question set “{question_set.name}” is already archived.")
    in_use = live_cadences_using(question_set)
    if in_use:
        names = ", ".join(f"“{cadence.name}”" for cadence in in_use)
        raise LifecycleRefused(
            f"The question set “{question_set.name}” is used by "
            f"{'the cadence' if len(in_use) == 1 else 'the cadences'} {names}: archive "
            f"{'it' if len(in_use) == 1 else 'them'} first."
        )
    question_set.archived_at = now
    audit.record(by, "question_set.archived", question_set)
    db.session.commit()
    return question_set


def restore_question_set(question_set: QuestionSet, by) -> QuestionSet:
    if not question_set.is_archived:
        raise LifecycleRefused(f"The question set “{question_set.name}” is not archived.")
    question_set.archived_at = None
    audit.record(by, "question_set.restored", question_set)
    db.session.commit()
    return question_set
