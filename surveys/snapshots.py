"""What a round's close leaves behind: its finalized scorecard, and the record
of each leader's digest.

A closed round's scorecard is computed once and stored, so that history does
not move when people change teams or teams are renamed: the stored cards keep
the slices as they were when the round closed. The stored copy also records
the confidentiality it was computed under; if the question set has become
stricter since (it can only become stricter once answered), readers compute
the card again instead of showing numbers the new rules would withhold.

Next to the cards, the snapshot keeps the round's raw sums per slice (never
shown: confidentiality is applied when they are read), so a later round's
card compares with this one without reading its answers again.

A digest receipt is claimed before the message goes out and marked sent after,
so re-running the round-closed job sends nothing twice (see `surveys.digest`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from cadence.clock import utcnow
from surveys.extensions import UTCDateTime, db


class ScorecardSnapshot(db.Model):
    __tablename__ = "scorecard_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), unique=True)
    # {"confidentiality", "min_group_size", "comment_min_group_size"} when computed.
    policy: Mapped[dict] = mapped_column(JSON)
    # One docs/api.md card per slice kind, each read only when asked for (a
    # team card of a large org is large; trends need none of them).
    overall: Mapped[dict] = deferred(mapped_column(JSON))
    team: Mapped[dict] = deferred(mapped_column(JSON))
    region: Mapped[dict] = deferred(mapped_column(JSON))
    segment: Mapped[dict] = deferred(mapped_column(JSON))
    # What trends need: {question key: {"n", "metrics"}} (both None when withheld).
    trend: Mapped[dict] = mapped_column(JSON)
    # {question key: [type, scale_max, favorable_min, [option keys]]}: where trends break.
    measures: Mapped[dict] = mapped_column(JSON)
    # The round's raw sums per slice kind, before confidentiality (see
    # surveys.scorecard.stored.stored_aggregates): later rounds compare with them
    # instead of reading this round's answers again. None in snapshots
    # finalized before they were kept; those rounds are read live.
    aggregates: Mapped[dict | None] = deferred(mapped_column(JSON))
    # {"teams": [[id, path, parent id]], "plan": surveys.disclosure.RoundPlan}:
    # the team tree the round was finalized under and what it published, so
    # later pages (comments, exports, comparisons) publish the same groups
    # after a re-organisation. None for attributed sets and older snapshots.
    disclosure: Mapped[dict | None] = deferred(mapped_column(JSON))
    finalized_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def card(self, kind: str) -> dict:
        """The stored card for "overall", "team", "region" or "segment"."""
        return getattr(self, kind)


class DigestReceipt(db.Model):
    """One leader's digest for one closed round: claimed, then sent."""

    __tablename__ = "digest_receipts"
    __table_args__ = (UniqueConstraint("round_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
