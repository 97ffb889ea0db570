"""Scorecards: one round's metrics, compared with the previous round, overall
and per slice (team rolled up through the tree, region, segment), with
confidentiality applied.

Reading order:
1. SQL: small named queries, each one GROUP BY over a round's answers or
   invitations (`_value_counts`, `_respondents_per_key`, `_participation_rows`);
2. `RoundAggregates`: those results per group, for one round and slice kind;
3. confidentiality: which aggregates are withheld (`withheld_groups`);
4. assembly: `build_scorecard`, `participation`, `trend`.

The metric and statistics maths lives in `surveys.metrics` and `surveys.stats`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from cadence.clock import isoformat_z
from cadence.models import TEAM_PATH_SEPARATOR, Cadence, Invitation, Person, Round, Team
from surveys import metrics
from surveys.extensions import db
from surveys.metrics import QuestionSpec
from surveys.models import Answer, Question, Response

SLICE_KINDS = ("team", "region", "segment")
COUNTED_STATUSES = ("open", "closed")  # skipped rounds never sent anything
LOW_PARTICIPATION_PCT = 60.0


class _Overall:
    """The whole round, as a group key distinct from any slice value."""

    def __repr__(self):
        return "OVERALL"


OVERALL = _Overall()

# Why an aggregate is withheld (shown to people as text by the templates).
SMALL_GROUP = "small_group"
COMPLEMENTARY = "complementary"
HELD_UNTIL_CLOSE = "held_until_close"


# -- SQL ------------------------------------------------------------------------


def _slice_column(statement, kind):
    """Join what `kind` needs onto a statement that already has `Invitation`,
    and return (statement, the group column). A team slice includes its sub-teams:
    each invitation counts for its snapshot team and every ancestor, matched by
    path prefix ("Sales / EMEA" contains "Sales / EMEA / Enterprise")."""
    if kind == "region":
        return statement, Invitation.region
    if kind == "segment":
        return statement, Invitation.segment
    member_team = aliased(Team, name="member_team")
    slice_team = aliased(Team, name="slice_team")
    # substr/length instead of LIKE: team names may hold % or _.
    within = or_(
        member_team.path == slice_team.path,
        func.substr(member_team.path, 1, func.length(slice_team.path) + len(TEAM_PATH_SEPARATOR))
        == slice_team.path + TEAM_PATH_SEPARATOR,
    )
    statement = statement.join(member_team, member_team.id == Invitation.team_id).join(slice_team, within)
    return statement, slice_team.id


def _grouped_over_answers(round_id, kind, keys, aggregates, extra_where=()):
    """SELECT [slice,] keys, aggregates FROM answers WHERE round_id GROUP BY [slice,] keys.
    For slices the answers are joined through their response to the invitation's
    snapshot. Rows come back as tuples led by the group (OVERALL without slices)."""
    statement = select().select_from(Answer).where(Answer.round_id == round_id, *extra_where)
    group = []
    if kind is not None:
        statement = statement.join(Response, Response.id == Answer.response_id).join(
            Invitation, Invitation.id == Response.invitation_id
        )
        statement, slice_column = _slice_column(statement, kind)
        group = [slice_column]
    statement = statement.add_columns(*group, *keys, *aggregates).group_by(*group, *keys)
    return _with_group(db.session.execute(statement).all(), kind)


def _with_group(rows, kind):
    if kind is None:
        return [(OVERALL, *row) for row in rows]
    return [tuple(row) for row in rows]


def _value_counts(round_id, kind, text_keys):
    """(group, question_key, value_num, value_text, answers) for non-text questions.
    Free text is left out: its values are unique, and only its count is shown."""
    extra = (Answer.question_key.not_in(text_keys),) if text_keys else ()
    keys = [Answer.question_key, Answer.value_num, Answer.value_text]
    return _grouped_over_answers(round_id, kind, keys, [func.count()], extra)


def _respondents_per_key(round_id, kind):
    """(group, question_key, respondents): multi-choice stores a row per option,
    so respondents are distinct responses."""
    return _grouped_over_answers(
        round_id, kind, [Answer.question_key], [func.count(func.distinct(Answer.response_id))]
    )


def _participation_rows(round_id, kind):
    """(group, invited, responded): responded = invitations with a response."""
    statement = (
        select()
        .select_from(Invitation)
        .outerjoin(Response, Response.invitation_id == Invitation.id)
        .where(Invitation.round_id == round_id)
    )
    group = []
    if kind is not None:
        statement, slice_column = _slice_column(statement, kind)
        group = [slice_column]
    statement = statement.add_columns(*group, func.count(Invitation.id), func.count(Response.id)).group_by(*group)
    return _with_group(db.session.execute(statement).all(), kind)


def _participation_by_round(round_ids):
    """{round_id: (invited, responded)} for many rounds in one query."""
    if not round_ids:
        return {}
    statement = (
        select(Invitation.round_id, func.count(Invitation.id), func.count(Response.id))
        .outerjoin(Response, Response.invitation_id == Invitation.id)
        .where(Invitation.round_id.in_(round_ids))
        .group_by(Invitation.round_id)
    )
    return {round_id: (invited, responded) for round_id, invited, responded in db.session.execute(statement)}


def _teams(team_ids):
    """{id: (path, parent_id)} for the teams that appear as slices."""
    if not team_ids:
        return {}
    rows = db.session.execute(select(Team.id, Team.path, Team.parent_id).where(Team.id.in_(team_ids)))
    return {team_id: (path, parent_id) for team_id, path, parent_id in rows}


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


def question_specs(version) -> list[QuestionSpec]:
    if version is None:
        return []
    return [QuestionSpec.from_question(question) for question in version.questions]


# -- One round's aggregates per group ---------------------------------------------------


@dataclass
class RoundAggregates:
    """Everything the database says about one round, per group (OVERALL or a slice value)."""

    kind: str | None
    participation: dict  # group -> (invited, responded)
    value_counts: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    respondents: dict = field(default_factory=lambda: defaultdict(dict))

    @classmethod
    def load(cls, round_, kind, specs):
        text_keys = [spec.key for spec in specs if spec.type == "text"]
        aggregates = cls(kind, {})
        for group, invited, responded in _participation_rows(round_.id, kind):
            if group is not None:  # people without a region/segment/team count only overall
                aggregates.participation[group] = (invited, responded)
        for group, key, value_num, value_text, count in _value_counts(round_.id, kind, text_keys):
            aggregates.value_counts[group][key].append((value_num, value_text, count))
        for group, key, respondents in _respondents_per_key(round_.id, kind):
            aggregates.respondents[group][key] = respondents
        return aggregates

    @property
    def groups(self):
        return list(self.participation)

    def responded(self, group) -> int:
        return self.participation.get(group, (0, 0))[1]

    def result(self, group, spec) -> metrics.QuestionResult:
        return metrics.summarize(
            spec, self.value_counts.get(group, {}).get(spec.key, []), self.respondents.get(group, {}).get(spec.key, 0)
        )


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
    segment; for teams, each team's sub-teams under it."""
    if kind != "team":
        return [Family(OVERALL, tuple(sorted(groups, key=str)))]
    teams = teams or {}
    children = defaultdict(list)
    for team_id in groups:
        parent_id = teams[team_id][1]
        children[parent_id if parent_id in teams else OVERALL].append(team_id)
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
    held: bool  # results held until the round closes

    @classmethod
    def for_round(cls, round_):
        question_set = round_.cadence.question_set
        min_size = question_set.min_group_size if question_set.confidentiality == "confidential" else None
        return cls(min_size=min_size, held=bool(question_set.hold_until_close) and round_.status == "open")

    def withheld(self, families, sizes, already=None) -> dict:
        if self.held:
            return {group: HELD_UNTIL_CLOSE for group in sizes}
        if self.min_size is None:
            return dict(already or {})
        return withheld_groups(families, sizes, self.min_size, already)


