"""The publication planner: for one round of a confidential set, which groups
may be published, for numbers, per question, for comments, for participation
and as attributes of exported rows. Every page, API call, export and email
reads the plan; none suppresses on its own (SPEC §2, docs/confidentiality.md).

The rule enforced is the sufficient "cells" form: take every group published
(overall, every team rolled up through the tree, every region, every
segment, whatever `?slice=` it is asked under); they cut the people counted
into cells (people who belong to exactly the same published groups). Every
non-empty cell must hold at least the threshold. Then any combination of
published numbers a reader can form (sums, differences, across slice kinds)
is a sum over whole cells, and so covers nobody or at least the threshold.

The planner is greedy and deterministic, like secondary cell suppression:
overall first, then groups from the largest down (slice kind, then name, to
break ties); a group is published when adding it to those already published
leaves every non-empty cell at or above the threshold, and withheld
otherwise. It runs in four orders (largest first, and each slice kind
first) and keeps the plan that publishes the most groups, so an org whose
regions cross its teams keeps its team tree rather than losing it to the
largest region. A withheld group is reported as `small_group` when it is
itself under the threshold, `complementary` when it is large enough but,
next to what is already shown, would let a smaller group be worked out.

Units are counted per (team, region, segment) "atom" from GROUP BY queries,
never per person: the plan costs a few hundred atoms times the groups.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from cadence.models import Invitation
from surveys import metrics
from surveys.extensions import db
from surveys.models import RespondentTally

SMALL_GROUP = "small_group"
COMPLEMENTARY = "complementary"
HELD_UNTIL_CLOSE = "held_until_close"

KIND_ORDER = {"overall": 0, "team": 1, "region": 2, "segment": 3}
OVERALL_KEY = ("overall", None)


# -- The rule, pure --------------------------------------------------------------------


def groups_of_atom(atom, lineage) -> list:
    """The published-group candidates an atom (team id, region, segment) belongs to."""
    team_id, region, segment = atom
    out = [OVERALL_KEY]
    if team_id is not None:
        out += [("team", team) for team in lineage(team_id)]
    if region is not None:
        out.append(("region", region))
    if segment is not None:
        out.append(("segment", segment))
    return out


def cells(atoms: dict, membership: dict, published) -> dict:
    """{signature: units}: the partition the published groups cut the units
    into. `atoms` maps atom -> units; `membership` atom -> set of groups."""
    published = list(published)
    sizes = defaultdict(int)
    for atom, units in atoms.items():
        if units:
            groups = membership[atom]
            sizes[tuple(group in groups for group in published)] += units
    return dict(sizes)


def satisfies_cells_rule(atoms: dict, membership: dict, published, threshold: int) -> bool:
    """Every non-empty cell of the partition cut by `published` holds at least `threshold` units."""
    return all(size >= threshold for size in cells(atoms, membership, published).values())


def plan_groups(atoms: dict, membership: dict, candidates, threshold: int, base=(), also=()) -> tuple[list, dict]:
    """Greedy: (published groups in order, {withheld group: reason}).

    `candidates` in priority order; `base` groups are already published and
    kept (their cuts count, they are not returned). A group is accepted when
    the partition cut by the base, the accepted groups and it keeps every
    non-empty cell at or above `threshold`, and likewise for each further
    (atoms, threshold) in `also` (e.g. the invitees, for participation)."""
    constraints = [(atoms, threshold), *also]
    signatures = [{atom: 0 for atom, units in units_by_atom.items() if units} for units_by_atom, _ in constraints]
    bit = 1

    def cut(group, bit):
        for by_atom in signatures:
            for atom in by_atom:
                if group in membership[atom]:
                    by_atom[atom] |= bit

    for group in base:
        cut(group, bit)
        bit <<= 1
    published, withheld = [], {}
    for group in candidates:
        size = sum(units for atom, units in atoms.items() if units and group in membership[atom])
        if size < threshold:
            withheld[group] = SMALL_GROUP
            continue
        valid = True
        for (units_by_atom, limit), by_atom in zip(constraints, signatures):
            trial = defaultdict(int)
            for atom, signature in by_atom.items():
                trial[signature | (bit if group in membership[atom] else 0)] += units_by_atom[atom]
            if any(units < limit for units in trial.values()):
                valid = False
                break
        if valid:
            cut(group, bit)
            bit <<= 1
            published.append(group)
        else:
            withheld[group] = COMPLEMENTARY
    return published, withheld


def ordered_candidates(atoms: dict, membership: dict, groups, names=None, first_kind=None) -> list:
    """Overall first, then the largest groups (or first every group of
    `first_kind`, largest first), ties by slice kind and name."""
    sizes = defaultdict(int)
    for atom, units in atoms.items():
        for group in membership[atom]:
            sizes[group] += units
    names = names or {}

    def key(group):
        kind, value = group
        return (group != OVERALL_KEY, first_kind is not None and kind != first_kind, -sizes.get(group, 0),
                KIND_ORDER[kind])

    # Equal sizes: the name later in the alphabet first (deterministic, and
    # the same choice complementary suppression used to make among siblings).
    by_name = sorted(set(groups), key=lambda group: str(names.get(group, group[1])), reverse=True)
    return sorted(by_name, key=key)


# -- A round's plan -------------------------------------------------------------------------


@dataclass
class RoundPlan:
    """What may be published about one round. Every mapping is {group:
    reason} for the groups withheld; a group is (kind, value) with
    ("overall", None) for the whole round."""

    numbers: dict = field(default_factory=dict)
    questions: dict = field(default_factory=dict)  # question key -> {group: reason}
    comments: dict = field(default_factory=dict)  # key of a question with comments -> {group: reason}
    participation: dict = field(default_factory=dict)
    published: list = field(default_factory=list)  # numbers, in plan order
    published_questions: dict = field(default_factory=dict)
    published_comments: dict = field(default_factory=dict)
    held: bool = False

    def reason(self, kind, value):
        """Why (kind, value) is withheld for numbers, or None."""
        if self.held:
            return self.numbers.get(_group(kind, value)) or HELD_UNTIL_CLOSE
        return self.numbers.get(_group(kind, value))

    def question_reason(self, key, kind, value):
        if self.held:
            return self.reason(kind, value)
        group = _group(kind, value)
        return self.numbers.get(group) or self.questions.get(key, {}).get(group)

    def comment_reason(self, key, kind, value):
        """Why comments to `key` are withheld for (kind, value), or None. A
        question the plan has no comment plan for (a plan stored before its
        "Other" texts counted as comments) publishes none."""
        if self.held:
            return self.reason(kind, value)
        if key not in self.comments:
            return SMALL_GROUP
        group = _group(kind, value)
        return self.question_reason(key, kind, value) or self.comments[key].get(group)

    def participation_reason(self, kind, value):
        return self.participation.get(_group(kind, value))

    def to_json(self) -> dict:
        def rows(mapping):
            return [[kind, value, reason] for (kind, value), reason in mapping.items()]

        def groups(items):
            return [[kind, value] for kind, value in items]

        return {
            "numbers": rows(self.numbers),
            "questions": {key: rows(value) for key, value in self.questions.items()},
            "comments": {key: rows(value) for key, value in self.comments.items()},
            "participation": rows(self.participation),
            "published": groups(self.published),
            "published_questions": {key: groups(value) for key, value in self.published_questions.items()},
            "published_comments": {key: groups(value) for key, value in self.published_comments.items()},
        }

    @classmethod
    def from_json(cls, data: dict, held: bool = False) -> RoundPlan:
        def rows(items):
            return {(kind, value): reason for kind, value, reason in items}

        def groups(items):
            return [(kind, value) for kind, value in items]

        return cls(
            numbers=rows(data["numbers"]),
            questions={key: rows(value) for key, value in data["questions"].items()},
            comments={key: rows(value) for key, value in data["comments"].items()},
            participation=rows(data["participation"]),
            published=groups(data["published"]),
            published_questions={key: groups(v) for key, v in data["published_questions"].items()},
            published_comments={key: groups(v) for key, v in data["published_comments"].items()},
            held=held,
        )


def _group(kind, value):
    return OVERALL_KEY if kind in (None, "overall") else (kind, value)


@dataclass
class RoundAtoms:
    """A round's units per (team, region, segment) atom, from two GROUP BY queries."""

    invited: dict
    responded: dict
    answered: dict  # question key -> {atom: respondents who answered it}
    other_writers: dict  # multi-choice key -> {atom: respondents who wrote an "other" text}

    @classmethod
    def load(cls, round_id) -> RoundAtoms:
        """From the round's invitations and its respondent tallies
        (surveys.scorecard.tallies), whose size follows the atoms, not the answers."""
        invited, responded = {}, {}
        for team_id, region, segment, count, answered in db.session.execute(
            select(Invitation.team_id, Invitation.region, Invitation.segment, func.count(Invitation.id),
                   func.count(Invitation.responded_at))
            .where(Invitation.round_id == round_id)
            .group_by(Invitation.team_id, Invitation.region, Invitation.segment)
        ):
            invited[(team_id, region, segment)] = count
            responded[(team_id, region, segment)] = answered
        answered_by_key, other = defaultdict(dict), defaultdict(dict)
        for team_id, region, segment, key, respondents, writers in db.session.execute(
            select(RespondentTally.team_id, RespondentTally.region, RespondentTally.segment,
                   RespondentTally.question_key, RespondentTally.respondents, RespondentTally.writers)
            .where(RespondentTally.round_id == round_id,
                   (RespondentTally.respondents != 0) | (RespondentTally.writers != 0))
        ):
            if respondents:
                answered_by_key[key][(team_id, region, segment)] = respondents
            if writers:
                other[key][(team_id, region, segment)] = writers
        return cls(invited, responded, dict(answered_by_key), dict(other))


