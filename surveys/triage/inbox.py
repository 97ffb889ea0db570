"""The triage inbox: every comment once, with suggested needs (SPEC §10).

Confidentiality (SPEC §2, docs/confidentiality.md) is decided by the round's
publication plan (`surveys.disclosure` through `surveys.scorecard.round_plan`),
as on the scorecard's comment page:

- a round that holds its results until close (attributed or not) shows no
  comment before it closes;
- a comment of a confidential set enters the inbox only once its round has
  closed (all of the round's comments at once, in a neutral order, so the
  inbox's "new" list never tells when someone answered), and only for a
  question whose comments the plan publishes overall;
- it never carries a name, team, region, segment or time;
- a team, region or segment filter matches it only when the plan publishes
  that group for its question's comments: every combination of published
  groups covers whole cells of at least the comment threshold, so no filter
  or count narrows a comment to fewer writers;
- its evidence records no person, so a status change never messages anyone
  about it: the reply goes through "you said, we did" (surveys.feedback).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError

from cadence.models import Cadence, Invitation, Round
from surveys.extensions import db
from surveys.limits import record_id
from surveys.models import Answer, Question, QuestionSet, Response
from surveys.org.models import Person
from surveys.scorecard.confidentiality import Policy, round_plan
from surveys.scorecard.groups import TeamTree
from surveys.triage.areas import subtree
from surveys.triage.models import AreaMapping, AreaOwner, Evidence, Need, TriageItem
from surveys.triage.suggest import Suggester

INBOX_LIMIT = 100
FILTER_KINDS = ("team", "region", "segment")


def sync_inbox() -> int:
    """Give every free-text answer not yet in the inbox its item (with a random token)."""
    rows = db.session.execute(
        select(Answer.id, Answer.round_id, Answer.question_key, Round.cadence_id)
        .join(Round, Round.id == Answer.round_id)
        .join(Question, and_(Question.version_id == Round.question_set_version_id,
                             Question.key == Answer.question_key, Question.type == "text"))
        .outerjoin(TriageItem, TriageItem.answer_id == Answer.id)
        .where(TriageItem.id.is_(None), Answer.value_text.is_not(None), Answer.value_text != "")
    ).all()
    if not rows:
        return 0
    set_of = dict(db.session.execute(select(Cadence.id, Cadence.question_set_id)).all())
    try:
        with db.session.begin_nested():
            for answer_id, round_id, key, cadence_id in rows:
                db.session.add(TriageItem(token=secrets.token_hex(8), answer_id=answer_id, round_id=round_id,
                                          question_set_id=set_of[cadence_id], question_key=key))
    except IntegrityError:  # another reader of the inbox added them a moment ago: they are there now
        return 0
    return len(rows)


@dataclass
class _RoundRules:
    """How one round's comments may appear: attributed (everything), or
    confidential with the groups its plan publishes per question."""

    round: Round
    attributed: bool
    visible: bool
    tree: TeamTree | None = None
    plan: object = None
    heard_at: datetime | None = None
    _allowed: dict = field(default_factory=dict)

    def key_visible(self, key) -> bool:
        if self.attributed:
            return self.visible
        return self.visible and not self.plan.comment_reason(key, None, None)

    def allowed(self, key, kind, value) -> bool:
        """May a filter on (kind, value) match this round's comments to `key`?"""
        if self.attributed:
            return self.visible
        cache_key = (key, kind, value)
        if cache_key not in self._allowed:
            self._allowed[cache_key] = self.key_visible(key) and not self.plan.comment_reason(key, kind, value)
        return self._allowed[cache_key]

    def published_groups(self, key, kind) -> list:
        if self.attributed or not self.key_visible(key):
            return []
        return [value for group_kind, value in self.plan.published_comments.get(key, [])
                if group_kind == kind and self.allowed(key, kind, value)]


def _round_rules(round_) -> _RoundRules:
    policy = Policy.for_round(round_)
    if policy.min_size is None:  # a round that holds its results shows no comment until it closes
        return _RoundRules(round_, attributed=True, visible=not policy.held)
    visible = round_.status == "closed"
    rules = _RoundRules(round_, attributed=False, visible=visible,
                        heard_at=round_.closed_at or round_.closes_at)
    if visible:
        rules.tree = TeamTree.for_round(round_)
        rules.plan = round_plan(round_, rules.tree)
    return rules