@dataclass
class _RoundView:
    """One round's aggregates with what confidentiality lets through."""

    round: Round
    specs: dict  # key -> QuestionSpec
    aggregates: RoundAggregates
    groups_withheld: dict  # group -> reason (slices only)
    questions_withheld: dict  # question key -> {group: reason}
    teams: dict  # team id -> (path, parent_id), for team slices

    @classmethod
    def build(cls, round_, kind):
        specs = question_specs(round_.version)
        policy = Policy.for_round(round_)
        overall = RoundAggregates.load(round_, None, specs)
        aggregates = overall if kind is None else RoundAggregates.load(round_, kind, specs)
        if kind is not None:
            aggregates.participation[OVERALL] = overall.participation.get(OVERALL, (0, 0))
            aggregates.value_counts[OVERALL] = overall.value_counts[OVERALL]
            aggregates.respondents[OVERALL] = overall.respondents[OVERALL]
        teams = _teams([g for g in aggregates.groups if g is not OVERALL]) if kind == "team" else None
        families = slice_families(kind, [g for g in aggregates.groups if g is not OVERALL], teams) if kind else []
        sizes = {group: aggregates.responded(group) for group in aggregates.groups}
        groups_withheld = policy.withheld(families, sizes)
        groups_withheld.pop(OVERALL, None)  # the overall size gates each question below
        questions_withheld = {}
        for spec in specs:
            question_sizes = {group: aggregates.respondents.get(group, {}).get(spec.key, 0) for group in sizes}
            questions_withheld[spec.key] = policy.withheld(families, question_sizes, groups_withheld)
        return cls(round_, {spec.key: spec for spec in specs}, aggregates, groups_withheld, questions_withheld, teams or {})

    def visible_result(self, group, key):
        """The metrics of a question for a group, or None when withheld or absent."""
        if key not in self.specs or self.questions_withheld[key].get(group):
            return None
        if group is not OVERALL and group not in self.aggregates.participation:
            return None
        return self.aggregates.result(group, self.specs[key])

    def group_name(self, group):
        if self.aggregates.kind == "team":
            return self.teams[group][0]
        return group


