"""The smallest change each slice can detect, for its size and a typical response
rate (shown when a PM targets a cadence)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from cadence.models import Cadence, Invitation, Round
from surveys import metrics, stats
from surveys.caches import BoundedCache
from surveys.extensions import db
from surveys.scorecard.cube import CellTargets
from surveys.scorecard.groups import ALL_KINDS, OVERALL, SLICE_KINDS, TeamTree


# Used for the smallest detectable change when a cadence has no history yet.
TYPICAL_RESPONSE_RATE = 0.7



def detectable_changes_for_sizes(sizes, response_rate=TYPICAL_RESPONSE_RATE) -> list[dict]:
    """Pure: for [(kind, name, people)], the smallest change in a percentage
    each group could show as significant at that response rate (SPEC §4).
    `min_change_pts` is None where too few would answer to test at all."""
    out = []
    for kind, name, size in sizes:
        respondents = int(round(size * response_rate))
        out.append({
            "kind": kind, "name": name, "size": size, "respondents": respondents,
            "min_change_pts": stats.detectable_change_pts(respondents, min_n=metrics.MIN_N_FOR_TESTING),
        })
    return out


RECENT_ROUNDS_FOR_RATE = 6


# A closed round's invitations and answers never change: the rate over a
# given set of closed rounds is counted once per process.
_RATES_OF_CLOSED_ROUNDS = BoundedCache(size=64)


def typical_response_rate(cadence: Cadence) -> float:
    """The cadence's response rate over its last six closed rounds (recent
    habits, and a bounded query), or 70 % before it has any."""
    recent = tuple(db.session.scalars(
        select(Round.id)
        .where(Round.cadence_id == cadence.id, Round.status == "closed")
        .order_by(Round.opens_at.desc())
        .limit(RECENT_ROUNDS_FOR_RATE)
    ))
    rate = _RATES_OF_CLOSED_ROUNDS.get(recent)
    if rate is None:
        invited, responded = db.session.execute(
            select(func.count(Invitation.id), func.count(Invitation.responded_at))
            .where(Invitation.round_id.in_(recent))
        ).one()
        rate = _RATES_OF_CLOSED_ROUNDS.remember(recent, responded / invited if invited else TYPICAL_RESPONSE_RATE)
    return rate


def detectable_changes(cadence: Cadence, response_rate: float | None = None) -> list[dict]:
    """Per slice of the cadence's audience as it stands now: {"kind", "name",
    "size", "respondents", "min_change_pts"}, starting with everyone (kind
    "overall"); the rate defaults to the cadence's own history."""
    from cadence.planner import audience_query

    rate = response_rate if response_rate is not None else typical_response_rate(cadence)
    audience = audience_query(cadence.audience).order_by(None).subquery()
    rows = db.session.execute(
        select(audience.c.team_id, audience.c.region, audience.c.segment, func.count())
        .group_by(audience.c.team_id, audience.c.region, audience.c.segment)
    ).all()
    tree = TeamTree.load()
    targets = CellTargets(ALL_KINDS, tree)
    sizes = defaultdict(int)
    for team_id, region, segment, count in rows:
        for kind, group in targets(team_id, region, segment):
            sizes[(kind, group)] += count
    named = [("overall", "Everyone", sizes.get((None, OVERALL), 0))]
    for kind in SLICE_KINDS:
        groups = [(kind, tree.path(g) if kind == "team" else g, size) for (k, g), size in sizes.items()
                  if k == kind and g is not OVERALL]
        named += sorted(groups, key=lambda item: item[1].lower())
    return detectable_changes_for_sizes(named, rate)