@dataclass
class InboxFilters:
    area_id: int | None = None
    question_set_id: int | None = None
    team: int | None = None
    region: str | None = None
    segment: str | None = None
    state: str = "new"
    owner_id: int | None = None  # "my areas": the areas this PM owns, with their sub-areas

    @classmethod
    def from_args(cls, args, person=None) -> InboxFilters:
        """From a query string; `area=mine` means the areas `person` owns."""
        def number(name):
            value = (args.get(name) or "").strip()
            return record_id(value)

        state = args.get("state") if args.get("state") in ("new", "linked", "dismissed", "all") else "new"
        mine = args.get("area") == "mine" and person is not None
        return cls(area_id=number("area"), question_set_id=number("set"), team=number("team"),
                   region=(args.get("region") or "").strip() or None,
                   segment=(args.get("segment") or "").strip() or None, state=state,
                   owner_id=person.id if mine else None)

    def slice_filters(self) -> list:
        return [(kind, getattr(self, kind)) for kind in FILTER_KINDS if getattr(self, kind) is not None]


def _area_keys(filters: InboxFilters) -> set | None:
    """The (set, question key) pairs mapped to the filtered areas, or None for every comment."""
    if filters.owner_id is not None:
        ids = set()
        for area_id in db.session.scalars(select(AreaOwner.area_id).where(AreaOwner.person_id == filters.owner_id)):
            ids |= subtree(area_id)
    elif filters.area_id is not None:
        ids = subtree(filters.area_id)
    else:
        return None
    return {(set_id, key) for set_id, key in db.session.execute(
        select(AreaMapping.question_set_id, AreaMapping.question_key).where(AreaMapping.area_id.in_(ids)))}


def _matches(rules: _RoundRules, row, kind, value, current_tree) -> bool:
    if not rules.allowed(row.question_key, kind, value):
        return False
    if kind == "team":
        tree = rules.tree or current_tree()
        return row.team_id is not None and value in tree.lineage(row.team_id)
    return getattr(row, kind) == value


class _CurrentTree:
    """The team tree as it is now, read once per inbox and only if an attributed round needs it."""

    def __init__(self):
        self._tree = None

    def __call__(self) -> TeamTree:
        if self._tree is None:
            self._tree = TeamTree.load()
        return self._tree