# -- Assembly ---------------------------------------------------------------------------


def _round_summary(round_):
    if round_ is None:
        return None
    return {"id": round_.id, "period_key": round_.period_key, "status": round_.status}


def _rate(invited, responded):
    return metrics.rounded(100.0 * responded / invited, metrics.PERCENT_DIGITS) if invited else None


def _question_entry(spec, current: _RoundView, previous: _RoundView | None, group):
    previous_spec = previous.specs.get(spec.key) if previous else None
    comparable = previous_spec is not None and previous_spec.measure == spec.measure
    entry = {
        "key": spec.key, "type": spec.type, "prompt": spec.prompt, "n": None, "suppressed": False,
        "metrics": None, "previous": None, "delta": None, "ci95": None, "significant": None,
        "comparable": comparable,
    }
    reason = current.questions_withheld[spec.key].get(group)
    if reason:
        entry.update(suppressed=True, suppressed_reason=reason)
        return entry
    result = current.aggregates.result(group, spec)
    entry.update(n=result.n, metrics=result.metrics, ci95=metrics.intervals(result))
    before = previous.visible_result(group, spec.key) if comparable else None
    if before is not None:
        entry.update(
            previous=before.metrics,
            delta=metrics.deltas(result, before),
            significant=metrics.significance(result, before),
        )
    return entry


def build_scorecard(round_, slice_kind=None) -> dict:
    """The API.md scorecard of one round; `slice_kind` is None, "team", "region" or "segment"."""
    if slice_kind is not None and slice_kind not in SLICE_KINDS:
        raise ValueError(f"unknown slice {slice_kind!r}; use one of {', '.join(SLICE_KINDS)}")
    before_round = previous_round(round_)
    current = _RoundView.build(round_, slice_kind)
    previous = _RoundView.build(before_round, slice_kind) if before_round else None
    question_set = round_.cadence.question_set
    invited, responded = current.aggregates.participation.get(OVERALL, (0, 0))
    specs = list(current.specs.values())
    card = {
        "round": _round_summary(round_),
        "previous_round": _round_summary(before_round),
        "response_rate": {"invited": invited, "responded": responded, "rate": _rate(invited, responded)},
        "confidentiality": question_set.confidentiality,
        "min_group_size": question_set.min_group_size,
        "questions": [_question_entry(spec, current, previous, OVERALL) for spec in specs],
        "slices": [],
    }
    for group in _ordered_slices(current):
        slice_invited, slice_responded = current.aggregates.participation[group]
        reason = current.groups_withheld.get(group)
        entry = {
            "kind": slice_kind,
            "name": current.group_name(group),
            "n": slice_responded,
            "invited": slice_invited,
            "rate": _rate(slice_invited, slice_responded),
            "suppressed": bool(reason),
            "questions": [],
        }
        if reason:
            entry["suppressed_reason"] = reason
        else:
            entry["questions"] = [
                _question_entry(spec, current, previous, group) for spec in specs
            ]
        card["slices"].append(entry)
    return card


