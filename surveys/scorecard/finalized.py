"""Finalizing a closed round: its cards, sums, publication plan and team tree are
stored once, so a later re-org or policy never changes what it published."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cadence.clock import utcnow
from surveys.extensions import db
from surveys.snapshots import ScorecardSnapshot
from surveys.scorecard.assembly import assemble_cards
from surveys.scorecard.confidentiality import policy_fingerprint
from surveys.scorecard.groups import ALL_KINDS, kind_name
from surveys.scorecard.history import question_specs
from surveys.scorecard.stored import aggregates_json, measure_json
from surveys.scorecard.tallies import rebuild_tallies, tally_drift

log = logging.getLogger(__name__)


def finalize_scorecard(round_) -> ScorecardSnapshot:
    """Compute and store a closed round's cards for every slice kind, once.
    Safe to call again or concurrently: an existing snapshot is kept (or
    replaced when the set's confidentiality has become stricter since)."""
    if round_.status != "closed":
        raise ValueError(f"round {round_.id} is {round_.status}; only a closed round's scorecard is finalized")
    existing = db.session.scalar(select(ScorecardSnapshot).where(ScorecardSnapshot.round_id == round_.id))
    fingerprint = policy_fingerprint(round_.cadence.question_set)
    if existing is not None and existing.policy == fingerprint:
        return existing
    # What the round publishes for good is checked against a recount first
    # (a tally that drifted from the answers is a defect: said, then repaired).
    drift = tally_drift(round_)
    if drift:
        log.error("round %s: %d tally rows differ from a recount of its answers; recounted. First: %s",
                  round_.id, len(drift), "; ".join(drift[:3]))
        rebuild_tallies(round_)
    cards, aggregates, plan, tree = assemble_cards(round_, ALL_KINDS)
    fields = {
        **cards,
        "disclosure": {"teams": tree.to_json(), "plan": plan.to_json()} if plan is not None else None,
        "aggregates": {kind_name(kind): aggregates_json(aggregates[(round_.id, kind)]) for kind in ALL_KINDS},
        "policy": fingerprint,
        "measures": {spec.key: measure_json(spec) for spec in question_specs(round_.version)},
        "trend": {
            entry["key"]: {"n": entry["n"], "metrics": entry["metrics"]} for entry in cards["overall"]["questions"]
        },
        "finalized_at": utcnow(),
    }
    if existing is not None:
        for name, value in fields.items():
            setattr(existing, name, value)
        db.session.commit()
        return existing
    snapshot = ScorecardSnapshot(round_id=round_.id, **fields)
    db.session.add(snapshot)
    try:
        db.session.commit()
    except IntegrityError:  # another worker finalized it first: theirs stands
        db.session.rollback()
        return db.session.scalar(select(ScorecardSnapshot).where(ScorecardSnapshot.round_id == round_.id))
    return snapshot
