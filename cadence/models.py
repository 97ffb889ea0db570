"""Cadences, rounds, invitations and deliveries (people and teams are in
`surveys.org.models`).

The database is the source of truth for the schedule: Redis only carries jobs.
Unique constraints are what make the tick idempotent: one round per
(cadence, period), one invitation per (round, person), one delivery per
(invitation, kind).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cadence.clock import utcnow
from surveys.extensions import UTCDateTime, db
from surveys.org.models import Person, Team

class Cadence(db.Model):
    """One question set sent to one audience on a recurrence."""

    __tablename__ = "cadences"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'paused')", name="known_status"),
        CheckConstraint("open_days >= 1", name="positive_window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    question_set_id: Mapped[int] = mapped_column(ForeignKey("question_sets.id"), index=True)
    # An RFC 5545 RRULE without DTSTART; the start comes from starts_on + send_time.
    rrule: Mapped[str] = mapped_column(String(500))
    send_time: Mapped[str] = mapped_column(String(5), default="09:00")
    # An IANA zone name, or "recipient": send_time in each person's own zone.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    open_days: Mapped[int] = mapped_column(Integer, default=5)
    # Answers are still accepted this many days after the close (reminders are not).
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    reminder_days: Mapped[list] = mapped_column(JSON, default=list)
    # Invite people who join the audience while a round is open.
    add_late_joiners: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"teams": [paths], "regions": [...], "segments": [...]}; empty = everyone.
    audience: Mapped[dict] = mapped_column(JSON, default=dict)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Maintained by the planner so a tick only looks at cadences with due work.
    next_open_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Archived: off every list and never planned again until restored; its
    # rounds and scorecards stay readable. Kept apart from `status` so that
    # restoring brings back whether it was paused.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    question_set = relationship("QuestionSet")
    rounds: Mapped[list[Round]] = relationship(back_populates="cadence", order_by="Round.opens_at")

    @property
    def uses_recipient_timezone(self) -> bool:
        return self.timezone == "recipient"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class Round(db.Model):
    """One occurrence of a cadence, identified by its period key."""

    __tablename__ = "rounds"
    __table_args__ = (
        UniqueConstraint("cadence_id", "period_key"),
        CheckConstraint("status IN ('open', 'closed', 'skipped')", name="known_status"),
        Index("ix_rounds_status_closes_at", "status", "closes_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cadence_id: Mapped[int] = mapped_column(ForeignKey("cadences.id"), index=True)
    period_key: Mapped[str] = mapped_column(String(20))
    question_set_version_id: Mapped[int | None] = mapped_column(ForeignKey("question_set_versions.id"))
    status: Mapped[str] = mapped_column(String(10), default="open")
    # When the recurrence said it should open, and when it really did.
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why a round was skipped, or that it was moved: shown on the cadence page.
    note: Mapped[str | None] = mapped_column(String(200))
    # The confidentiality promise its invitations carried (surveys.disclosure.
    # policy_record), recorded when the first invitation is created.
    policy: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cadence: Mapped[Cadence] = relationship(back_populates="rounds")
    version = relationship("QuestionSetVersion")

    @property
    def is_open(self) -> bool:
        return self.status == "open"


class RoundOverride(db.Model):
    """A PM's change to one occurrence without shifting the series: move it
    to another date, or skip it."""

    __tablename__ = "round_overrides"
    __table_args__ = (
        UniqueConstraint("cadence_id", "period_key"),
        CheckConstraint("action IN ('move', 'skip')", name="known_action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cadence_id: Mapped[int] = mapped_column(ForeignKey("cadences.id"), index=True)
    period_key: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(10))
    # For a move: the local date the round opens instead (same send time).
    opens_on: Mapped[date | None] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TickRun(db.Model):
    """One scheduler pass, for the operations page: when it ran and what it did."""

    __tablename__ = "tick_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)


class Invitation(db.Model):
    """One person asked in one round, with their org position frozen at opening."""

    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("round_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    region: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    # The instant this person's invitation goes out (differs per person when
    # the cadence sends at a local time in each recipient's zone).
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Part of the signed link; replacing it revokes the link.
    nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_urlsafe(12))
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    round: Mapped[Round] = relationship()
    person: Mapped[Person] = relationship()
    team: Mapped[Team | None] = relationship()


DELIVERY_STATUSES = ("pending", "queued", "sending", "sent", "failed", "cancelled")


class Delivery(db.Model):
    """One message owed to one invitation: the invite, each reminder, a nudge."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("invitation_id", "kind"),
        CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="known_status"),
        # The tick's three ways a delivery is due (cadence.planner.claim_due_deliveries),
        # each an index range, so a tick with 50,000 deliveries queued reads none of them.
        Index("ix_deliveries_status_due_at", "status", "due_at"),
        Index("ix_deliveries_status_enqueued_at", "status", "enqueued_at"),
        Index("ix_deliveries_status_claimed_at", "status", "claimed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id"), index=True)
    # "invite", "reminder-1", "reminder-2", ...
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))

    invitation: Mapped[Invitation] = relationship()


class OutboxMessage(db.Model):
    """A message kept by the development mail backend instead of being sent."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(String(500))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