def plan_round(atoms: RoundAtoms, lineage, specs, min_size, comment_min_size, names=None, held=False) -> RoundPlan:
    """The plan of one confidential round (pure once the atoms are read).

    1. groups: candidates are every group with an invitee, units the
       respondents and, at the same time, the invitees;
    2. each question: candidates the groups published in 1, units its answerers;
    3. each free-text question's comments, and each multi-choice question's
       "Other" texts: candidates the groups published for it in 2, units its
       writers, threshold the comment threshold;
    Participation is published for exactly the groups of 1, which are chosen
    so that the invitees' cells also hold at least the minimum."""
    membership = {atom: set(groups_of_atom(atom, lineage)) for atom in atoms.invited}
    for by_atom in atoms.answered.values():
        for atom in by_atom:
            membership.setdefault(atom, set(groups_of_atom(atom, lineage)))
    every_group = {group for groups in membership.values() for group in groups}
    orders = [ordered_candidates(atoms.invited, membership, every_group, names, first)
              for first in (None, "team", "region", "segment")]
    plan = RoundPlan(held=held)
    if held:  # nothing that moves with answers: the groups are chosen from the invitees alone
        plan.published, plan.numbers = _most_published(
            plan_groups(atoms.invited, membership, order, min_size) for order in orders)
        plan.participation = dict(plan.numbers)
        return plan
    # One set of groups for numbers and participation: respondents and invitees
    # both cut into cells of at least the minimum (who did not answer is
    # confidential too, and a leader knows who is in each group).
    plan.published, plan.numbers = _most_published(
        plan_groups(atoms.responded, membership, order, min_size, also=[(atoms.invited, min_size)])
        for order in orders)
    plan.participation = dict(plan.numbers)
    planned = {}  # questions answered by the same people (required ones) share a plan
    for spec in specs:
        answered = atoms.answered.get(spec.key, {})
        same = frozenset((atom, units) for atom, units in answered.items() if units)
        if same not in planned:
            planned[same] = plan_groups(answered, membership, plan.published, min_size)
        published, withheld = planned[same]
        published, withheld = list(published), dict(withheld)
        plan.published_questions[spec.key], plan.questions[spec.key] = published, withheld
        if spec.has_comments:
            # A text question's writers are its answerers; a multi-choice
            # question's are those who typed an "Other" text.
            writers = answered if spec.type == "text" else atoms.other_writers.get(spec.key, {})
            published, withheld = plan_groups(writers, membership, published, comment_min_size)
            plan.published_comments[spec.key], plan.comments[spec.key] = published, withheld
    return plan


