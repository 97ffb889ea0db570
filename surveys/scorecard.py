"""Scorecards: one round's metrics, compared with the previous round and the
same period a year earlier, overall and per slice (team rolled up through the
tree, region, segment), with confidentiality applied.

Reading order:
1. SQL: three GROUP BY queries over the rounds being compared, at the finest
   slice grain asked for (round, team, region, segment): invitations and
   responses (`_participation_cube`), answer values (`_value_cube`) and
   distinct respondents for multi-choice and text questions
   (`_respondent_cube`). Every slice is a sum of disjoint cells, so one pass
   serves the overall numbers, every team (with its sub-teams), every region
   and every segment;
2. `RoundAggregates`: those sums per group, for one round and slice kind; a
   finalized round keeps its own in its snapshot (`stored_aggregates`), so a
   card reads only its own round's answers when the rounds it compares with
   are closed;
3. confidentiality: which aggregates are withheld, as the round's
   publication plan says (`round_plan`, surveys.disclosure: one plan across
   every slice kind, read by every card, comment list, export and list);
4. assembly: `compute_scorecards`, `build_scorecard` (a closed round's stored
   card when it has one), `participation`, `trends`, top movers and choice
   shifts, comments, the smallest detectable change per slice;
5. exports: the scorecard as a table, the row-level responses.

The metric and statistics maths lives in `surveys.metrics` and `surveys.stats`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, func, null, select
from sqlalchemy.exc import IntegrityError

from cadence.clock import isoformat_z, utcnow
from cadence.models import Cadence, Delivery, Invitation, Person, Round, Team
from surveys import disclosure, metrics, stats
from surveys.extensions import db
from surveys.metrics import QuestionSpec
from surveys.models import Answer, Question, QuestionSetVersion, Response
from surveys.caches import BoundedCache
from surveys.snapshots import ScorecardSnapshot

SLICE_KINDS = ("team", "region", "segment")
ALL_KINDS = (None, *SLICE_KINDS)
COUNTED_STATUSES = ("open", "closed")  # skipped rounds never sent anything
LOW_PARTICIPATION_PCT = 60.0
TREND_ROUNDS = 12
TOP_MOVERS = 5
CHOICE_SHIFTS = 5
# Used for the smallest detectable change when a cadence has no history yet.
TYPICAL_RESPONSE_RATE = 0.7
# A year-earlier round is looked for this close to 365 days before, when the
# period keys do not line up (weekly or custom rules).
YEAR_AGO_TOLERANCE = timedelta(days=16)


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


# -- The team tree ------------------------------------------------------------------


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


# -- SQL ------------------------------------------------------------------------


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


def previous_round(round_) -> Round | None:
    """The latest earlier round of the same cadence that was sent (open or closed)."""
    return db.session.scalar(
        select(Round)
        .where(
            Round.cadence_id == round_.cadence_id,
            Round.status.in_(COUNTED_STATUSES),
            Round.opens_at < round_.opens_at,
        )
        .order_by(Round.opens_at.desc())
        .limit(1)
    )


_DATED_KEY = re.compile(r"^(\d{4})(-.+)$")


def year_ago_round(round_) -> Round | None:
    """The same period a year earlier: the same period key one year back
    (2026-11 -> 2025-11, 2026-W48 -> 2025-W48, 2026-Q4 -> 2025-Q4), else the
    sent round that opened closest to 365 days earlier, within ±16 days."""
    counted = select(Round).where(Round.cadence_id == round_.cadence_id, Round.status.in_(COUNTED_STATUSES))
    match = _DATED_KEY.match(round_.period_key or "")
    if match:
        key = f"{int(match.group(1)) - 1:04d}{match.group(2)}"
        found = db.session.scalar(counted.where(Round.period_key == key))
        if found is not None:
            return found
    target = round_.opens_at - timedelta(days=365)
    candidates = db.session.scalars(
        counted.where(Round.opens_at.between(target - YEAR_AGO_TOLERANCE, target + YEAR_AGO_TOLERANCE))
    ).all()
    return min(candidates, key=lambda r: abs(r.opens_at - target), default=None)


def measures_by_version(question_set_id, low: int, high: int) -> dict:
    """{version number: {question key: measure}} for the set's versions low..high, in one query."""
    out = defaultdict(dict)
    for number, question in db.session.execute(
        select(QuestionSetVersion.number, Question)
        .join(Question, Question.version_id == QuestionSetVersion.id)
        .where(QuestionSetVersion.question_set_id == question_set_id, QuestionSetVersion.number.between(low, high))
    ):
        out[number][question.key] = QuestionSpec.from_question(question).measure
    return out


def unbroken_keys(version_a, version_b, measures: dict | None = None) -> set:
    """The question keys whose measure no version from `version_a` to
    `version_b` (both included) changed: only those compare across the two
    (a scale changed in v2 and back in v3 still breaks v1 against v3)."""
    if version_a is None or version_b is None:
        return set()
    low, high = sorted((version_a.number, version_b.number))
    if measures is None:
        measures = measures_by_version(version_a.question_set_id, low, high)
    steps = [measures.get(number, {}) for number in range(low, high + 1)]
    return {key for key, measure in steps[0].items() if all(step.get(key) == measure for step in steps)}


def question_specs(version) -> list[QuestionSpec]:
    if version is None:
        return []
    return [QuestionSpec.from_question(question) for question in version.questions]


# -- Aggregates per group ---------------------------------------------------------------


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


class _CellTargets:
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
    targets = _CellTargets(kinds, tree)
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


