"""Who a scorecard is about: the slice kinds, the whole round as a group, and the
team tree that rolls teams up."""

from __future__ import annotations

from sqlalchemy import select

from surveys.org.models import Team
from surveys import disclosure
from surveys.extensions import db
from surveys.snapshots import ScorecardSnapshot



SLICE_KINDS = ("team", "region", "segment")
ALL_KINDS = (None, *SLICE_KINDS)



class _Overall:
    """The whole round, as a group key distinct from any slice value."""

    def __repr__(self):
        return "OVERALL"


OVERALL = _Overall()

# Why an aggregate is withheld (shown to people as text by the templates).
SMALL_GROUP = disclosure.SMALL_GROUP
COMPLEMENTARY = disclosure.COMPLEMENTARY
HELD_UNTIL_CLOSE = disclosure.HELD_UNTIL_CLOSE


def kind_name(kind) -> str:
    """Stored cards are keyed by slice kind; the unsliced card is "overall"."""
    return kind or "overall"




class TeamTree:
    """Every team's path and parent, read once: a slice for a team counts its
    own members and those of all its sub-teams."""

    def __init__(self, teams: dict):
        self.teams = teams  # id -> (path, parent_id)
        self._lineage: dict = {}

    @classmethod
    def load(cls) -> TeamTree:
        rows = db.session.execute(select(Team.id, Team.path, Team.parent_id))
        return cls({team_id: (path, parent_id) for team_id, path, parent_id in rows})

    @classmethod
    def for_round(cls, round_) -> TeamTree:
        """The tree a finalized round published under (kept with its snapshot),
        else the tree as it is now."""
        if round_.status == "closed":
            stored = db.session.scalar(
                select(ScorecardSnapshot.disclosure).where(ScorecardSnapshot.round_id == round_.id)
            )
            if stored and stored.get("teams") is not None:
                return cls({team_id: (path, parent_id) for team_id, path, parent_id in stored["teams"]})
        return cls.load()

    def to_json(self) -> list:
        return [[team_id, path, parent_id] for team_id, (path, parent_id) in sorted(self.teams.items())]

    def lineage(self, team_id) -> tuple:
        """The team and its ancestors, nearest first."""
        cached = self._lineage.get(team_id)
        if cached is None:
            chain, current = [], team_id
            while current is not None and current in self.teams and current not in chain:
                chain.append(current)
                current = self.teams[current][1]
            cached = self._lineage[team_id] = tuple(chain)
        return cached

    def path(self, team_id) -> str:
        return self.teams[team_id][0]

    def parent(self, team_id):
        return self.teams[team_id][1]

    def within(self, team_id) -> list:
        """The team and all its sub-teams."""
        return [other for other in self.teams if team_id in self.lineage(other)]
