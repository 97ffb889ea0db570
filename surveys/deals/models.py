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
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deal: Mapped[Deal | None] = relationship()
