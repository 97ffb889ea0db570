"""“You said, we did”: product managers' replies to a round, per question or
for the round as a whole.

Replies are written on the round's scorecard page (pm role). Leaders read them
beside the numbers; reps read the previous closed round's replies on the
thank-you page (`surveys.heard`) and in their next invitation
(`replies_for_invitation`). A reply quotes no answer and names no rep, so it is
shown the same way whatever the set's confidentiality.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cadence.clock import utcnow
from cadence.models import Round
from surveys import snapshots  # noqa: F401  (registers the snapshot and digest models)
from surveys.extensions import UTCDateTime, db

REPLY_MAX_LENGTH = 2000


class Reply(db.Model):
    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    # None: a reply about the round as a whole.
    question_key: Mapped[str | None] = mapped_column(String(64))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author = relationship("Person")
    round = relationship("Round")


class ReplyError(ValueError):
    """A reply that cannot be stored; `errors` maps a field to its message."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def add_reply(round_: Round, author, question_key: str | None, body: str) -> Reply:
    """Validate and add (not commit) a reply; raises ReplyError and adds nothing on bad input."""
    errors = {}
    body = (body or "").strip()
    if not body:
        errors["body"] = "Write what you heard or what you did about it."
    elif len(body) > REPLY_MAX_LENGTH:
        errors["body"] = f"Keep it to {REPLY_MAX_LENGTH:,} characters (this one has {len(body):,})."
    question_key = (question_key or "").strip() or None
    keys = {question.key for question in (round_.version.questions if round_.version else [])}
    if question_key is not None and question_key not in keys:
        errors["question_key"] = f"This round has no question {question_key!r}."
    if round_.status == "skipped":
        errors["round"] = "This round was skipped: nobody answered it."
    if errors:
        raise ReplyError(errors)
    reply = Reply(round_id=round_.id, question_key=question_key, author_id=author.id if author else None, body=body)
    db.session.add(reply)
    return reply


def may_remove(reply_author_id: int | None, person) -> bool:
    """Only a reply's author, or an admin, may change or remove it (issue 13)."""
    return person.has_role("admin") or (reply_author_id is not None and reply_author_id == person.id)


def replies_for_round(round_id: int) -> list[Reply]:
    return list(
        db.session.scalars(select(Reply).where(Reply.round_id == round_id).order_by(Reply.created_at, Reply.id))
    )


def reply_dicts(round_: Round) -> list[dict]:
    """The round's replies as plain data for templates: prompt, body, author, when."""
    prompts = {question.key: question.prompt for question in (round_.version.questions if round_.version else [])}
    return [
        {
            "id": reply.id,
            "question_key": reply.question_key,
            "prompt": prompts.get(reply.question_key) if reply.question_key else None,
            "body": reply.body,
            "author": reply.author.name if reply.author else "The product team",
            "author_id": reply.author_id,
            "created_at": reply.created_at,
            "period_key": round_.period_key,
        }
        for reply in replies_for_round(round_.id)
    ]


def last_closed_round_before(round_: Round) -> Round | None:
    return db.session.scalar(
        select(Round)
        .where(Round.cadence_id == round_.cadence_id, Round.status == "closed", Round.opens_at < round_.opens_at)
        .order_by(Round.opens_at.desc())
        .limit(1)
    )


def replies_for_invitation(round_: Round) -> list[dict]:
    """Replies to the previous closed round of the same cadence, for this
    round's invitations (`templates/email/_replies.*` render them)."""
    previous = last_closed_round_before(round_)
    return reply_dicts(previous) if previous is not None else []
