"""Deals and the events that change them.

Every event is stored as it was received (`raw`, the exact bytes, and
`payload`, its parsed form) before anything else happens; the unique
(source, event_id) is what makes a CRM's retries harmless. A worker then
applies the event to its deal (`surveys.deals.processing`): an event that
cannot be applied stays stored, `failed`, with the reason.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    Float,
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

SOURCES = ("api", "salesforce", "hubspot", "csv")
OUTCOMES = ("open", "won", "lost", "no_decision")
EVENT_STATUSES = ("received", "processing", "processed", "failed")


class Deal(db.Model):
    """An opportunity as the CRM last described it."""

    __tablename__ = "deals"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint(f"outcome IN {OUTCOMES!r}", name="known_outcome"),
        Index("ix_deals_outcome_close_date", "outcome", "close_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    account: Mapped[str] = mapped_column(String(300))
    amount: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    # The amount in the reporting currency at the rate in effect on the close
    # date; None while the currency has no rate then (or the deal no close
    # date). Kept on the deal rather than joined from the rates at read time:
    # the scorecard's GROUP BYs then sum one column, as cheap as the raw
    # amount (B9), and `surveys.deals.currency` sets it in SQL when an event
    # is applied and again, by an RQ job, when the rates change.
    amount_reporting: Mapped[float | None] = mapped_column(Float)
    stage: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20), default="open")
    close_date: Mapped[date | None] = mapped_column(Date)
    competitor: Mapped[str | None] = mapped_column(String(200))
    segment: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    products: Mapped[list] = mapped_column(JSON, default=list)
    # The CRM's own loss reason (its picklist), compared with the rep's answer.
    loss_reason: Mapped[str | None] = mapped_column(String(200))
    # The deal object of the latest event applied, as the CRM sent it.
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    # When the latest applied event happened: an older event arriving late
    # is kept but does not overwrite a newer state.
    state_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner = relationship("Person")


class DealEvent(db.Model):
    """One change of one deal, as a CRM (or a file) sent it."""

    __tablename__ = "deal_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        CheckConstraint(f"status IN {EVENT_STATUSES!r}", name="known_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The deal as this event describes it (normalized field names), and the
    # exact text the sender posted (the whole message, for a batch).
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    raw: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="received", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True)
    # Each claim by a worker counts one attempt and stamps its time: a claim
    # not finished long after was abandoned by a worker that died.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deal: Mapped[Deal | None] = relationship()


TRIGGERS = ("closed_lost", "closed_won", "stage_back", "no_decision")
MOMENT_INVITATION_STATUSES = ("scheduled", "sent", "answered", "expired", "cancelled")


class Moment(db.Model):
    """A PM's rule: on which deal events, for which deals, ask the owner which
    (attributed) question set, after what delay, in their working hours."""

    __tablename__ = "moments"
    __table_args__ = (CheckConstraint("status IN ('active', 'paused')", name="known_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    question_set_id: Mapped[int] = mapped_column(ForeignKey("question_sets.id"), index=True)
    on: Mapped[list] = mapped_column(JSON, default=list)
    min_amount: Mapped[float | None] = mapped_column(Float)
    segments: Mapped[list] = mapped_column(JSON, default=list)
    regions: Mapped[list] = mapped_column(JSON, default=list)
    products: Mapped[list] = mapped_column(JSON, default=list)
    delay_minutes: Mapped[int] = mapped_column(Integer, default=60)
    # "HH:MM-HH:MM" in the owner's own time zone, Monday to Friday.
    working_hours: Mapped[str] = mapped_column(String(11), default="09:00-18:00")
    reminder_days: Mapped[list] = mapped_column(JSON, default=list)
    expire_days: Mapped[int] = mapped_column(Integer, default=7)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    question_set = relationship("QuestionSet")


class MomentInvitation(db.Model):
    """One deal's owner asked by one moment: at most one per (moment, deal),
    however often the CRM repeats itself and however many processes race."""

    __tablename__ = "moment_invitations"
    __table_args__ = (
        UniqueConstraint("moment_id", "deal_id"),
        CheckConstraint(f"status IN {MOMENT_INVITATION_STATUSES!r}", name="known_status"),
        Index("ix_moment_invitations_status_due", "status", "send_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    moment_id: Mapped[int] = mapped_column(ForeignKey("moments.id"), index=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("question_set_versions.id"))
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="scheduled")
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Reminders already given (in the daily digest) and when the next is due.
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    moment: Mapped[Moment] = relationship()
    deal: Mapped[Deal] = relationship()
    person = relationship("Person")
    version = relationship("QuestionSetVersion")


class DealAnswer(db.Model):
    """One answer value about one deal, stored with the deal (rows as in
    `answers`: value_num for scales and yes/no, value_text for choices and text)."""

    __tablename__ = "deal_answers"
    __table_args__ = (Index("ix_deal_answers_moment_question", "moment_id", "question_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("moment_invitations.id", ondelete="CASCADE"), index=True)
    moment_id: Mapped[int] = mapped_column(ForeignKey("moments.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    question_key: Mapped[str] = mapped_column(String(64))
    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)


class DealDigest(db.Model):
    """The one daily email a rep gets about their deals still waiting."""

    __tablename__ = "deal_digests"
    __table_args__ = (UniqueConstraint("person_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    day: Mapped[date] = mapped_column(Date)
    deals: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DealProduct(db.Model):
    """A deal's product lines, one row each, so scorecards slice by product in SQL."""

    __tablename__ = "deal_products"

    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True)
    product: Mapped[str] = mapped_column(String(200), primary_key=True)


class ExchangeRate(db.Model):
    """How many units of the reporting currency one unit of `currency` is
    worth, from `effective_from` until the currency's next rate."""

    __tablename__ = "exchange_rates"
    __table_args__ = (
        UniqueConstraint("currency", "effective_from"),
        CheckConstraint("rate > 0", name="positive_rate"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[float] = mapped_column(Float)
    effective_from: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
