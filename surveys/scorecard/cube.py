"""The SQL: GROUP BY queries over the rounds being compared at the finest slice
grain asked for (round, team, region, segment), and `RoundAggregates`, their
sums per group. Every slice is a sum of disjoint cells, so one pass serves the
overall numbers, every team (with its sub-teams), every region and every
segment."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, null, select

from cadence.models import Invitation
from surveys import metrics
from surveys.extensions import db
from surveys.models import Answer
from surveys.scorecard.groups import ALL_KINDS, OVERALL, SLICE_KINDS, TeamTree
from surveys.scorecard.history import question_specs


# The (team, region, segment) cell of an invitation, and the copy each answer
# keeps of it (surveys.models.Answer), so the answer cubes need no join.
_INVITATION_CELL = (("team", Invitation.team_id), ("region", Invitation.region), ("segment", Invitation.segment))
_ANSWER_CELL = (("team", Answer.team_id), ("region", Answer.region), ("segment", Answer.segment))


def _cell(round_column, dimensions, kinds):
    """The (round, team, region, segment) columns of a cube, and what it groups
    by: a slice kind not asked for stays NULL and out of the GROUP BY, so a
    card for one kind reads a cube only as fine as that kind."""
    selected = [round_column] + [column if kind in kinds else null() for kind, column in dimensions]
    grouped = [round_column] + [column for kind, column in dimensions if kind in kinds]
    return selected, grouped


def _participation_cube(round_ids, kinds=SLICE_KINDS):
    """(round, team, region, segment, invited, responded) for the rounds.
    `responded_at` is set in the same transaction as the response
    (surveys.answers.store_response), so no join to responses is needed."""
    selected, grouped = _cell(Invitation.round_id, _INVITATION_CELL, kinds)
    statement = (
        select(*selected, func.count(Invitation.id), func.count(Invitation.responded_at))
        .where(Invitation.round_id.in_(round_ids))
        .group_by(*grouped)
    )
    return db.session.execute(statement).all()


def _value_cube(round_ids, text_keys, kinds=SLICE_KINDS):
    """(round, team, region, segment, key, value_num, value_text, answers).
    Free text is left out: its values are unique, and only its count is shown."""
    selected, grouped = _cell(Answer.round_id, _ANSWER_CELL, kinds)
    values = [Answer.question_key, Answer.value_num, Answer.value_text]
    statement = select(*selected, *values, func.count()).where(Answer.round_id.in_(round_ids))
    if text_keys:
        statement = statement.where(Answer.question_key.not_in(text_keys))
    return db.session.execute(statement.group_by(*grouped, *values)).all()


def _respondent_cube(round_ids, keys, kinds=SLICE_KINDS):
    """(round, team, region, segment, key, respondents) for multi-choice and
    text questions; every other type stores one row per respondent, so its
    respondents are the sum of its value counts."""
    if not keys:
        return []
    selected, grouped = _cell(Answer.round_id, _ANSWER_CELL, kinds)
    statement = (
        select(*selected, Answer.question_key, func.count(func.distinct(Answer.response_id)))
        .where(Answer.round_id.in_(round_ids), Answer.question_key.in_(keys))
        .group_by(*grouped, Answer.question_key)
    )
    return db.session.execute(statement).all()





@dataclass
class RoundAggregates:
    """Everything the database says about one round, per group (OVERALL or a slice value)."""

    kind: str | None
    participation: dict = field(default_factory=dict)  # group -> (invited, responded)
    value_counts: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    respondents: dict = field(default_factory=lambda: defaultdict(dict))
    # (snapshot id, finalized_at) when read from a finalized snapshot.
    snapshot: tuple | None = None
    _results: dict = field(default_factory=dict, repr=False)

    @property
    def groups(self):
        return list(self.participation)

    def responded(self, group) -> int:
        return self.participation.get(group, (0, 0))[1]

    def result(self, group, spec) -> metrics.QuestionResult:
        """The metrics of one question for one group (computed once: comparisons ask again)."""
        cache_key = (group, spec)
        result = self._results.get(cache_key)
        if result is None:
            result = self._results[cache_key] = metrics.summarize(
                spec, self.value_counts.get(group, {}).get(spec.key, []),
                self.respondents.get(group, {}).get(spec.key, 0),
            )
        return result


class CellTargets:
    """For one (team, region, segment) cell: the groups of each slice kind it
    counts towards. OVERALL belongs to every kind's aggregates."""

    def __init__(self, kinds, tree: TeamTree | None):
        self.kinds = kinds
        self.tree = tree
        self._cache: dict = {}

    def __call__(self, team_id, region, segment):
        cell = (team_id, region, segment)
        targets = self._cache.get(cell)
        if targets is None:
            targets = [(kind, OVERALL) for kind in self.kinds]
            if "team" in self.kinds and team_id is not None and self.tree is not None:
                targets += [("team", team) for team in self.tree.lineage(team_id)]
            if "region" in self.kinds and region is not None:
                targets.append(("region", region))
            if "segment" in self.kinds and segment is not None:
                targets.append(("segment", segment))
            self._cache[cell] = targets
        return targets


