"""What a card may show: the set's policy, the round's publication plan
(surveys.disclosure: one plan across every slice kind, read by every card,
comment list, export and list) and a round's aggregates seen through it."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from cadence.models import Invitation, Round
from surveys import disclosure
from surveys.caches import BoundedCache
from surveys.extensions import db
from surveys.snapshots import ScorecardSnapshot
from surveys.scorecard.cube import RoundAggregates
from surveys.scorecard.groups import (
    COMPLEMENTARY,
    HELD_UNTIL_CLOSE,
    OVERALL,
    SLICE_KINDS,
    SMALL_GROUP,
    TeamTree,
)
from surveys.scorecard.history import question_specs


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
    atoms = disclosure.RoundAtoms.load(round_.id)
    inputs = _plan_inputs(atoms, tree, specs, policy)
    plan = LIVE_PLANS.get(inputs)
    if plan is None:
        plan = LIVE_PLANS.remember(inputs, disclosure.plan_round(
            atoms, tree.lineage, specs, policy.min_size, policy.comment_min_size, names, held=policy.held))
    return plan


# A plan is a pure function of what it is computed from, and computing it
# (greedy passes in four orders over every group) costs more than reading
# its inputs. As with live cards (surveys.scorecard.assembly.LIVE_CARDS), a
# process keeps the last plans under a digest of every input and hands one
# out again only for identical inputs: any new answer or invitation, moved
# team or changed policy is a new digest. Plans are read-only once made.
LIVE_PLANS = BoundedCache(size=32)


def _plan_inputs(atoms, tree, specs, policy) -> str:
    def cells(by_atom):
        return sorted(json.dumps([*atom, count]) for atom, count in by_atom.items())

    inputs = {
        "invited": cells(atoms.invited), "responded": cells(atoms.responded),
        "answered": {key: cells(by_atom) for key, by_atom in atoms.answered.items()},
        "writers": {key: cells(by_atom) for key, by_atom in atoms.other_writers.items()},
        "teams": sorted([team_id, path, parent] for team_id, (path, parent) in tree.teams.items()),
        "specs": [[spec.key, spec.type, spec.has_comments] for spec in specs],
        "policy": [policy.min_size, policy.comment_min_size, policy.held],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RoundView:
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




def groups_by_name(round_, tree) -> dict:
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