# -- Confidentiality -----------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A parent aggregate and the disjoint child slices inside it. The parent may
    also hold people in no child (a team's direct members, people without a region)."""

    parent: object
    children: tuple


def withheld_groups(families, sizes, min_size, already=None) -> dict:
    """Which groups to withhold, and why: {group: SMALL_GROUP | COMPLEMENTARY}.

    Primary rule: fewer respondents than `min_size`. Complementary rule (SPEC §2):
    within each family, whatever is hidden (withheld children plus people in no
    child) is `parent - visible children`, so anyone who can see the parent can
    compute it; when that hidden remainder is non-empty but smaller than
    `min_size`, or the parent itself is withheld but could be rebuilt by adding
    up its visible children, the smallest visible siblings are withheld too.
    `families` must come parents first; `sizes` holds every group and OVERALL;
    `already` are groups withheld for other reasons (and count as hidden)."""
    reasons = dict(already or {})
    if sizes.get(OVERALL, 0) < min_size:
        reasons.setdefault(OVERALL, SMALL_GROUP)
    for family in families:
        for child in family.children:
            if sizes.get(child, 0) < min_size:
                reasons.setdefault(child, SMALL_GROUP)
        visible = sorted(
            (child for child in family.children if child not in reasons), key=lambda c: (sizes.get(c, 0), str(c))
        )
        parent_withheld = family.parent in reasons

        def hidden():
            return sizes.get(family.parent, 0) - sum(sizes.get(c, 0) for c in visible)

        while visible and hidden() < min_size and (hidden() > 0 or parent_withheld):
            reasons[visible.pop(0)] = COMPLEMENTARY
    return reasons


def slice_families(kind, groups, teams=None) -> list[Family]:
    """The slice tree, parents first: one family under OVERALL for region and
    segment; for teams, each team's sub-teams under it. `teams` maps a team id
    to (path, parent_id)."""
    if kind != "team":
        return [Family(OVERALL, tuple(sorted(groups, key=str)))]
    teams = teams or {}
    groups = set(groups)
    children = defaultdict(list)
    for team_id in groups:
        parent_id = teams[team_id][1]
        children[parent_id if parent_id in groups else OVERALL].append(team_id)
    families, queue = [], [OVERALL]
    while queue:
        parent = queue.pop(0)
        kids = tuple(sorted(children.get(parent, []), key=lambda t: teams[t][0]))
        families.append(Family(parent, kids))
        queue.extend(kids)
    return families


@dataclass
class Policy:
    """How a question set's confidentiality applies to one round."""

    min_size: int | None  # None: attributed, nothing withheld for size
    comment_min_size: int | None
    held: bool  # results held until the round closes

    @classmethod
    def for_round(cls, round_):
        """The strictest of the promise the round was sent under and what its set says now."""
        policy = disclosure.effective_policy(round_)
        confidential = policy["confidentiality"] == "confidential"
        return cls(
            min_size=policy["min_group_size"] if confidential else None,
            comment_min_size=max(policy["comment_min_group_size"], policy["min_group_size"]) if confidential else None,
            held=bool(policy["hold_until_close"]) and round_.status == "open",
        )

    def withheld(self, families, sizes, already=None, min_size=None) -> dict:
        if self.held:
            return {group: HELD_UNTIL_CLOSE for group in sizes}
        threshold = min_size if min_size is not None else self.min_size
        if threshold is None:
            return dict(already or {})
        return withheld_groups(families, sizes, threshold, already)


def policy_fingerprint(question_set) -> dict:
    """What a stored card was computed under: it is reused only while this holds."""
    return {
        "confidentiality": question_set.confidentiality,
        "min_group_size": question_set.min_group_size,
        "comment_min_group_size": question_set.comment_min_group_size,
    }


def round_plan(round_, tree: TeamTree | None = None):
    """The round's publication plan (surveys.disclosure), or None for an
    attributed set. A finalized round answers from the plan kept with its
    snapshot while its set's policy is what it was finalized under; any
    other round's plan is computed from two GROUP BY queries. `tree` defaults
    to the one the round is read under (TeamTree.for_round)."""
    policy = Policy.for_round(round_)
    if policy.min_size is None:
        return None
    if round_.status == "closed":
        stored = db.session.execute(
            select(ScorecardSnapshot.policy, ScorecardSnapshot.disclosure).where(ScorecardSnapshot.round_id == round_.id)
        ).first()
        if stored is not None and stored.disclosure and stored.disclosure.get("plan") is not None \
                and stored.policy == policy_fingerprint(round_.cadence.question_set):
            return disclosure.RoundPlan.from_json(stored.disclosure["plan"])
    tree = tree or TeamTree.for_round(round_)
    names = {("team", team_id): path for team_id, (path, _parent) in tree.teams.items()}
    specs = question_specs(round_.version)
    atoms = disclosure.RoundAtoms.load(round_.id, [spec.key for spec in specs if spec.type == "multi_choice"])
    return disclosure.plan_round(atoms, tree.lineage, specs, policy.min_size, policy.comment_min_size, names,
                                 held=policy.held)


@dataclass
class _RoundView:
    """One round's aggregates for one slice kind, with what confidentiality lets through."""

    round: Round
    specs: dict  # key -> QuestionSpec
    aggregates: RoundAggregates
    groups_withheld: dict  # group -> reason (slices only)
    questions_withheld: dict  # question key -> {group: reason}
    tree: TeamTree | None
    policy: Policy
    _groups_by_name: dict | None = field(default=None, repr=False)
    # For a round compared with another: the keys no version in between broke.
    unbroken: set | None = field(default=None, repr=False)

    @classmethod
    def build(cls, round_, kind, aggregates: RoundAggregates, tree: TeamTree | None, plan=False):
        """`plan`: the round's publication plan when the caller has it (None
        for an attributed set); read here otherwise."""
        specs = question_specs(round_.version)
        policy = Policy.for_round(round_)
        if plan is False:
            plan = round_plan(round_, tree)
        sizes = {group: aggregates.responded(group) for group in aggregates.groups}
        if plan is None:  # attributed: nothing withheld for size
            groups_withheld = policy.withheld([], sizes)
            groups_withheld.pop(OVERALL, None)
            questions_withheld = {spec.key: dict(groups_withheld) for spec in specs}
        else:
            groups_withheld = {}
            for group in sizes:
                reason = plan.reason(kind, group) if group is not OVERALL else None
                if reason:
                    groups_withheld[group] = reason
            questions_withheld = {}
            for spec in specs:
                questions_withheld[spec.key] = {
                    group: reason for group in sizes
                    if (reason := plan.question_reason(spec.key, None if group is OVERALL else kind,
                                                       None if group is OVERALL else group))
                }
        return cls(round_, {spec.key: spec for spec in specs}, aggregates, groups_withheld, questions_withheld, tree,
                   policy)

    def visible_result(self, group, key):
        """The metrics of a question for a group, or None when withheld or absent."""
        if key not in self.specs or self.questions_withheld[key].get(group):
            return None
        if group is not OVERALL and group not in self.aggregates.participation:
            return None
        return self.aggregates.result(group, self.specs[key])

    def group_name(self, group):
        if self.aggregates.kind == "team":
            return self.tree.path(group)
        return group

    def group_by_name(self, name):
        """The group a slice name refers to in this view (team paths differ from ids)."""
        if self._groups_by_name is None:
            self._groups_by_name = {}
            for group in self.aggregates.groups:
                if group is not OVERALL:
                    self._groups_by_name.setdefault(self.group_name(group), group)
        return self._groups_by_name.get(name)


# -- Assembly ---------------------------------------------------------------------------


def _round_summary(round_):
    if round_ is None:
        return None
    return {
        "id": round_.id, "period_key": round_.period_key, "status": round_.status,
        "version": round_.version.number if round_.version else None,
    }


def _rate(invited, responded):
    return metrics.rounded(100.0 * responded / invited, metrics.PERCENT_DIGITS) if invited else None


def _comparison(spec, result, other: _RoundView | None, group_name):
    """(comparable, previous metrics, delta, significance) against another round's
    view of the same slice; nothing where that round withheld it."""
    other_spec = other.specs.get(spec.key) if other else None
    comparable = other_spec is not None and other_spec.measure == spec.measure and (
        other.unbroken is None or spec.key in other.unbroken)
    if not comparable or result is None:
        return comparable, None, None, None
    group = OVERALL if group_name is OVERALL else other.group_by_name(group_name)
    before = other.visible_result(group, spec.key) if group is not None else None
    if before is None:
        return comparable, None, None, None
    return comparable, before.metrics, metrics.deltas(result, before), metrics.significance(result, before)


def _question_entry(spec, question, current: _RoundView, previous, year_ago, group):
    name = OVERALL if group is OVERALL else current.group_name(group)
    entry = {
        "key": spec.key, "type": spec.type, "prompt": spec.prompt, "n": None, "suppressed": False,
        "metrics": None, "previous": None, "delta": None, "ci95": None, "significant": None,
        "comparable": False, "year_ago": None, "year_ago_delta": None, "year_ago_significant": None,
        "year_ago_comparable": False,
        "version": current.round.version.number if current.round.version else None,
    }
    if spec.type in ("single_choice", "multi_choice") and question is not None:
        labels = {option["key"]: option["label"] for option in question.options}
        labels.setdefault(metrics.OTHER_OPTION_KEY, "Other")
        entry["options"] = [{"key": key, "label": labels.get(key, key)} for key in spec.option_keys]
    if spec.type == "scale":
        entry["scale_max"] = spec.scale_max
    reason = current.questions_withheld[spec.key].get(group)
    result = None if reason else current.aggregates.result(group, spec)
    entry["comparable"], entry["previous"], entry["delta"], entry["significant"] = _comparison(
        spec, result, previous, name
    )
    (entry["year_ago_comparable"], entry["year_ago"], entry["year_ago_delta"],
     entry["year_ago_significant"]) = _comparison(spec, result, year_ago, name)
    if reason:
        entry.update(suppressed=True, suppressed_reason=reason)
        return entry
    entry.update(n=result.n, metrics=result.metrics, ci95=metrics.intervals(result))
    if result.unanimous is not None:
        entry["unanimous"] = {"n": result.n, "value": result.unanimous}
    return entry


def compute_scorecards(round_, kinds=ALL_KINDS) -> dict:
    """{kind name: card} for the round, computed now from the database (one
    pass for every kind): "overall" for kind None, else "team", "region", "segment"."""
    return _compute_scorecards(round_, kinds)[0]


def _compute_scorecards(round_, kinds) -> tuple[dict, dict]:
    """The cards, and the aggregates they were computed from. The round's own
    answers are always read; the previous and year-ago rounds come from their
    finalized snapshots when they have them (a closed round's sums never
    change), which leaves a live card one round of answers to read."""
    kinds = tuple(kinds)
    kinds_read = tuple(dict.fromkeys((None, *kinds)))
    before_round = previous_round(round_)
    year_round = year_ago_round(round_)
    if year_round is not None and before_round is not None and year_round.id == before_round.id:
        year_round = None  # a yearly cadence: the previous round already is the year-ago one
    rounds = [r for r in (round_, before_round, year_round) if r is not None]
    tree = TeamTree.for_round(round_)
    aggregates = {}
    read_live = [round_]
    for other in rounds[1:]:
        stored = stored_aggregates(other, kinds_read)
        if stored is None:
            read_live.append(other)
        else:
            aggregates.update(stored)
    aggregates.update(load_aggregates(read_live, kinds_read, tree))
    questions = {q.key: q for q in (round_.version.questions if round_.version else [])}
    if set(SLICE_KINDS) <= set(kinds_read):
        everyone = aggregates  # already at the finest grain
    else:
        everyone = load_aggregates([round_], ALL_KINDS, tree, answers=False)
    plans = {r.id: round_plan(r, tree if r is round_ else None) for r in rounds}
    shared = {
        "participation": _participation_summary(round_, everyone, tree, Policy.for_round(round_), plans[round_.id]),
        "non_responders": non_responders(round_),
    }
    unbroken = {other.id: unbroken_keys(round_.version, other.version) for other in rounds[1:]}
    inputs = _card_inputs(round_, kinds, rounds, aggregates, tree, shared)
    cards = LIVE_CARDS.get(inputs)
    if cards is None:
        cards = {}
        for kind in kinds:
            views = {r.id: _RoundView.build(r, kind, aggregates[(r.id, kind)], tree, plans[r.id]) for r in rounds}
            for other in rounds[1:]:
                views[other.id].unbroken = unbroken[other.id]
            current = views[round_.id]
            previous = views.get(before_round.id) if before_round else None
            year_ago = views.get(year_round.id) if year_round else None
            cards[kind_name(kind)] = _assemble(round_, before_round, year_round, kind, current, previous, year_ago,
                                               questions, shared)
        LIVE_CARDS.remember(inputs, cards)
    return cards, aggregates, plans[round_.id], tree


# A card is a pure function of what was read for it, and views of a live card
# repeat (leaders reload it; answers arrive minutes apart). A process keeps
# the last cards it assembled under a digest of every input, and hands one
# out again only for identical inputs: a new answer, a moved team or a
# stricter policy is a new digest. Cards are read-only, like stored ones.
LIVE_CARDS = BoundedCache(size=32)


def _card_inputs(round_, kinds, rounds, aggregates, tree, shared) -> str:
    """A digest of everything the cards are assembled from."""
    question_set = round_.cadence.question_set
    sums = sorted(aggregates.items(), key=lambda item: (item[0][0], kind_name(item[0][1])))
    inputs = {
        "kinds": [kind_name(kind) for kind in kinds],
        "rounds": [[_round_summary(r), r.question_set_version_id] for r in rounds],
        "policy": [policy_fingerprint(question_set), question_set.hold_until_close, round_.policy],
        "teams": sorted(tree.teams.items()),
        # A finalized round's sums are named by their snapshot; live ones by content.
        "sums": [[round_id, kind_name(kind), group_sums.snapshot or _aggregates_json(group_sums)]
                 for (round_id, kind), group_sums in sums],
        "shared": shared,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _assemble(round_, before_round, year_round, kind, current, previous, year_ago, questions, shared) -> dict:
    invited, responded = current.aggregates.participation.get(OVERALL, (0, 0))
    held = current.policy.held
    overall_withheld = shared["participation"].get("withheld")
    specs = list(current.specs.values())
    overall_entries = [_question_entry(spec, questions.get(spec.key), current, previous, year_ago, OVERALL)
                       for spec in specs]
    card = {
        "round": _round_summary(round_),
        "previous_round": _round_summary(before_round),
        "year_ago_round": _round_summary(year_round),
        "response_rate": {
            "invited": None if overall_withheld else invited,
            "responded": None if held or overall_withheld else responded,
            "rate": None if held or overall_withheld else _rate(invited, responded),
        },
        **{name: value for name, value in disclosure.effective_policy(round_).items() if name != "hold_until_close"},
        "held_until_close": held,
        "participation": shared["participation"],
        "non_responders": shared["non_responders"],
        "questions": overall_entries,
        "top_movers": top_movers(overall_entries),
        "choice_shifts": choice_shifts(overall_entries),
        "slices": [],
    }
    for group in _ordered_slices(current):
        slice_invited, slice_responded = current.aggregates.participation[group]
        reason = current.groups_withheld.get(group)
        # A withheld group shows its name and that it is withheld, nothing else.
        entry = {
            "kind": kind,
            "name": current.group_name(group),
            "n": None if held or reason else slice_responded,
            "invited": None if reason and reason != HELD_UNTIL_CLOSE else slice_invited,
            "rate": None if held or reason else _rate(slice_invited, slice_responded),
            "suppressed": bool(reason),
            "questions": [],
        }
        if reason:
            entry["suppressed_reason"] = reason
        else:
            entry["questions"] = [
                _question_entry(spec, questions.get(spec.key), current, previous, year_ago, group) for spec in specs
            ]
        card["slices"].append(entry)
    return card


def _ordered_slices(view: _RoundView):
    groups = [g for g in view.aggregates.groups if g is not OVERALL]
    return sorted(groups, key=lambda g: str(view.group_name(g)).lower())


def build_scorecard(round_, slice_kind=None) -> dict:
    """The API.md scorecard of one round; `slice_kind` is None, "team", "region"
    or "segment". A finalized round answers from its stored card (as long as
    the question set's confidentiality is what it was computed under)."""
    if slice_kind is not None and slice_kind not in SLICE_KINDS:
        raise ValueError(f"unknown slice {slice_kind!r}; use one of {', '.join(SLICE_KINDS)}")
    snapshot = stored_snapshot(round_)
    if snapshot is not None:
        return snapshot.card(kind_name(slice_kind))
    return compute_scorecards(round_, (slice_kind,))[kind_name(slice_kind)]


# -- Finalized scorecards -------------------------------------------------------------------


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
            aggregates = _aggregates_from_json(kind, stored[kind_name(kind)])
            aggregates.snapshot = (snapshot.id, snapshot.finalized_at.isoformat())
            _FINALIZED_AGGREGATES.remember(key, aggregates)
    return {(round_.id, kind): _FINALIZED_AGGREGATES[key] for kind, key in keys.items()}


# JSON has no OVERALL: it is stored as null (no slice value is ever null).
def _aggregates_json(aggregates: RoundAggregates) -> dict:
    def name(group):
        return None if group is OVERALL else group

    return {
        "participation": [[name(group), *counts] for group, counts in aggregates.participation.items()],
        "values": [[name(group), key, *row] for group, by_key in aggregates.value_counts.items()
                   for key, rows in by_key.items() for row in rows],
        "respondents": [[name(group), key, count] for group, by_key in aggregates.respondents.items()
                        for key, count in by_key.items()],
    }


def _aggregates_from_json(kind, stored: dict) -> RoundAggregates:
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


def _measure_json(spec: QuestionSpec) -> list:
    # A number's unit is part of its measure (older snapshots stored no unit).
    return [spec.type, spec.scale_max, spec.favorable_min, sorted(spec.option_keys)] + (
        [spec.unit] if spec.type == "number" else [])


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
    cards, aggregates, plan, tree = _compute_scorecards(round_, ALL_KINDS)
    fields = {
        **cards,
        "disclosure": {"teams": tree.to_json(), "plan": plan.to_json()} if plan is not None else None,
        "aggregates": {kind_name(kind): _aggregates_json(aggregates[(round_.id, kind)]) for kind in ALL_KINDS},
        "policy": fingerprint,
        "measures": {spec.key: _measure_json(spec) for spec in question_specs(round_.version)},
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


# -- Participation ------------------------------------------------------------------------


def _participation_summary(round_, aggregates, tree, policy, plan=None) -> dict:
    """Invited, responded, rate per slice kind (low rates flagged) and the share
    gained after each reminder. Response counts are hidden while held; for a
    confidential set, a group the plan withholds shows only its name and
    `withheld` (rule 3: who did not answer is confidential too)."""
    invited, responded = aggregates[(round_.id, None)].participation.get(OVERALL, (0, 0))
    held = policy.held
    overall_withheld = plan is not None and plan.participation_reason(None, None) is not None
    result = {
        "invited": None if overall_withheld else invited,
        "responded": None if held or overall_withheld else responded,
        "rate": None if held or overall_withheld else _rate(invited, responded),
        "withheld": overall_withheld,
        "slices": {},
        "reminders": [] if held or overall_withheld else reminder_gains(round_, invited),
    }
    for kind in SLICE_KINDS:
        entries = []
        for group, (slice_invited, slice_responded) in aggregates[(round_.id, kind)].participation.items():
            if group is OVERALL:
                continue
            name = tree.path(group) if kind == "team" else group
            if plan is not None and plan.participation_reason(kind, group):
                entries.append({"name": name, "withheld": True, "invited": None, "responded": None, "rate": None,
                                "low": False})
                continue
            rate = _rate(slice_invited, slice_responded)
            entries.append({
                "name": name,
                "invited": slice_invited,
                "responded": None if held else slice_responded,
                "rate": None if held else rate,
                "low": (not held) and rate is not None and rate < LOW_PARTICIPATION_PCT,
            })
        result["slices"][kind] = sorted(entries, key=lambda e: e["name"].lower())
    return result


def participation(round_) -> dict:
    """Invited, responded and rate, overall and per slice kind (slices under
    60 % flagged `low`), and the share gained after each reminder."""
    snapshot = stored_snapshot(round_)
    if snapshot is not None:
        return snapshot.overall["participation"]
    tree = TeamTree.for_round(round_)
    aggregates = load_aggregates([round_], ALL_KINDS, tree, answers=False)
    return _participation_summary(round_, aggregates, tree, Policy.for_round(round_), round_plan(round_, tree))


def reminder_gains(round_, invited: int) -> list[dict]:
    """How many answered after the invitation alone, and after each reminder.

    A response counts for the last reminder its person had been sent before
    they first answered (reminders only go to people who have not answered)."""
    reminders_before = (
        select(Response.id.label("response_id"), func.count(Delivery.id).label("reminders"))
        .select_from(Response)
        .outerjoin(
            Delivery,
            and_(
                Delivery.invitation_id == Response.invitation_id,
                Delivery.kind.like("reminder-%"),
                Delivery.sent_at.is_not(None),
                Delivery.sent_at <= Response.submitted_at,
            ),
        )
        .where(Response.round_id == round_.id)
        .group_by(Response.id)
        .subquery()
    )
    gained = dict(
        db.session.execute(
            select(reminders_before.c.reminders, func.count()).group_by(reminders_before.c.reminders)
        ).all()
    )
    sent = dict(
        db.session.execute(
            select(Delivery.kind, func.count())
            .join(Invitation, Invitation.id == Delivery.invitation_id)
            .where(Invitation.round_id == round_.id, Delivery.kind.like("reminder-%"), Delivery.sent_at.is_not(None))
            .group_by(Delivery.kind)
        ).all()
    )
    steps = max([0, *gained, *(int(kind.split("-", 1)[1]) for kind in sent if kind.split("-", 1)[1].isdigit())])
    out, cumulative = [], 0
    for step in range(steps + 1):
        count = gained.get(step, 0)
        cumulative += count
        out.append({
            "after": "invitation" if step == 0 else f"reminder {step}",
            "sent": invited if step == 0 else sent.get(f"reminder-{step}", 0),
            "responded": count,
            "gained_pct": _rate(invited, count),
            "cumulative_pct": _rate(invited, cumulative),
        })
    return out


def non_responders(round_) -> list[dict] | None:
    """For attributed sets only: who was invited and has not answered yet."""
    if Policy.for_round(round_).min_size is not None:  # confidential, now or when invited
        return None
    rows = db.session.execute(
        select(Person.name, Person.email, Team.path)
        .select_from(Invitation)
        .join(Person, Person.id == Invitation.person_id)
        .outerjoin(Team, Team.id == Invitation.team_id)
        .outerjoin(Response, Response.invitation_id == Invitation.id)
        .where(Invitation.round_id == round_.id, Response.id.is_(None))
        .order_by(Person.name)
    )
    return [{"name": name, "email": email, "team": team} for name, email, team in rows]


def participation_by_round(rounds) -> dict:
    """{round_id: {"invited", "responded", "rate"}} for a list of rounds, in one
    query; response counts stay hidden for open rounds that hold results."""
    round_ids = [r.id for r in rounds]
    counts = {}
    if round_ids:
        counts = {
            round_id: (invited, responded)
            for round_id, invited, responded in db.session.execute(
                select(Invitation.round_id, func.count(Invitation.id), func.count(Response.id))
                .outerjoin(Response, Response.invitation_id == Invitation.id)
                .where(Invitation.round_id.in_(round_ids))
                .group_by(Invitation.round_id)
            )
        }
    out = {}
    for round_ in rounds:
        invited, responded = counts.get(round_.id, (0, 0))
        out[round_.id] = disclosure.round_counts(round_, invited, responded)
    return out


# -- Top movers and choice shifts -----------------------------------------------------------

# The metrics a change can be a "mover" on, per question type.
MOVER_METRICS = {
    "scale": ("favorable_pct", "mean"), "nps": ("nps",), "yes_no": ("yes_pct",), "number": ("mean",),
    "single_choice": ("option_pct",), "multi_choice": ("option_pct",),
}


def change_size(entry, metric, delta, previous_value) -> float | None:
    """A change on a common 0-100 footing, to rank movers of different kinds:
    percentage points as they are, NPS points halved (its range is 200), a
    scale mean as points of its range, a number's mean as a relative change."""
    if delta is None:
        return None
    if metric in ("favorable_pct", "yes_pct", "option_pct"):
        return abs(delta)
    if metric == "nps":
        return abs(delta) / 2.0
    if entry["type"] == "scale":
        span = (entry.get("scale_max") or metrics.DEFAULT_SCALE_MAX) - 1
        return abs(delta) / span * 100.0
    if previous_value:
        return abs(delta) / abs(previous_value) * 100.0
    return None


def _changes(entries):
    """Every (entry, metric, option, value, delta, significant, size) a card shows."""
    for entry in entries:
        if entry.get("suppressed") or not entry.get("delta"):
            continue
        for metric in MOVER_METRICS.get(entry["type"], ()):
            value, delta = entry["metrics"].get(metric), entry["delta"].get(metric)
            significant = (entry.get("significant") or {}).get(metric)
            previous = (entry.get("previous") or {}).get(metric)
            if isinstance(delta, dict):
                labels = {o["key"]: o["label"] for o in entry.get("options", [])}
                for option, option_delta in delta.items():
                    yield {
                        "key": entry["key"], "prompt": entry["prompt"], "type": entry["type"], "metric": metric,
                        "option": option, "label": labels.get(option, option), "value": (value or {}).get(option),
                        "delta": option_delta, "significant": (significant or {}).get(option),
                        "size": change_size(entry, metric, option_delta, (previous or {}).get(option)),
                    }
            else:
                yield {
                    "key": entry["key"], "prompt": entry["prompt"], "type": entry["type"], "metric": metric,
                    "option": None, "label": None, "value": value, "delta": delta, "significant": significant,
                    "size": change_size(entry, metric, delta, previous),
                }


def top_movers(entries, limit=TOP_MOVERS) -> list[dict]:
    """The largest significant changes since the previous round, largest first."""
    movers = [c for c in _changes(entries) if c["significant"] and c["size"] and c["delta"]]
    movers.sort(key=lambda c: (-c["size"], c["key"], c["option"] or ""))
    return movers[:limit]


def choice_shifts(entries, limit=CHOICE_SHIFTS) -> list[dict]:
    """The choice options whose share moved most since the previous round."""
    shifts = [c for c in _changes(entries) if c["metric"] == "option_pct" and c["delta"]]
    shifts.sort(key=lambda c: (-abs(c["delta"]), c["key"], c["option"]))
    return shifts[:limit]


# -- Trends ---------------------------------------------------------------------------------


def trend_rounds(cadence: Cadence, last: int = TREND_ROUNDS, until: Round | None = None) -> list[Round]:
    """The cadence's last `last` sent rounds (up to and including `until`), oldest first."""
    statement = select(Round).where(Round.cadence_id == cadence.id, Round.status.in_(COUNTED_STATUSES))
    if until is not None:
        statement = statement.where(Round.opens_at <= until.opens_at)
    return list(db.session.scalars(statement.order_by(Round.opens_at.desc()).limit(last)))[::-1]


def trends(cadence: Cadence, last: int = TREND_ROUNDS, until: Round | None = None, keys=None,
           until_card: dict | None = None) -> dict:
    """{question key: points} over the cadence's last rounds, oldest first.

    Each point: round id, period key, n, metrics (None when withheld), and
    `break`: True where the measure differs from the point before (no line
    should join them). Finalized rounds answer from their stored card; the
    others are computed in one GROUP BY over all of them, except the `until`
    round when the caller already holds its card (`until_card`): its overall
    numbers are that round's points (withheld by the same rules)."""
    rounds = trend_rounds(cadence, last, until)
    if not rounds:
        return {key: [] for key in keys or []}
    if keys is None:
        keys = [spec.key for spec in question_specs(rounds[-1].version)]
    known = {}
    if until_card is not None and rounds[-1].id == until_card["round"]["id"]:
        known = _card_points(rounds[-1], until_card, keys)
    stored = {}
    closed_ids = [r.id for r in rounds if r.status == "closed"]
    if closed_ids:
        fingerprint = policy_fingerprint(cadence.question_set)
        for snapshot in db.session.scalars(select(ScorecardSnapshot).where(ScorecardSnapshot.round_id.in_(closed_ids))):
            if snapshot.policy == fingerprint:
                stored[snapshot.round_id] = snapshot
    known_rounds = {round_id for round_id, _key in known}
    live = compute_trend_points([r for r in rounds if r.id not in stored and r.id not in known_rounds], keys)
    live.update(known)
    numbers = [r.version.number for r in rounds if r.version is not None]
    measures = measures_by_version(cadence.question_set_id, min(numbers), max(numbers)) if numbers else {}
    unbroken = {}
    for before, after in zip(rounds, rounds[1:]):
        unbroken[after.id] = unbroken_keys(before.version, after.version, measures)
    out = {}
    for key in keys:
        points, last_measure = [], None
        for round_ in rounds:
            if round_.id in stored:
                point, measure = _stored_point(stored[round_.id], round_, key)
            else:
                point, measure = live[(round_.id, key)]
            # A break where the measure differs, or where a version between
            # the two rounds changed it (and changed it back).
            point["break"] = bool(points) and (measure != last_measure or key not in unbroken[round_.id])
            points.append(point)
            last_measure = measure
        out[key] = points
    return out


def _card_points(round_, card, keys) -> dict:
    """{(round id, key): (point, measure)} from the round's own card."""
    entries = {entry["key"]: entry for entry in card["questions"]}
    specs = {spec.key: spec for spec in question_specs(round_.version)}
    out = {}
    for key in keys:
        entry, spec = entries.get(key), specs.get(key)
        point = {"round_id": round_.id, "period_key": round_.period_key,
                 "n": entry["n"] if entry else None, "metrics": entry["metrics"] if entry else None}
        out[(round_.id, key)] = (point, _measure_json(spec) if spec else None)
    return out


def _stored_point(snapshot, round_, key):
    stored = snapshot.trend.get(key) or {}
    point = {"round_id": round_.id, "period_key": round_.period_key, "n": stored.get("n"),
             "metrics": stored.get("metrics")}
    return point, snapshot.measures.get(key)


def compute_trend_points(rounds, keys) -> dict:
    """{(round id, key): (point without `break`, measure)} for the rounds,
    from one value-count GROUP BY (and one distinct-respondent count for
    multi-choice and text) over all of them."""
    if not rounds:
        return {}
    round_ids = [r.id for r in rounds]
    specs = {}
    for question in db.session.scalars(
        select(Question).where(
            Question.version_id.in_({r.question_set_version_id for r in rounds}), Question.key.in_(keys)
        )
    ):
        specs[(question.version_id, question.key)] = QuestionSpec.from_question(question)
    types_by_key = defaultdict(set)
    for (_version, key), spec in specs.items():
        types_by_key[key].add(spec.type)
    value_keys = [key for key in keys if types_by_key[key] - {"text"}]
    distinct_keys = [key for key in keys if types_by_key[key] & {"text", "multi_choice"}]
    counts = defaultdict(list)
    answered = defaultdict(int)
    if value_keys:
        for round_id, key, value_num, value_text, count in db.session.execute(
            select(Answer.round_id, Answer.question_key, Answer.value_num, Answer.value_text, func.count())
            .where(Answer.round_id.in_(round_ids), Answer.question_key.in_(value_keys))
            .group_by(Answer.round_id, Answer.question_key, Answer.value_num, Answer.value_text)
        ).all():
            counts[(round_id, key)].append((value_num, value_text, count))
            answered[(round_id, key)] += count
    distinct = {}
    if distinct_keys:
        distinct = {
            (round_id, key): count
            for round_id, key, count in db.session.execute(
                select(Answer.round_id, Answer.question_key, func.count(func.distinct(Answer.response_id)))
                .where(Answer.round_id.in_(round_ids), Answer.question_key.in_(distinct_keys))
                .group_by(Answer.round_id, Answer.question_key)
            ).all()
        }
    out = {}
    for round_ in rounds:
        policy = Policy.for_round(round_)
        for key in keys:
            spec = specs.get((round_.question_set_version_id, key))
            special = spec is not None and spec.type in ("text", "multi_choice")
            n = distinct.get((round_.id, key), 0) if special else answered.get((round_.id, key), 0)
            withheld = spec is None or policy.held or (policy.min_size is not None and n < policy.min_size)
            point = {
                "round_id": round_.id,
                "period_key": round_.period_key,
                "n": None if withheld else n,
                "metrics": None if withheld else metrics.summarize(spec, counts[(round_.id, key)], n).metrics,
            }
            out[(round_.id, key)] = (point, _measure_json(spec) if spec else None)
    return out


def trend(cadence: Cadence, question_key: str, last: int = TREND_ROUNDS, until: Round | None = None) -> list[dict]:
    """One question over the cadence's last `last` sent rounds (see `trends`)."""
    return trends(cadence, last, until, [question_key])[question_key]


# -- Comments ---------------------------------------------------------------------------


class CommentsWithheld(Exception):
    """The comments asked for would reveal a group under the comment threshold."""


def comments(round_, question_key=None, slice_kind=None, slice_name=None) -> dict:
    """The free-text answers of a round, filtered by question and slice.

    Attributed sets: each comment with its author's name, team, region and
    segment. Confidential sets: no names or slice attributes, in a neutral
    order, and only for the groups the round's plan publishes comments for
    (every cell of writers cut by those groups, across every slice kind,
    holds at least the comment threshold, so no set difference of two lists
    singles out a small group). Raises CommentsWithheld (with the reason) otherwise, and
    ValueError for a slice or question that does not exist."""
    specs = {spec.key: spec for spec in question_specs(round_.version) if spec.type == "text"}
    if question_key is not None and question_key not in specs:
        raise ValueError(f"{question_key!r} is not a free-text question of this round")
    if slice_kind is not None and slice_kind not in SLICE_KINDS:
        raise ValueError(f"unknown slice {slice_kind!r}; use one of {', '.join(SLICE_KINDS)}")
    policy = Policy.for_round(round_)
    if policy.held:
        raise CommentsWithheld("Comments are held until the round closes.")
    tree = TeamTree.for_round(round_)
    group = OVERALL
    if slice_kind is not None:
        group = _groups_by_name(round_, tree)[slice_kind].get(slice_name)
        if group is None:
            raise ValueError(f"no {slice_kind} called {slice_name!r} took part in this round")
    keys = [question_key] if question_key else list(specs)
    if policy.comment_min_size is not None:
        plan = round_plan(round_, tree)
        kind, value = (slice_kind, group) if group is not OVERALL else (None, None)
        keys = [key for key in keys if not plan.comment_reason(key, kind, value)]
        if not keys:
            raise CommentsWithheld(
                f"Comments are shown only for groups where at least {policy.comment_min_size} people wrote one, "
                "and never where, next to the other groups shown, a smaller group of writers could be worked out."
            )
    statement = (
        select(Answer.question_key, Answer.value_text, Person.name, Team.path, Invitation.region, Invitation.segment,
               Response.submitted_at)
        .select_from(Answer)
        .join(Response, Response.id == Answer.response_id)
        .join(Invitation, Invitation.id == Response.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
        .outerjoin(Team, Team.id == Invitation.team_id)
        .where(Answer.round_id == round_.id, Answer.question_key.in_(keys), Answer.value_text.is_not(None))
    )
    if slice_kind == "team":
        statement = statement.where(Invitation.team_id.in_(tree.within(group)))
    elif slice_kind == "region":
        statement = statement.where(Invitation.region == group)
    elif slice_kind == "segment":
        statement = statement.where(Invitation.segment == group)
    attributed = policy.min_size is None
    items = []
    for key, text, name, team, region, segment, submitted_at in db.session.execute(
        statement.order_by(Response.submitted_at, Answer.id)
    ):
        item = {"question_key": key, "prompt": specs[key].prompt, "text": text}
        if attributed:
            item.update(name=name, team=team, region=region, segment=segment, submitted_at=isoformat_z(submitted_at))
        items.append(item)
    if not attributed:
        items.sort(key=lambda item: (keys.index(item["question_key"]), item["text"].lower()))
    return {"attributed": attributed, "questions": keys, "items": items}


def comment_choices(round_) -> dict:
    """What the comments filter offers: the round's text questions and, per
    slice kind, the slice names that took part."""
    questions = [(spec.key, spec.prompt) for spec in question_specs(round_.version) if spec.type == "text"]
    names = _groups_by_name(round_, TeamTree.for_round(round_))
    return {"questions": questions,
            "slices": {kind: sorted(values, key=str.lower) for kind, values in names.items()}}


def _groups_by_name(round_, tree) -> dict:
    """{slice kind: {name shown: group}} for the slices that took part in the
    round (a team with its ancestors), from one DISTINCT query."""
    names = {kind: {} for kind in SLICE_KINDS}
    for team_id, region, segment in db.session.execute(
        select(Invitation.team_id, Invitation.region, Invitation.segment)
        .where(Invitation.round_id == round_.id).distinct()
    ):
        if team_id is not None:
            for team in tree.lineage(team_id):
                names["team"].setdefault(tree.path(team), team)
        if region is not None:
            names["region"][region] = region
        if segment is not None:
            names["segment"][segment] = segment
    return names


# -- The smallest detectable change ----------------------------------------------------------


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


def typical_response_rate(cadence: Cadence) -> float:
    """The cadence's response rate over its last six closed rounds (recent
    habits, and a bounded query), or 70 % before it has any."""
    recent = (
        select(Round.id)
        .where(Round.cadence_id == cadence.id, Round.status == "closed")
        .order_by(Round.opens_at.desc())
        .limit(RECENT_ROUNDS_FOR_RATE)
        .scalar_subquery()
    )
    invited, responded = db.session.execute(
        select(func.count(Invitation.id), func.count(Invitation.responded_at)).where(Invitation.round_id.in_(recent))
    ).one()
    return responded / invited if invited else TYPICAL_RESPONSE_RATE


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
    targets = _CellTargets(ALL_KINDS, tree)
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


# -- Exports --------------------------------------------------------------------------------

SCORECARD_COLUMNS = [
    "round_id", "period_key", "version", "slice_kind", "slice", "question_key", "question_type", "metric", "option",
    "value", "ci95_low", "ci95_high", "previous", "delta", "significant", "year_ago", "year_ago_delta", "n",
    "suppressed",
]
TABLE_METRICS = ("mean", "favorable_pct", "nps", "promoters_pct", "passives_pct", "detractors_pct", "option_pct",
                 "sum", "median", "yes_pct", "count")


def scorecard_rows(card) -> list[dict]:
    """The card as a flat table, one row per (slice, question, metric[, option]),
    every row carrying the round and question set version. Withheld aggregates
    are one row saying so, with no numbers."""
    rows = []
    groups = [(None, None, card["questions"])] + [
        (s["kind"], s["name"], s["questions"] if not s["suppressed"] else None) for s in card["slices"]
    ]
    base = {"round_id": card["round"]["id"], "period_key": card["round"]["period_key"],
            "version": card["round"].get("version")}
    for kind, name, entries in groups:
        if entries is None:
            rows.append({**base, "slice_kind": kind, "slice": name, "suppressed": True})
            continue
        for entry in entries:
            head = {**base, "version": entry.get("version", base["version"]), "slice_kind": kind, "slice": name,
                    "question_key": entry["key"], "question_type": entry["type"]}
            if entry["suppressed"]:
                rows.append({**head, "suppressed": True})
                continue
            for metric in TABLE_METRICS:
                if metric not in entry["metrics"]:
                    continue
                value = entry["metrics"][metric]
                options = list(value) if isinstance(value, dict) else [None]
                for option in options:
                    def pick(source, metric=metric, option=option):
                        item = (source or {}).get(metric)
                        return item.get(option) if option is not None and isinstance(item, dict) else item
                    interval = pick(entry["ci95"])
                    rows.append({
                        **head, "metric": metric, "option": option, "value": pick(entry["metrics"]),
                        "ci95_low": interval[0] if interval else None, "ci95_high": interval[1] if interval else None,
                        "previous": pick(entry["previous"]), "delta": pick(entry["delta"]),
                        "significant": pick(entry["significant"]), "year_ago": pick(entry.get("year_ago")),
                        "year_ago_delta": pick(entry.get("year_ago_delta")), "n": entry["n"], "suppressed": False,
                    })
    return rows


class ExportRefused(Exception):
    """A confidential round too small (or still held) for a row-level export."""


SLICE_ATTRIBUTES = ("team", "region", "segment")


def response_export(round_) -> dict:
    """The round's responses, one row per response, question keys as columns.

    Attributed sets: every row carries the response id, time, name, email and
    slice attributes. Confidential sets publish only what the round's plan
    allows (surveys.disclosure): no id, time or name (each could single
    someone out), rows in a neutral order; a row carries its team, region or
    segment only where that attribute, added to every group the plan
    publishes, still leaves every cell of respondents at or above the minimum
    group size; a free-text column only where its writers, cut by the groups
    published for its comments and the attributes shown, still fill every
    cell with at least the comment threshold. Raises ExportRefused when the
    plan withholds the round as a whole or its results are held until close."""
    policy = Policy.for_round(round_)
    confidential = policy.min_size is not None
    specs = question_specs(round_.version)
    if policy.held:
        raise ExportRefused("Results of this question set are held until the round closes.")
    respondents = _export_respondents(round_.id)
    shown = atoms = None
    if confidential:
        tree = TeamTree.for_round(round_)
        plan = round_plan(round_, tree)
        if plan.reason(None, None):
            raise ExportRefused(
                f"This confidential round has fewer than {policy.min_size} responses (or invitations); "
                "row-level answers are withheld."
            )
        atoms = disclosure.RoundAtoms.load(round_.id, [spec.key for spec in specs if spec.type == "multi_choice"])
        shown = disclosure.export_attributes(plan, atoms, tree.lineage, policy.min_size)

        def text_allowed(key, writers):
            return disclosure.text_column_allowed(plan, writers, shown, tree.lineage,
                                                  plan.published_comments.get(key, []), policy.comment_min_size)
    columns = ["id", "submitted_at", "name", "email"] if not confidential else []
    columns += [*SLICE_ATTRIBUTES, "version"]
    question_columns = []
    for spec in specs:
        if spec.type == "text" and confidential and not text_allowed(spec.key, atoms.answered.get(spec.key, {})):
            continue
        question_columns.append(spec.key)
        if spec.type == "multi_choice" and metrics.OTHER_OPTION_KEY in spec.option_keys:
            if not confidential or text_allowed(spec.key, atoms.other_writers.get(spec.key, {})):
                question_columns.append(f"{spec.key}.{metrics.OTHER_OPTION_KEY}")
    columns += question_columns
    values = _answers_by_response(round_.id, {spec.key: spec for spec in specs})
    version_number = round_.version.number if round_.version else None
    rows = []
    for response_id, (submitted_at, name, email, team_id, team, region, segment) in respondents.items():
        row = {} if confidential else {
            "id": response_id, "submitted_at": isoformat_z(submitted_at), "name": name, "email": email,
        }
        if confidential:
            row.update(team=team if ("own_team", team_id) in shown else None,
                       region=region if ("region", region) in shown else None,
                       segment=segment if ("segment", segment) in shown else None)
        else:
            row.update(team=team, region=region, segment=segment)
        row["version"] = version_number
        answers = values.get(response_id, {})
        row.update({column: answers.get(column) for column in question_columns})
        rows.append(row)
    if confidential:
        rows.sort(key=lambda row: repr([row[c] for c in columns]))
    return {"round": _round_summary(round_), "columns": columns, "rows": rows}


def _export_respondents(round_id) -> dict:
    """{response_id: (submitted_at, name, email, team id, team path, region, segment)} in response order."""
    statement = (
        select(
            Response.id, Response.submitted_at, Person.name, Person.email, Invitation.team_id, Team.path,
            Invitation.region, Invitation.segment,
        )
        .join(Invitation, Invitation.id == Response.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
        .outerjoin(Team, Team.id == Invitation.team_id)
        .where(Response.round_id == round_id)
        .order_by(Response.id)
    )
    return {row[0]: tuple(row[1:]) for row in db.session.execute(statement)}


def _answers_by_response(round_id, specs) -> dict:
    """{response_id: {column: value}}: numbers as numbers, yes/no as "yes"/"no",
    multi-choice as a list of option keys (and its "other" text in `key.other`)."""
    out = defaultdict(dict)
    statement = (
        select(Answer.response_id, Answer.question_key, Answer.value_num, Answer.value_text, Answer.detail)
        .where(Answer.round_id == round_id)
        .order_by(Answer.response_id, Answer.id)
    )
    for response_id, key, value_num, value_text, detail in db.session.execute(statement):
        spec = specs.get(key)
        if spec is None:
            continue
        row = out[response_id]
        if spec.type == "multi_choice":
            row.setdefault(key, []).append(value_text)
            if value_text == metrics.OTHER_OPTION_KEY and detail:
                row[f"{key}.{metrics.OTHER_OPTION_KEY}"] = detail
        elif spec.type == "yes_no":
            row[key] = "yes" if value_num == metrics.YES else "no"
        elif spec.type in ("scale", "nps", "number"):
            row[key] = int(value_num) if value_num is not None and float(value_num).is_integer() else value_num
        else:
            row[key] = value_text
    return out