def load_aggregates(rounds, kinds=ALL_KINDS, tree: TeamTree | None = None, answers: bool = True) -> dict:
    """{(round_id, kind): RoundAggregates} for the rounds and slice kinds, from
    three GROUP BY queries at the (round, team, region, segment) grain, or
    coarser when fewer kinds are asked for (only the participation one when
    `answers` is False)."""
    round_ids = [r.id for r in rounds]
    kinds = tuple(kinds)
    targets = CellTargets(kinds, tree)
    out = {(round_id, kind): RoundAggregates(kind) for round_id in round_ids for kind in kinds}

    participation = defaultdict(lambda: [0, 0])
    for round_id, team_id, region, segment, invited, responded in _participation_cube(round_ids, kinds):
        for kind, group in targets(team_id, region, segment):
            counts = participation[(round_id, kind, group)]
            counts[0] += invited
            counts[1] += responded
    for (round_id, kind, group), (invited, responded) in participation.items():
        out[(round_id, kind)].participation[group] = (invited, responded)
    for aggregates in out.values():
        aggregates.participation.setdefault(OVERALL, (0, 0))
    if answers:
        _load_answer_aggregates(rounds, targets, out, kinds)
    return out


def _load_answer_aggregates(rounds, targets, out, kinds):
    round_ids = [r.id for r in rounds]
    specs_by_round = {r.id: question_specs(r.version) for r in rounds}
    types_by_key = defaultdict(set)
    for specs in specs_by_round.values():
        for spec in specs:
            types_by_key[spec.key].add(spec.type)
    text_everywhere = sorted(key for key, types in types_by_key.items() if types == {"text"})
    distinct_keys = sorted(key for key, types in types_by_key.items() if types & {"text", "multi_choice"})

    # Each cell's values are added to every group the cell counts towards.
    # This loop sees every row of the cube times every group (a dozen for a
    # full card), so it only adds to counters found once per cell; the
    # overall counter is one per round, whatever the kinds (B1).
    counters: dict = {}  # (round_id, group) or (round_id, kind, group) -> {key: {(num, text): count}}
    counters_of_cell: dict = {}
    for round_id, team_id, region, segment, key, value_num, value_text, count in _value_cube(round_ids, text_everywhere, kinds):
        cell = (round_id, team_id, region, segment)
        cell_counters = counters_of_cell.get(cell)
        if cell_counters is None:
            names = dict.fromkeys((round_id, OVERALL) if group is OVERALL else (round_id, kind, group)
                                  for kind, group in targets(team_id, region, segment))
            cell_counters = counters_of_cell[cell] = [counters.setdefault(name, defaultdict(dict)) for name in names]
        value = (value_num, value_text)
        for counter in cell_counters:
            by_value = counter[key]
            by_value[value] = by_value.get(value, 0) + count
    answered = defaultdict(int)
    for name, by_key in counters.items():
        if len(name) == 2:  # the overall counter serves every kind
            round_id, group = name
            owners = [(round_id, kind) for kind in kinds]
        else:
            round_id, kind, group = name
            owners = [(round_id, kind)]
        for key, by_value in by_key.items():
            rows = [(num, text, count) for (num, text), count in by_value.items()]
            total = sum(by_value.values())
            for owner in owners:
                out[owner].value_counts[group][key] = rows
                answered[(*owner, group, key)] = total

    distinct = defaultdict(int)
    for round_id, team_id, region, segment, key, respondents in _respondent_cube(round_ids, distinct_keys, kinds):
        for kind, group in targets(team_id, region, segment):
            distinct[(round_id, kind, group, key)] += respondents
    # Responses are disjoint across cells, so summed distinct counts stay exact.
    special = {(round_id, spec.key) for round_id, specs in specs_by_round.items() for spec in specs
               if spec.type in ("text", "multi_choice")}
    for (round_id, kind, group, key), count in answered.items():
        if (round_id, key) not in special:
            out[(round_id, kind)].respondents[group][key] = count
    for (round_id, kind, group, key), count in distinct.items():
        if (round_id, key) in special:
            out[(round_id, kind)].respondents[group][key] = count
