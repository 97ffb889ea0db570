"""Tables of product areas, needs, their evidence and the triage inbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean, CheckConstraint, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cadence.clock import utcnow
from surveys.extensions import UTCDateTime, db

NEED_STATUSES = ("new", "under_review", "planned", "shipped", "wont_do")
STATUS_LABELS = {"new": "New", "under_review": "Under review", "planned": "Planned", "shipped": "Shipped",
                 "wont_do": "Won't do"}
ANNOUNCED_STATUSES = ("planned", "shipped")  # reps with attributed evidence hear about these
IMPORTANCE_LABELS = {1: "Nice to have", 2: "Important", 3: "Deal-breaker"}
TRIAGE_STATES = ("new", "linked", "dismissed")


class Area(db.Model):
    """A product area; areas form a tree (Platform / Security / SSO)."""

    __tablename__ = "product_areas"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("product_areas.id"))
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owners = relationship("Person", secondary="product_area_owners", order_by="Person.name")


class AreaOwner(db.Model):
    __tablename__ = "product_area_owners"

    area_id: Mapped[int] = mapped_column(ForeignKey("product_areas.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)


class AreaMapping(db.Model):
    """A question (option_key None) or one choice option of a question set,
    mapped to an area: its counts roll up there. Keys are stable across the
    set's versions, so one mapping covers every round."""

    __tablename__ = "product_area_mappings"
    __table_args__ = (UniqueConstraint("question_set_id", "question_key", "option_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("product_areas.id", ondelete="CASCADE"), index=True)
    question_set_id: Mapped[int] = mapped_column(ForeignKey("question_sets.id"))
    question_key: Mapped[str] = mapped_column(String(64))
    option_key: Mapped[str | None] = mapped_column(String(64))


class Need(db.Model):
    __tablename__ = "needs"
    __table_args__ = (
        CheckConstraint("status IN ('new', 'under_review', 'planned', 'shipped', 'wont_do')", name="known_need_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("product_areas.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="new")
    public_note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    area = relationship("Area")
    evidence: Mapped[list[Evidence]] = relationship(back_populates="need", order_by="Evidence.heard_at")


class TriageItem(db.Model):
    """One comment (a free-text answer) in the inbox. `token` is the only
    identifier pages and the API show: random, so it says nothing about when
    the comment was written or by whom."""

    __tablename__ = "triage_items"
    __table_args__ = (CheckConstraint("state IN ('new', 'linked', 'dismissed')", name="known_triage_state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"), unique=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    question_set_id: Mapped[int] = mapped_column(ForeignKey("question_sets.id"))
    question_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), default="new")
    triaged_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Evidence(db.Model):
    """A comment or a chosen option linked to a need. The text is kept (an
    edited answer does not rewrite what was heard). `person_id` is recorded
    only for attributed sets: confidential evidence never says who."""

    __tablename__ = "need_evidence"
    __table_args__ = (
        UniqueConstraint("need_id", "answer_id"),
        CheckConstraint("importance BETWEEN 1 AND 3", name="known_importance"),
        CheckConstraint("kind IN ('comment', 'option')", name="known_evidence_kind"),
        Index("ix_need_evidence_need_heard", "need_id", "heard_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    answer_id: Mapped[int | None] = mapped_column(ForeignKey("answers.id", ondelete="SET NULL"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    question_set_id: Mapped[int | None] = mapped_column(ForeignKey("question_sets.id"))
    question_key: Mapped[str | None] = mapped_column(String(64))
    option_key: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    importance: Mapped[int] = mapped_column(Integer, default=1)
    amount: Mapped[float | None] = mapped_column(Numeric(14, 2))  # a deal's amount, once deal moments exist
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    heard_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    need: Mapped[Need] = relationship(back_populates="evidence")


class NeedNotice(db.Model):
    """One message to one rep about one need reaching `status`."""

    __tablename__ = "need_notices"
    __table_args__ = (UniqueConstraint("need_id", "person_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
