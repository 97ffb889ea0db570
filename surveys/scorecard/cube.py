"""The SQL: GROUP BY queries over the rounds being compared at the finest slice
grain asked for (round, team, region, segment), and `RoundAggregates`, their
sums per group. Every slice is a sum of disjoint cells, so one pass serves the
overall numbers, every team (with its sub-teams), every region and every
segment. The answers' sums are read from the rounds' tallies
(surveys.scorecard.tallies), whose size follows the cells and values shown,
not the answers stored; `recount=True` reads the answers themselves."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, null, select

from cadence.models import Invitation
from surveys import metrics
from surveys.extensions import db
from surveys.models import Answer, AnswerTally, RespondentTally
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


def _recounted_value_cube(round_ids, text_keys, kinds=SLICE_KINDS):
    """(round, team, region, segment, key, value_num, value_text, answers) from
    the answers themselves. Free text is left out: its values are unique, and
    only its count is shown."""
    selected, grouped = _cell(Answer.round_id, _ANSWER_CELL, kinds)
    values = [Answer.question_key, Answer.value_num, Answer.value_text]
    statement = select(*selected, *values, func.count()).where(Answer.round_id.in_(round_ids))
    if text_keys:
        statement = statement.where(Answer.question_key.not_in(text_keys))
    return db.session.execute(statement.group_by(*grouped, *values)).all()


def _recounted_respondent_cube(round_ids, keys, kinds=SLICE_KINDS):
    """(round, team, region, segment, key, respondents) from the answers, for
    multi-choice and text questions; every other type stores one row per
    respondent, so its respondents are the sum of its value counts."""
    if not keys:
        return []
    selected, grouped = _cell(Answer.round_id, _ANSWER_CELL, kinds)
    statement = (
        select(*selected, Answer.question_key, func.count(func.distinct(Answer.response_id)))
        .where(Answer.round_id.in_(round_ids), Answer.question_key.in_(keys))
        .group_by(*grouped, Answer.question_key)
    )
    return db.session.execute(statement).all()


def _tallied_value_cube(round_ids, kinds=SLICE_KINDS):
    """The value cube from the rounds' tallies (surveys.scorecard.tallies),
    which hold no free text."""
    tally = AnswerTally
    selected, grouped = _cell(tally.round_id, _tally_cell(tally), kinds)
    values = [tally.question_key, tally.value_num, tally.value_text]
    answers = func.sum(tally.answers)
    statement = (
        select(*selected, *values, answers)
        .where(tally.round_id.in_(round_ids))
        .group_by(*grouped, *values)
        .having(answers > 0)
    )
    return db.session.execute(statement).all()


def _tallied_respondent_cube(round_ids, kinds=SLICE_KINDS):
    """(round, team, region, segment, key, respondents) for every question, from the tallies."""
    tally = RespondentTally
    selected, grouped = _cell(tally.round_id, _tally_cell(tally), kinds)
    respondents = func.sum(tally.respondents)
    statement = (
        select(*selected, tally.question_key, respondents)
        .where(tally.round_id.in_(round_ids))
        .group_by(*grouped, tally.question_key)
        .having(respondents > 0)
    )
    return db.session.execute(statement).all()


def _tally_cell(tally):
    return (("team", tally.team_id), ("region", tally.region), ("segment", tally.segment))


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


def load_aggregates(rounds, kinds=ALL_KINDS, tree: TeamTree | None = None, answers: bool = True,
                    recount: bool = False) -> dict:
    """{(round_id, kind): RoundAggregates} for the rounds and slice kinds, from
    three GROUP BY queries at the (round, team, region, segment) grain, or
    coarser when fewer kinds are asked for (only the participation one when
    `answers` is False). The answers' sums come from the rounds' tallies, or
    with `recount` from the answers themselves (the same numbers: tests and
    `tallies.tally_drift` hold them to it)."""
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
        _load_answer_aggregates(rounds, targets, out, kinds, recount)
    return out


def _load_answer_aggregates(rounds, targets, out, kinds, recount):
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
    if recount:
        value_cube = _recounted_value_cube(round_ids, text_everywhere, kinds)
        respondent_cube = _recounted_respondent_cube(round_ids, distinct_keys, kinds)
    else:
        value_cube = _tallied_value_cube(round_ids, kinds)
        respondent_cube = _tallied_respondent_cube(round_ids, kinds)
    for round_id, team_id, region, segment, key, value_num, value_text, count in value_cube:
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
    for round_id, team_id, region, segment, key, respondents in respondent_cube:
        for kind, group in targets(team_id, region, segment):
            distinct[(round_id, kind, group, key)] += respondents
    # Responses are disjoint across cells, so summed distinct counts stay exact.
    if recount:
        # A recount counts distinct respondents only where a response has
        # several rows of one question; elsewhere they are the rows.
        special = {(round_id, spec.key) for round_id, specs in specs_by_round.items() for spec in specs
                   if spec.type in ("text", "multi_choice")}
        distinct.update((name, count) for name, count in answered.items() if (name[0], name[3]) not in special)
    for (round_id, kind, group, key), count in distinct.items():
        out[(round_id, kind)].respondents[group][key] = count
