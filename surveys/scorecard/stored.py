"""A finalized round's stored card and sums: later cards compare with them
instead of reading old answers again."""

from __future__ import annotations

from sqlalchemy import select

from surveys.extensions import db
from surveys.metrics import QuestionSpec
from surveys.caches import BoundedCache
from surveys.snapshots import ScorecardSnapshot
from surveys.scorecard.confidentiality import policy_fingerprint
from surveys.scorecard.cube import RoundAggregates
from surveys.scorecard.groups import OVERALL, kind_name


def stored_snapshot(round_) -> ScorecardSnapshot | None:
    """The round's finalized cards, if they still hold under the set's confidentiality."""
    if round_.status != "closed":
        return None
    snapshot = db.session.scalar(select(ScorecardSnapshot).where(ScorecardSnapshot.round_id == round_.id))
    if snapshot is None or snapshot.policy != policy_fingerprint(round_.cadence.question_set):
        return None
    return snapshot


# Finalized rounds' sums, as RoundAggregates, which also keep the metrics
# computed from them: every later card compares with the same few rounds.
_FINALIZED_AGGREGATES = BoundedCache(size=64)


def stored_aggregates(round_, kinds) -> dict | None:
    """{(round_id, kind): RoundAggregates} for a finalized round, from its
    snapshot, or None when it has none. The sums are raw (confidentiality is
    applied by whoever reads them) and as they were when the round closed."""
    if round_.status != "closed":
        return None
    snapshot = db.session.execute(
        select(ScorecardSnapshot.id, ScorecardSnapshot.finalized_at)
        .where(ScorecardSnapshot.round_id == round_.id, ScorecardSnapshot.aggregates.is_not(None))
    ).first()
    if snapshot is None:
        return None
    keys = {kind: (snapshot.id, snapshot.finalized_at, kind) for kind in kinds}
    if any(key not in _FINALIZED_AGGREGATES for key in keys.values()):
        stored = db.session.scalar(select(ScorecardSnapshot.aggregates).where(ScorecardSnapshot.id == snapshot.id))
        for kind, key in keys.items():
            aggregates = aggregates_from_json(kind, stored[kind_name(kind)])
            aggregates.snapshot = (snapshot.id, snapshot.finalized_at.isoformat())
            _FINALIZED_AGGREGATES.remember(key, aggregates)
    return {(round_.id, kind): _FINALIZED_AGGREGATES[key] for kind, key in keys.items()}


# JSON has no OVERALL: it is stored as null (no slice value is ever null).
def aggregates_json(aggregates: RoundAggregates) -> dict:
    def name(group):
        return None if group is OVERALL else group

    return {
        "participation": [[name(group), *counts] for group, counts in aggregates.participation.items()],
        "values": [[name(group), key, *row] for group, by_key in aggregates.value_counts.items()
                   for key, rows in by_key.items() for row in rows],
        "respondents": [[name(group), key, count] for group, by_key in aggregates.respondents.items()
                        for key, count in by_key.items()],
    }


def aggregates_from_json(kind, stored: dict) -> RoundAggregates:
    def group(name):
        return OVERALL if name is None else name

    aggregates = RoundAggregates(kind)
    for name, invited, responded in stored["participation"]:
        aggregates.participation[group(name)] = (invited, responded)
    for name, key, value_num, value_text, count in stored["values"]:
        aggregates.value_counts[group(name)][key].append((value_num, value_text, count))
    for name, key, count in stored["respondents"]:
        aggregates.respondents[group(name)][key] = count
    return aggregates


def measure_json(spec: QuestionSpec) -> list:
    # A number's unit is part of its measure (older snapshots stored no unit).
    return [spec.type, spec.scale_max, spec.favorable_min, sorted(spec.option_keys)] + (
        [spec.unit] if spec.type == "number" else [])