def _ordered_slices(view: _RoundView):
    groups = [g for g in view.aggregates.groups if g is not OVERALL]
    return sorted(groups, key=lambda g: str(view.group_name(g)).lower())


def participation(round_) -> dict:
    """Invited, responded and rate, overall and per slice kind; slices under 60 % are flagged `low`."""
    (_, invited, responded), *_ = _participation_rows(round_.id, None) or [(OVERALL, 0, 0)]
    result = {"invited": invited, "responded": responded, "rate": _rate(invited, responded), "slices": {}}
    for kind in SLICE_KINDS:
        rows = [row for row in _participation_rows(round_.id, kind) if row[0] is not None]
        teams = _teams([row[0] for row in rows]) if kind == "team" else {}
        entries = []
        for group, slice_invited, slice_responded in rows:
            rate = _rate(slice_invited, slice_responded)
            entries.append({
                "name": teams[group][0] if kind == "team" else group,
                "invited": slice_invited,
                "responded": slice_responded,
                "rate": rate,
                "low": rate is not None and rate < LOW_PARTICIPATION_PCT,
            })
        result["slices"][kind] = sorted(entries, key=lambda e: e["name"].lower())
    return result


def participation_by_round(rounds) -> dict:
    """{round_id: {"invited", "responded", "rate"}} for a list of rounds, in one query."""
    counts = _participation_by_round([r.id for r in rounds])
    out = {}
    for round_ in rounds:
        invited, responded = counts.get(round_.id, (0, 0))
        out[round_.id] = {"invited": invited, "responded": responded, "rate": _rate(invited, responded)}
    return out


def trend(cadence: Cadence, question_key: str, last: int = 12, until: Round | None = None) -> list[dict]:
    """One question over the cadence's last `last` sent rounds (up to and
    including `until` when given), oldest first.

    Each point: round id, period key, n, metrics (None when withheld), and
    `break`: True where the measure differs from the point before (no line
    should join them)."""
    statement = select(Round).where(Round.cadence_id == cadence.id, Round.status.in_(COUNTED_STATUSES))
    if until is not None:
        statement = statement.where(Round.opens_at <= until.opens_at)
    rounds = list(db.session.scalars(statement.order_by(Round.opens_at.desc()).limit(last)))[::-1]
    if not rounds:
        return []
    round_ids = [r.id for r in rounds]
    questions = {
        question.version_id: question
        for question in db.session.scalars(
            select(Question).where(
                Question.version_id.in_({r.question_set_version_id for r in rounds}), Question.key == question_key
            )
        )
    }
    counts = defaultdict(list)
    for round_id, value_num, value_text, count in db.session.execute(
        select(Answer.round_id, Answer.value_num, Answer.value_text, func.count())
        .where(Answer.round_id.in_(round_ids), Answer.question_key == question_key)
        .group_by(Answer.round_id, Answer.value_num, Answer.value_text)
    ):
        counts[round_id].append((value_num, value_text, count))
    respondents = dict(
        db.session.execute(
            select(Answer.round_id, func.count(func.distinct(Answer.response_id)))
            .where(Answer.round_id.in_(round_ids), Answer.question_key == question_key)
            .group_by(Answer.round_id)
        ).all()
    )
    points, last_measure = [], None
    for round_ in rounds:
        question = questions.get(round_.question_set_version_id)
        spec = QuestionSpec.from_question(question) if question else None
        measure = spec.measure if spec else None
        n = respondents.get(round_.id, 0)
        policy = Policy.for_round(round_)
        withheld = spec is None or policy.held or (policy.min_size is not None and n < policy.min_size)
        points.append({
            "round_id": round_.id,
            "period_key": round_.period_key,
            "n": None if withheld else n,
            "metrics": None if withheld else metrics.summarize(spec, counts[round_.id], n).metrics,
            "break": bool(points) and measure != last_measure,
        })
        last_measure = measure
    return points