def _most_published(plans) -> tuple[list, dict]:
    """Of greedy plans run in different orders (largest first; each slice kind
    first), the one that publishes the most groups; the first on a tie."""
    best = None
    for plan in plans:
        if best is None or len(plan[0]) > len(best[0]):
            best = plan
    return best


def export_attributes(plan: RoundPlan, atoms: RoundAtoms, lineage, min_size) -> set:
    """Which (kind, value) row attributes an export may carry: a row shows its
    own team, region or segment only when that attribute, added to every
    group the plan publishes, still leaves every cell of respondents at or
    above the minimum group size (rule 1 with the rows' groups included)."""
    membership = {}
    for atom in atoms.responded:
        team_id, region, segment = atom
        groups = set(groups_of_atom(atom, lineage))
        if team_id is not None:
            groups.add(("own_team", team_id))
        membership[atom] = groups
    own = [("own_team", atom[0]) for atom in atoms.responded if atom[0] is not None]
    own += [("region", atom[1]) for atom in atoms.responded if atom[1] is not None]
    own += [("segment", atom[2]) for atom in atoms.responded if atom[2] is not None]
    order = {"own_team": 1, "region": 2, "segment": 3}
    sizes = defaultdict(int)
    for atom, units in atoms.responded.items():
        for group in membership[atom]:
            sizes[group] += units
    candidates = sorted(set(own), key=lambda g: (-sizes[g], order[g[0]], str(g[1])))
    accepted, _withheld = plan_groups(atoms.responded, membership, candidates, min_size, base=plan.published)
    return set(accepted) | {group for group in plan.published if group[0] in ("region", "segment")}


