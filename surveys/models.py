"""Question sets, their immutable published versions, responses and answers.

Answers are stored one row per value, keyed by round and question key, with
a copy of the invitation's slice; their sums per cell are kept in tallies
(below), which the scorecard reads:
- scale, nps, number: `value_num`
- yes_no: `value_num` 1 (yes) or 0 (no)
- single_choice: `value_text` = the option key
- multi_choice: one row per chosen option key in `value_text`; the "other"
  free text, if any, in `detail` of the row whose key is "other"
- text: `value_text`
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, relationship

from cadence.clock import utcnow
from surveys.extensions import UTCDateTime, db

QUESTION_TYPES = ("scale", "nps", "single_choice", "multi_choice", "number", "yes_no", "text")
CONFIDENTIALITY_LEVELS = ("attributed", "confidential")
MIN_GROUP_SIZE_FLOOR = 3


class PublishedVersionError(Exception):
    """Raised when code tries to change a published (frozen) version."""


class QuestionSet(db.Model):
    __tablename__ = "question_sets"
    __table_args__ = (
        CheckConstraint("confidentiality IN ('attributed', 'confidential')", name="known_confidentiality"),
        CheckConstraint(f"min_group_size >= {MIN_GROUP_SIZE_FLOOR}", name="min_group_floor"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    confidentiality: Mapped[str] = mapped_column(String(20), default="confidential")
    min_group_size: Mapped[int] = mapped_column(Integer, default=5)
    comment_min_group_size: Mapped[int] = mapped_column(Integer, default=10)
    hold_until_close: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Archived: off the lists, and no cadence that is not archived may use it.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner = relationship("Person")
    versions: Mapped[list[QuestionSetVersion]] = relationship(
        back_populates="question_set", order_by="QuestionSetVersion.number"
    )

    @property
    def draft(self) -> QuestionSetVersion | None:
        return next((v for v in self.versions if v.status == "draft"), None)

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def latest_published(self) -> QuestionSetVersion | None:
        published = [v for v in self.versions if v.status == "published"]
        return published[-1] if published else None


class QuestionSetVersion(db.Model):
    """Version N of a set: a draft, or published and then never changed."""

    __tablename__ = "question_set_versions"
    __table_args__ = (
        UniqueConstraint("question_set_id", "number"),
        CheckConstraint("status IN ('draft', 'published')", name="known_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    question_set_id: Mapped[int] = mapped_column(ForeignKey("question_sets.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    question_set: Mapped[QuestionSet] = relationship(back_populates="versions")
    questions: Mapped[list[Question]] = relationship(
        back_populates="version", order_by="Question.position", cascade="all, delete-orphan"
    )

    @property
    def is_published(self) -> bool:
        return self.status == "published"


class Question(db.Model):
    """One keyed question of a version. Type-specific settings live in `settings`:
    scale_max, favorable_min, low_label, high_label, options [{key, label}],
    allow_other, min, max, unit, max_length."""

    __tablename__ = "questions"
    __table_args__ = (
        UniqueConstraint("version_id", "key"),
        CheckConstraint(f"type IN {QUESTION_TYPES!r}", name="known_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("question_set_versions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(20))
    prompt: Mapped[str] = mapped_column(Text)
    help: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    show_if_key: Mapped[str | None] = mapped_column(String(64))
    show_if_value: Mapped[str | None] = mapped_column(String(200))

    version: Mapped[QuestionSetVersion] = relationship(back_populates="questions")

    def setting(self, name, default=None):
        return (self.settings or {}).get(name, default)

    @property
    def options(self) -> list[dict]:
        return self.setting("options", [])


class Response(db.Model):
    """A rep's answers to one invitation; replaced whole when they change them."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id"), unique=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invitation = relationship("Invitation")
    answers: Mapped[list[Answer]] = relationship(back_populates="response", cascade="all, delete-orphan")


class Answer(db.Model):
    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_round_question", "round_id", "question_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), index=True)
    # Copied from the response and its invitation (the rep's slice snapshot,
    # which never changes) so that scorecards aggregate answers without a join.
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    team_id: Mapped[int | None] = mapped_column(Integer)
    region: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    question_key: Mapped[str] = mapped_column(String(64))
    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)

    response: Mapped[Response] = relationship(back_populates="answers")


# -- Tallies: the answers' sums, kept as they change ---------------------------
#
# A scorecard reads these instead of the answers: their size follows the
# cells shown (team x region x segment x question x value), not the answers
# stored. surveys.scorecard.tallies keeps them in the transaction that stores
# or replaces a response, and checks them against a recount of the answers.
# `slot` names the row's cell, question and value as one string, so that a
# unique index matches rows whose team, region or value is NULL (a NULL never
# equals another in a unique index, on SQLite or PostgreSQL).


class _TallyRow:
    """What both tallies hold besides their counts: the round, the slot and
    the cell and question the slot names."""

    @declared_attr.directive
    def __table_args__(cls):
        return (UniqueConstraint("round_id", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    slot: Mapped[str] = mapped_column(Text)
    team_id: Mapped[int | None] = mapped_column(Integer)
    region: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    question_key: Mapped[str] = mapped_column(String(64))


class AnswerTally(_TallyRow, db.Model):
    """How many answers in one cell of a round had one value of one question
    (free text is left out: only its respondents are ever shown)."""

    __tablename__ = "answer_tallies"

    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)
    answers: Mapped[int] = mapped_column(Integer, default=0)


class RespondentTally(_TallyRow, db.Model):
    """How many responses in one cell of a round answered one question, and
    how many of them wrote an "Other" text for it (the comment threshold
    counts writers)."""

    __tablename__ = "respondent_tallies"

    respondents: Mapped[int] = mapped_column(Integer, default=0)
    writers: Mapped[int] = mapped_column(Integer, default=0)


# -- Published versions are frozen -------------------------------------------


def _frozen_version_of(obj):
    if isinstance(obj, QuestionSetVersion):
        return obj
    if isinstance(obj, Question):
        return obj.version
    return None


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_published_versions(session, flush_context, instances):
    """No code path may alter a published version or its questions."""
    for obj in list(session.dirty) + list(session.deleted):
        version = _frozen_version_of(obj)
        if version is None:
            continue
        if obj in session.deleted and isinstance(obj, (Question, QuestionSetVersion)):
            was_published = _committed_status(version) == "published"
        else:
            if not session.is_modified(obj, include_collections=False):
                continue
            was_published = _committed_status(version) == "published"
        if was_published:
            raise PublishedVersionError(
                f"version {version.number} of question set {version.question_set_id} is published and cannot change"
            )
    for obj in session.new:
        if isinstance(obj, Question) and obj.version is not None and _committed_status(obj.version) == "published":
            raise PublishedVersionError("questions cannot be added to a published version")


def _committed_status(version):
    """The status as stored, so the publishing flush itself is allowed."""
    from sqlalchemy import inspect

    state = inspect(version)
    if state.pending or state.transient:
        return None
    history = state.attrs.status.history
    if history.deleted:
        return history.deleted[0]
    return version.status