# -- Row-level export -----------------------------------------------------------------------


class ExportRefused(Exception):
    """A confidential round too small (or still held) for a row-level export."""


SLICE_ATTRIBUTES = ("team", "region", "segment")


def response_export(round_) -> dict:
    """The round's responses, one row per response, question keys as columns.

    Attributed sets: every row carries the response id, time, name, email and
    slice attributes. Confidential sets: no id, time or name (each could single
    someone out), rows in a neutral order, slice attributes only for
    (team, region, segment) combinations at or above the minimum group size
    (with complementary blanking, as for slices), and free-text columns only when
    the round reaches the comment threshold. Raises ExportRefused when a
    confidential round has fewer respondents than the minimum group size or
    its results are held until close."""
    question_set = round_.cadence.question_set
    policy = Policy.for_round(round_)
    confidential = question_set.confidentiality == "confidential"
    specs = question_specs(round_.version)
    respondents = _export_respondents(round_.id)
    if policy.held:
        raise ExportRefused("Results of this question set are held until the round closes.")
    if confidential and len(respondents) < question_set.min_group_size:
        raise ExportRefused(
            f"This confidential round has fewer than {question_set.min_group_size} responses; "
            "row-level answers are withheld."
        )
    include_text = not confidential or len(respondents) >= question_set.comment_min_group_size
    columns = ["id", "submitted_at", "name", "email"] if not confidential else []
    columns += [*SLICE_ATTRIBUTES, "version"]
    question_columns = []
    for spec in specs:
        if spec.type == "text" and not include_text:
            continue
        question_columns.append(spec.key)
        if spec.type == "multi_choice" and metrics.OTHER_OPTION_KEY in spec.option_keys and include_text:
            question_columns.append(f"{spec.key}.{metrics.OTHER_OPTION_KEY}")
    columns += question_columns
    blanked = _blanked_slice_combinations(respondents, question_set.min_group_size) if confidential else set()
    values = _answers_by_response(round_.id, {spec.key: spec for spec in specs})
    version_number = round_.version.number if round_.version else None
    rows = []
    for response_id, (submitted_at, name, email, *attributes) in respondents.items():
        row = {} if confidential else {
            "id": response_id, "submitted_at": isoformat_z(submitted_at), "name": name, "email": email,
        }
        shown = tuple(attributes) not in blanked
        row.update({attr: value if shown else None for attr, value in zip(SLICE_ATTRIBUTES, attributes)})
        row["version"] = version_number
        answers = values.get(response_id, {})
        row.update({column: answers.get(column) for column in question_columns})
        rows.append(row)
    if confidential:
        rows.sort(key=lambda row: repr([row[c] for c in columns]))
    return {"round": _round_summary(round_), "columns": columns, "rows": rows}


def _export_respondents(round_id) -> dict:
    """{response_id: (submitted_at, name, email, team path, region, segment)} in response order."""
    statement = (
        select(
            Response.id, Response.submitted_at, Person.name, Person.email, Team.path,
            Invitation.region, Invitation.segment,
        )
        .join(Invitation, Invitation.id == Response.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
        .outerjoin(Team, Team.id == Invitation.team_id)
        .where(Response.round_id == round_id)
        .order_by(Response.id)
    )
    return {row[0]: tuple(row[1:]) for row in db.session.execute(statement)}


def _blanked_slice_combinations(respondents, min_size) -> set:
    """(team, region, segment) combinations whose rows must not carry them."""
    sizes = defaultdict(int)
    for _submitted, _name, _email, *attributes in respondents.values():
        sizes[tuple(attributes)] += 1
    sizes[OVERALL] = len(respondents)
    combinations = [combo for combo in sizes if combo is not OVERALL]
    withheld = withheld_groups([Family(OVERALL, tuple(sorted(combinations, key=repr)))], sizes, min_size)
    return {combo for combo in withheld if combo is not OVERALL}


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