def read_inbox(filters: InboxFilters, limit: int = INBOX_LIMIT) -> dict:
    """The inbox: comments newest first (confidential ones at their round's
    close, in a neutral order), each with up to three suggested needs; the
    filter options and their counts, all within the publication plans."""
    sync_inbox()
    current_tree = _CurrentTree()
    statement = (
        select(TriageItem.token, TriageItem.state, TriageItem.round_id, TriageItem.question_set_id,
               TriageItem.question_key, Answer.value_text.label("text"), Answer.team_id, Answer.region,
               Answer.segment, Response.submitted_at, Person.name.label("writer"))
        .join(Answer, Answer.id == TriageItem.answer_id)
        .join(Response, Response.id == Answer.response_id)
        .join(Invitation, Invitation.id == Response.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
    )
    if filters.state != "all":
        statement = statement.where(TriageItem.state == filters.state)
    if filters.question_set_id is not None:
        statement = statement.where(TriageItem.question_set_id == filters.question_set_id)
    area_keys = _area_keys(filters)
    rows = db.session.execute(statement).all()
    rules_of: dict = {}
    rounds = {r.id: r for r in db.session.scalars(select(Round).where(
        Round.id.in_({row.round_id for row in rows})))} if rows else {}
    prompts = _prompts(rounds.values())
    visible = []
    for row in rows:
        if area_keys is not None and (row.question_set_id, row.question_key) not in area_keys:
            continue
        rules = rules_of.get(row.round_id)
        if rules is None:
            rules = rules_of[row.round_id] = _round_rules(rounds[row.round_id])
        if not rules.key_visible(row.question_key):
            continue
        visible.append((row, rules))
    options, counts = _filter_options(visible, current_tree)
    chosen = [(row, rules) for row, rules in visible
              if all(_matches(rules, row, kind, value, current_tree) for kind, value in filters.slice_filters())]
    chosen.sort(key=lambda pair: _order_key(*pair))
    total = len(chosen)
    chosen = chosen[:limit]
    # A count alone (limit 0, the home page) needs no suggestions: fitting them costs the most.
    suggestions = fit_suggester().top([row.text for row, _ in chosen]) if chosen else []
    needs = {n.id: n for n in db.session.scalars(select(Need))}
    set_names = dict(db.session.execute(select(QuestionSet.id, QuestionSet.name)).all())
    items = []
    for (row, rules), suggested in zip(chosen, suggestions):
        round_ = rules.round
        item = {
            "id": row.token, "state": row.state, "text": row.text, "attributed": rules.attributed,
            "question_set": set_names.get(row.question_set_id), "question_set_id": row.question_set_id,
            "question_key": row.question_key, "prompt": prompts.get((round_.question_set_version_id, row.question_key)),
            "period_key": round_.period_key,
            "suggestions": [{"need_id": need_id, "name": needs[need_id].name, "score": score}
                            for need_id, score in suggested],
        }
        if rules.attributed:
            tree = current_tree()
            item.update(writer=row.writer, team=tree.path(row.team_id) if row.team_id in tree.teams else None,
                        region=row.region, segment=row.segment, submitted_at=row.submitted_at)
        items.append(item)
    return {"items": items, "total": total, "options": options, "counts": counts}


def _order_key(row, rules):
    if rules.attributed:
        return (-row.submitted_at.timestamp(), 0, "")
    return (-rules.heard_at.timestamp(), 1, row.text.lower())


def _prompts(rounds) -> dict:
    version_ids = {r.question_set_version_id for r in rounds}
    return {(v, k): p for v, k, p in db.session.execute(
        select(Question.version_id, Question.key, Question.prompt).where(Question.version_id.in_(version_ids)))}


def _filter_options(visible, current_tree) -> tuple[dict, dict]:
    """Per slice kind, the values a filter may take and how many visible
    comments each would show: for confidential comments, only the groups the
    plan publishes for their question's comments (so every count is a sum of
    whole cells of at least the comment threshold)."""
    options = {kind: {} for kind in FILTER_KINDS}
    counts = {kind: defaultdict(int) for kind in FILTER_KINDS}
    for row, rules in visible:
        if rules.attributed:
            tree = current_tree()
            candidates = {"team": list(tree.lineage(row.team_id)) if row.team_id in tree.teams else [],
                          "region": [row.region] if row.region else [], "segment": [row.segment] if row.segment else []}
            labels = {team: tree.path(team) for team in candidates["team"]}
        else:
            tree = rules.tree
            candidates = {kind: rules.published_groups(row.question_key, kind) for kind in FILTER_KINDS}
            labels = {team: tree.path(team) for team in candidates["team"] if team in tree.teams}
        for kind in FILTER_KINDS:
            for value in candidates[kind]:
                if _matches(rules, row, kind, value, current_tree):
                    options[kind][value] = labels.get(value, value) if kind == "team" else value
                    counts[kind][value] += 1
    ordered = {kind: sorted(values.items(), key=lambda item: str(item[1]).lower()) for kind, values in options.items()}
    return ordered, {kind: dict(values) for kind, values in counts.items()}


def item_by_token(token: str) -> TriageItem | None:
    """An inbox item a PM may act on: it exists and its comment is visible under the plan."""
    item = db.session.scalar(select(TriageItem).where(TriageItem.token == (token or "")[:32]))
    if item is None:
        return None
    round_ = db.session.get(Round, item.round_id)
    if not _round_rules(round_).key_visible(item.question_key):
        return None
    return item


def fit_suggester() -> Suggester:
    documents = {need.id: (need.name, []) for need in db.session.scalars(select(Need).order_by(Need.id))}
    for need_id, text in db.session.execute(select(Evidence.need_id, Evidence.text)):
        documents[need_id][1].append(text)
    return Suggester.fit(documents)
