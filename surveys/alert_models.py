"""Canary alerts' tables: each closed round's watched points, the alerts, and
their outgoing notifications (see `surveys.alerts`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cadence.clock import utcnow
from surveys.extensions import UTCDateTime, db

ALERT_STATES = ("new", "acknowledged", "explained", "false_alarm")
OPEN_STATES = ("new", "acknowledged")


class AlertPoints(db.Model):
    """What one closed round published, per watched metric of each slice, with
    the counts the control charts need: written once when the round is
    watched, so later rounds read history from here (one row per round), not
    from answers or cards. Withheld slices and questions are absent."""

    __tablename__ = "alert_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), unique=True)
    cadence_id: Mapped[int] = mapped_column(ForeignKey("cadences.id", ondelete="CASCADE"), index=True)
    # {question key: [type, scale_max, favorable_min, [option keys]]}: where series break.
    measures: Mapped[dict] = mapped_column(JSON)
    # The confidentiality the points were read under (surveys.scorecard.confidentiality.policy_fingerprint):
    # points kept under a laxer policy are read again, so nothing since withheld is charted.
    policy: Mapped[dict] = mapped_column(JSON)
    # [[slice kind, slice name or null, question key, metric, option or null, chart kind, n, a, b], ...]
    points: Mapped[list] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(db.Model):
    """One metric of one slice out of control at one round's close."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("round_id", "slice_kind", "slice_name", "question_key", "metric", "option"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    question_set_id: Mapped[int] = mapped_column(ForeignKey("question_sets.id", ondelete="CASCADE"), index=True)
    cadence_id: Mapped[int] = mapped_column(ForeignKey("cadences.id", ondelete="CASCADE"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    question_key: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(32))
    option: Mapped[str] = mapped_column(String(64), default="")  # "" unless metric is option_pct
    slice_kind: Mapped[str] = mapped_column(String(16))  # overall, team, region, segment
    slice_name: Mapped[str] = mapped_column(String(300), default="")  # "" for overall
    value: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    baseline_rounds: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(4))
    rule: Mapped[str] = mapped_column(String(16))  # shewhart or ewma
    score: Mapped[float] = mapped_column(Float)
    # [{"round_id", "period_key", "value", "n", "low", "high", "baseline"}] oldest first: the chart.
    history: Mapped[list] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="new", index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state_changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def severity(self) -> str:
        if self.score >= 1.5:
            return "high"
        if self.score >= 1.2:
            return "medium"
        return "low"


class AlertWebhook(db.Model):
    """A question set's outgoing webhook: where alerts are posted, in which format."""

    __tablename__ = "alert_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_set_id: Mapped[int] = mapped_column(ForeignKey("question_sets.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(8), default="json")  # json, slack, teams
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertNotification(db.Model):
    """One outgoing message about one round close's alerts: an email to a
    person or a post to a webhook. Claimed once; its status shows on the
    operations page."""

    __tablename__ = "alert_notifications"
    __table_args__ = (UniqueConstraint("round_id", "channel", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # email or webhook
    target: Mapped[str] = mapped_column(String(40))  # person id or webhook id
    alert_ids: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