def text_column_allowed(plan: RoundPlan, writers: dict, shown: set, lineage, published, threshold) -> bool:
    """Whether an export may carry a free-text column: its writers, cut by the
    groups published for it and by the row attributes shown, fill every cell
    with at least the comment threshold."""
    membership = {}
    for atom in writers:
        team_id, region, segment = atom
        groups = set(groups_of_atom(atom, lineage))
        if team_id is not None:
            groups.add(("own_team", team_id))
        membership[atom] = groups
    groups = list(published) + sorted(shown, key=str)
    if sum(writers.values()) < threshold and sum(writers.values()) > 0:
        return False
    return satisfies_cells_rule(writers, membership, groups, threshold)


# -- The policy a round was sent under -------------------------------------------------------


def policy_record(question_set) -> dict:
    """What a round records at opening: the promise its invitations carry."""
    return {
        "confidentiality": question_set.confidentiality,
        "min_group_size": question_set.min_group_size,
        "comment_min_group_size": question_set.comment_min_group_size,
        "hold_until_close": bool(question_set.hold_until_close),
    }


def effective_policy(round_) -> dict:
    """The strictest of what the round was sent under and what its set says
    now: a promise made to those invited is never loosened afterwards."""
    current = policy_record(round_.cadence.question_set)
    recorded = round_.policy or {}
    confidential = "confidential" in (current["confidentiality"], recorded.get("confidentiality"))
    return {
        "confidentiality": "confidential" if confidential else "attributed",
        "min_group_size": max(current["min_group_size"], recorded.get("min_group_size") or 0),
        "comment_min_group_size": max(current["comment_min_group_size"],
                                      recorded.get("comment_min_group_size") or 0),
        "hold_until_close": current["hold_until_close"] or bool(recorded.get("hold_until_close")),
    }


def round_counts(round_, invited: int, responded: int) -> dict:
    """A round's overall {"invited", "responded", "rate", "withheld"} as every
    round list shows it: nothing that moves with answers while a held round
    is open, and for a confidential set nothing at all (but "withheld") until
    both the invitees and the respondents reach the minimum group size (the
    overall group of the plan is published exactly then)."""
    policy = effective_policy(round_)
    held = policy["hold_until_close"] and round_.status == "open"
    if policy["confidentiality"] == "confidential" and invited:
        k = policy["min_group_size"]
        if invited < k or (not held and responded < k):
            return {"invited": None, "responded": None, "rate": None, "withheld": True, "held": held}
    rate = metrics.rounded(100.0 * responded / invited, metrics.PERCENT_DIGITS) if invited else None
    return {
        "invited": invited,
        "responded": None if held else responded,
        "rate": None if held else rate,
        "withheld": False,
        "held": held,
    }
