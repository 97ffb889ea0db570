"""Areas, needs, evidence and the triage inbox: the rules (SPEC §10).

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
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError

from cadence import dispatch
from cadence.models import Cadence, Invitation, Round
from surveys.audit import record
from surveys.extensions import db
from surveys.models import Answer, Question, QuestionSet, Response
from surveys.org.models import Person
from surveys.scorecard.confidentiality import Policy, round_plan
from surveys.scorecard.groups import TeamTree
from surveys.triage.models import (
    ANNOUNCED_STATUSES, NEED_STATUSES, Area, AreaMapping, AreaOwner, Evidence, Need, NeedNotice, TriageItem,
)
from surveys.triage.suggest import Suggester

NAME_MAX = 200
NOTE_MAX = 1000
AREA_NAME_MAX = 120
INBOX_LIMIT = 100
PERIOD_DAYS = 30
FILTER_KINDS = ("team", "region", "segment")


class TriageError(ValueError):
    """Input that cannot be stored; `errors` maps a field to its message."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# -- Areas ---------------------------------------------------------------------------------


def area_paths() -> dict:
    """{area id: "Platform / Security / SSO"}, sorted by path."""
    rows = {a.id: (a.name, a.parent_id) for a in db.session.scalars(select(Area))}

    def path(area_id, seen=()):
        name, parent = rows[area_id]
        if parent is None or parent not in rows or parent in seen:
            return name
        return f"{path(parent, (*seen, area_id))} / {name}"

    return dict(sorted(((area_id, path(area_id)) for area_id in rows), key=lambda item: item[1].lower()))


def subtree(area_id) -> set:
    children = defaultdict(list)
    for child, parent in db.session.execute(select(Area.id, Area.parent_id)):
        children[parent].append(child)
    out, stack = set(), [area_id]
    while stack:
        current = stack.pop()
        if current not in out:
            out.add(current)
            stack.extend(children[current])
    return out


def create_area(actor, name: str, parent_id=None, owner_ids=()) -> Area:
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = "Name the area."
    elif len(name) > AREA_NAME_MAX:
        errors["name"] = f"Keep the name to {AREA_NAME_MAX} characters."
    parent = None
    if parent_id not in (None, ""):
        parent = get_by_id(Area, parent_id)
        if parent is None:
            errors["parent_id"] = "No such parent area."
    if not errors and db.session.scalar(select(Area.id).where(
            Area.name == name, Area.parent_id.is_(None) if parent is None else Area.parent_id == parent.id)):
        errors["name"] = "An area with this name already exists there."
    owners = []
    for owner_id in owner_ids or ():
        person = get_by_id(Person, owner_id)
        if person is None or not person.has_role("pm"):
            errors["owner_ids"] = "Owners must be product managers."
        else:
            owners.append(person)
    if errors:
        raise TriageError(errors)
    area = Area(name=name, parent_id=parent.id if parent else None)
    db.session.add(area)
    db.session.flush()
    for person in owners:
        db.session.add(AreaOwner(area_id=area.id, person_id=person.id))
    record(actor, "area.created", area, {"name": name, "parent_id": area.parent_id,
                                         "owners": [p.id for p in owners]})
    return area


def map_to_area(actor, area: Area, question_set_id, question_key: str, option_key: str | None = None) -> AreaMapping:
    """Map a question (or one option of it) of a set to an area, replacing an earlier mapping."""
    question_set = get_by_id(QuestionSet, question_set_id)
    errors = {}
    question = None
    if question_set is None:
        errors["question_set_id"] = "No such question set."
    else:
        question = db.session.scalars(
            select(Question).join(Question.version).where(Question.key == question_key,
                                                          Question.version.has(question_set_id=question_set.id))
            .order_by(Question.id.desc())).first()
        if question is None:
            errors["question_key"] = "The set has no such question."
        elif option_key and option_key not in {o.get("key") for o in question.options}:
            errors["option_key"] = "The question has no such option."
    if errors:
        raise TriageError(errors)
    option_key = option_key or None
    mapping = db.session.scalar(select(AreaMapping).where(
        AreaMapping.question_set_id == question_set.id, AreaMapping.question_key == question_key,
        AreaMapping.option_key.is_(None) if option_key is None else AreaMapping.option_key == option_key))
    if mapping is None:
        mapping = AreaMapping(question_set_id=question_set.id, question_key=question_key, option_key=option_key)
        db.session.add(mapping)
    mapping.area_id = area.id
    db.session.flush()
    record(actor, "area.mapped", area, {"question_set_id": question_set.id, "question_key": question_key,
                                        "option_key": option_key})
    return mapping


def areas_tree() -> list[dict]:
    """Every area with its path, parent and owners (names and emails of PMs: staff, not reps)."""
    paths = area_paths()
    areas = {a.id: a for a in db.session.scalars(select(Area))}
    return [{"id": area_id, "name": areas[area_id].name, "path": path, "parent_id": areas[area_id].parent_id,
             "owners": [{"id": p.id, "name": p.name, "email": p.email} for p in areas[area_id].owners]}
            for area_id, path in paths.items()]


def area_rollup() -> list[dict]:
    """Per area (with its sub-areas): how often its mapped options were
    chosen, over closed rounds, counting a confidential round only where the
    plan publishes the question for everyone (the count the scorecard shows)."""
    mappings = db.session.scalars(select(AreaMapping).where(AreaMapping.option_key.is_not(None))).all()
    if not mappings:
        return []
    by_set = defaultdict(list)
    for mapping in mappings:
        by_set[mapping.question_set_id].append(mapping)
    counts = defaultdict(int)
    rounds = db.session.scalars(select(Round).where(Round.status == "closed")).all()
    for round_ in rounds:
        set_id = round_.cadence.question_set_id
        if set_id not in by_set:
            continue
        plan = round_plan(round_)
        for mapping in by_set[set_id]:
            if plan is not None and plan.question_reason(mapping.question_key, None, None):
                continue
            counts[mapping.area_id] += db.session.scalar(select(func.count(Answer.id)).where(
                Answer.round_id == round_.id, Answer.question_key == mapping.question_key,
                Answer.value_text == mapping.option_key)) or 0
    paths = area_paths()
    parents = dict(db.session.execute(select(Area.id, Area.parent_id)).all())
    rolled = defaultdict(int)
    for area_id, count in counts.items():
        current, seen = area_id, set()
        while current is not None and current not in seen:
            seen.add(current)
            rolled[current] += count
            current = parents.get(current)
    return [{"area_id": area_id, "path": paths[area_id], "own": counts.get(area_id, 0), "total": total}
            for area_id, total in sorted(rolled.items(), key=lambda item: paths[item[0]].lower())]


# -- The inbox -----------------------------------------------------------------------------


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
            return whole_id(value)

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


def inbox(filters: InboxFilters, limit: int = INBOX_LIMIT) -> dict:
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
    suggester = fit_suggester()
    suggestions = suggester.top([row.text for row, _ in chosen])
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


# -- Needs and evidence --------------------------------------------------------------------


MAX_ID = 2**31 - 1  # ids are 32-bit integers in every database Canary runs on


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def whole_id(value) -> int | None:
    """An id from a form, a query string or JSON: a whole number from 1 to MAX_ID, else None
    (a larger number would be an error in PostgreSQL, not merely unknown)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_ID)):
            return None
    number = _int(value)
    return number if number is not None and 1 <= number <= MAX_ID else None


def get_by_id(model, value):
    """The row whose id is `value` (see whole_id), or None."""
    number = whole_id(value)
    return db.session.get(model, number) if number is not None else None


def validate_importance(value) -> int:
    importance = _int(value)
    if importance not in (1, 2, 3):
        raise TriageError({"importance": "Importance is 1 (nice to have), 2 (important) or 3 (deal-breaker)."})
    return importance


def create_need(actor, name: str, area_id=None, now=None, note: str = "") -> Need:
    name = (name or "").strip()
    note = (note or "").strip()
    errors = {}
    if not name:
        errors["name"] = "Name the need, e.g. \u201cSAML SSO for banks\u201d."
    elif len(name) > NAME_MAX:
        errors["name"] = f"Keep the name to {NAME_MAX} characters."
    if len(note) > NOTE_MAX:
        errors["public_note"] = f"Keep the note to {NOTE_MAX} characters."
    area = None
    if area_id not in (None, ""):
        area = get_by_id(Area, area_id)
        if area is None:
            errors["area_id"] = "No such area."
    if errors:
        raise TriageError(errors)
    need = Need(name=name, area_id=area.id if area else None, public_note=note,
                created_by_id=actor.id if actor else None, created_at=now, status_changed_at=now)
    db.session.add(need)
    db.session.flush()
    record(actor, "need.created", need, {"name": name, "area_id": need.area_id})
    return need


def _answer_context(answer: Answer) -> tuple[Round, bool, int | None, datetime]:
    round_ = db.session.get(Round, answer.round_id)
    response = db.session.get(Response, answer.response_id)
    invitation = db.session.get(Invitation, response.invitation_id)
    attributed = Policy.for_round(round_).min_size is None
    if attributed:
        return round_, False, invitation.person_id, response.submitted_at
    return round_, True, None, round_.closed_at or round_.closes_at


def link_item(actor, item: TriageItem, need: Need, importance, now, amount=None) -> Evidence:
    """Link an inbox comment to a need (once per need) and mark it triaged."""
    importance = validate_importance(importance)
    answer = db.session.get(Answer, item.answer_id)
    existing = db.session.scalar(select(Evidence).where(Evidence.need_id == need.id,
                                                        Evidence.answer_id == answer.id))
    if existing is not None:
        raise TriageError({"need_id": "This comment is already evidence for that need."})
    round_, confidential, person_id, heard_at = _answer_context(answer)
    evidence = Evidence(need_id=need.id, kind="comment", answer_id=answer.id, round_id=round_.id,
                        question_set_id=item.question_set_id, question_key=item.question_key,
                        text=answer.value_text or "", importance=importance, amount=amount,
                        confidential=confidential, person_id=person_id, heard_at=heard_at,
                        created_by_id=actor.id if actor else None, created_at=now)
    db.session.add(evidence)
    item.state, item.triaged_by_id, item.triaged_at = "linked", actor.id if actor else None, now
    db.session.flush()
    record(actor, "need.evidence_linked", need, {"evidence_id": evidence.id, "comment": item.token,
                                                 "importance": importance, "confidential": confidential})
    return evidence


def link_option_answer(actor, answer_id, need: Need, importance, now) -> Evidence:
    """Link one chosen option (a choice answer) to a need: attributed sets
    only, since a single confidential choice is counted through option
    mappings and the scorecard, never linked one by one."""
    importance = validate_importance(importance)
    answer = get_by_id(Answer, answer_id)
    if answer is None:
        raise TriageError({"answer_id": "No such answer."})
    round_ = db.session.get(Round, answer.round_id)
    question = db.session.scalar(select(Question).where(Question.version_id == round_.question_set_version_id,
                                                        Question.key == answer.question_key))
    if question is None or question.type not in ("single_choice", "multi_choice"):
        if question is not None and question.type == "text":
            raise TriageError({"answer_id": "That answer is a comment: send its comment_id from the inbox."})
        raise TriageError({"answer_id": "Only a chosen option can be linked as answer_id."})
    if Policy.for_round(round_).min_size is not None:
        raise TriageError({"answer_id": "Choices of a confidential set are counted through area mappings, "
                                        "never linked one by one."})
    if db.session.scalar(select(Evidence.id).where(Evidence.need_id == need.id, Evidence.answer_id == answer.id)):
        raise TriageError({"answer_id": "This answer is already evidence for that need."})
    _round, confidential, person_id, heard_at = _answer_context(answer)
    label = next((o.get("label") for o in question.options if o.get("key") == answer.value_text), answer.value_text)
    text = f"{question.prompt} {label}" + (f": {answer.detail}" if answer.detail else "")
    evidence = Evidence(need_id=need.id, kind="option", answer_id=answer.id, round_id=round_.id,
                        question_set_id=round_.cadence.question_set_id, question_key=answer.question_key,
                        option_key=answer.value_text, text=text, importance=importance, confidential=confidential,
                        person_id=person_id, heard_at=heard_at, created_by_id=actor.id if actor else None,
                        created_at=now)
    db.session.add(evidence)
    db.session.flush()
    record(actor, "need.evidence_linked", need, {"evidence_id": evidence.id, "answer_id": answer.id,
                                                 "importance": importance})
    return evidence


def dismiss_item(actor, item: TriageItem, now) -> None:
    item.state, item.triaged_by_id, item.triaged_at = "dismissed", actor.id if actor else None, now
    record(actor, "triage.dismissed", f"comment {item.token}", {})


def merge_needs(actor, source: Need, target: Need) -> int:
    """Move the source need's evidence to the target (a comment already there
    is not duplicated: the higher importance is kept), then delete the source."""
    if source.id == target.id:
        raise TriageError({"target_id": "Pick a different need to merge into."})
    kept = {e.answer_id: e for e in target.evidence if e.answer_id is not None}
    moved = 0
    for evidence in list(source.evidence):
        twin = kept.get(evidence.answer_id) if evidence.answer_id is not None else None
        if twin is not None:
            twin.importance = max(twin.importance, evidence.importance)
            db.session.delete(evidence)
        else:
            evidence.need_id = target.id
            moved += 1
    for notice in db.session.scalars(select(NeedNotice).where(NeedNotice.need_id == source.id)):
        if db.session.scalar(select(NeedNotice.id).where(NeedNotice.need_id == target.id,
                                                         NeedNotice.person_id == notice.person_id,
                                                         NeedNotice.status == notice.status)):
            db.session.delete(notice)
        else:
            notice.need_id = target.id
    db.session.flush()
    record(actor, "need.merged", target, {"source_id": source.id, "source_name": source.name, "moved": moved})
    db.session.expire(source, ["evidence"])  # reread: its evidence is the target's now
    db.session.delete(source)
    db.session.flush()
    db.session.expire(target)
    return moved


def change_status(actor, need: Need, status: str, note: str | None, now) -> list[int]:
    """Move a need to `status` with its public note; for planned and shipped,
    one pending notice per rep whose attributed evidence it holds (none for
    confidential evidence, and never a second one for the same status).
    Returns the new notice ids: send them with `announce` after the commit."""
    errors = {}
    if status not in NEED_STATUSES:
        errors["status"] = f"Status is one of: {', '.join(NEED_STATUSES)}."
    note = need.public_note if note is None else (note or "").strip()
    if len(note) > NOTE_MAX:
        errors["public_note"] = f"Keep the note to {NOTE_MAX} characters."
    if status in ANNOUNCED_STATUSES and not note:
        errors["public_note"] = "Write the short public note the reps will read."
    if errors:
        raise TriageError(errors)
    before = need.status
    need.status, need.public_note = status, note
    if before != status:
        need.status_changed_at = now
    notice_ids = []
    if status in ANNOUNCED_STATUSES and before != status:
        people = sorted({e.person_id for e in need.evidence if e.person_id is not None and not e.confidential})
        already = set(db.session.scalars(select(NeedNotice.person_id).where(
            NeedNotice.need_id == need.id, NeedNotice.status == status)))
        for person_id in people:
            if person_id in already:
                continue
            notice = NeedNotice(need_id=need.id, person_id=person_id, status=status, created_at=now)
            db.session.add(notice)
            db.session.flush()
            notice_ids.append(notice.id)
    record(actor, "need.status_changed", need, {"from": before, "to": status, "notices": len(notice_ids),
                                                "confidential_evidence": sum(e.confidential for e in need.evidence)})
    return notice_ids


def announce(notice_ids: list[int]) -> None:
    """After the commit that stored them: queue the notices' messages."""
    if notice_ids:
        dispatch.need_notices(notice_ids)


# -- Ranking -------------------------------------------------------------------------------


def fit_suggester() -> Suggester:
    documents = {need.id: (need.name, []) for need in db.session.scalars(select(Need).order_by(Need.id))}
    for need_id, text in db.session.execute(select(Evidence.need_id, Evidence.text)):
        documents[need_id][1].append(text)
    return Suggester.fit(documents)


def ranked_needs(now, area_id=None, status=None) -> list[dict]:
    """Needs with mentions (all time, this period and the one before, of
    PERIOD_DAYS each, by when the evidence was heard), weighted importance,
    revenue at stake (None until deals exist), ranked by mentions this
    period, then weighted importance, revenue and mentions of all time."""
    statement = select(Need)
    if area_id is not None:
        statement = statement.where(Need.area_id.in_(subtree(area_id)))
    if status is not None:
        statement = statement.where(Need.status == status)
    needs = db.session.scalars(statement).all()
    paths = area_paths()
    start = now - timedelta(days=PERIOD_DAYS)
    before = start - timedelta(days=PERIOD_DAYS)
    stats = defaultdict(lambda: {"mentions": 0, "this_period": 0, "last_period": 0, "importance": 0,
                                 "revenue": None, "confidential": 0})
    if needs:
        for need_id, heard_at, importance, amount, confidential in db.session.execute(
            select(Evidence.need_id, Evidence.heard_at, Evidence.importance, Evidence.amount, Evidence.confidential)
            .where(Evidence.need_id.in_([n.id for n in needs]))
        ):
            s = stats[need_id]
            s["mentions"] += 1
            s["importance"] += importance
            s["confidential"] += bool(confidential)
            if heard_at >= start:
                s["this_period"] += 1
            elif heard_at >= before:
                s["last_period"] += 1
            if amount is not None:
                s["revenue"] = float(amount) + (s["revenue"] or 0.0)
    heard = heard_back()
    out = []
    for need in needs:
        s = stats[need.id]
        out.append({"id": need.id, "name": need.name, "status": need.status, "public_note": need.public_note,
                    "area_id": need.area_id, "area": paths.get(need.area_id), **s,
                    "trend": s["this_period"] - s["last_period"], "heard_back": heard["needs"].get(need.id)})
    out.sort(key=lambda n: (-n["this_period"], -n["importance"], -(n["revenue"] or 0), -n["mentions"],
                            n["name"].lower()))
    return out


def heard_back() -> dict:
    """The loop: of needs planned or shipped holding attributed evidence, how
    many have told every such rep, and the median days from the first
    evidence to the last message."""
    per_need = {}
    rows = db.session.execute(select(NeedNotice.need_id, NeedNotice.state, NeedNotice.sent_at)).all()
    by_need = defaultdict(list)
    for need_id, state, sent_at in rows:
        by_need[need_id].append((state, sent_at))
    first_heard = dict(db.session.execute(select(Evidence.need_id, func.min(Evidence.created_at))
                                          .group_by(Evidence.need_id)).all())
    days = []
    for need_id, notices in by_need.items():
        done = all(state == "sent" for state, _ in notices)
        per_need[need_id] = {"told": sum(state == "sent" for state, _ in notices), "of": len(notices)}
        if done and first_heard.get(need_id):
            last = max(sent_at for _, sent_at in notices)
            days.append((last - first_heard[need_id]).total_seconds() / 86400)
    eligible = len(by_need)
    closed = sum(1 for v in per_need.values() if v["told"] == v["of"])
    days.sort()
    median = days[len(days) // 2] if days else None
    return {"needs": per_need, "eligible": eligible, "closed": closed,
            "share": round(100.0 * closed / eligible, 1) if eligible else None,
            "median_days": round(median, 1) if median is not None else None}


def need_evidence(need: Need) -> list[dict]:
    """A need's evidence, oldest first: the text, where it came from, and the
    rep's name only for attributed sets."""
    set_names = dict(db.session.execute(select(QuestionSet.id, QuestionSet.name)).all())
    periods = dict(db.session.execute(select(Round.id, Round.period_key).where(
        Round.id.in_({e.round_id for e in need.evidence if e.round_id}))).all()) if need.evidence else {}
    people = dict(db.session.execute(select(Person.id, Person.name).where(
        Person.id.in_({e.person_id for e in need.evidence if e.person_id}))).all()) if need.evidence else {}
    return [{"id": e.id, "kind": e.kind, "text": e.text, "round_id": e.round_id, "importance": e.importance,
             "amount": float(e.amount) if e.amount is not None else None, "confidential": e.confidential,
             "question_set": set_names.get(e.question_set_id), "period_key": periods.get(e.round_id),
             "writer": None if e.confidential else people.get(e.person_id), "heard_at": e.heard_at}
            for e in need.evidence]


def evidence_by_period(need: Need) -> list[tuple[str, int]]:
    """[(YYYY-MM, mentions)] for the need's chart, every month from the first to the last."""
    months = defaultdict(int)
    for e in need.evidence:
        months[e.heard_at.strftime("%Y-%m")] += 1
    if not months:
        return []
    first, last = min(months), max(months)
    year, month = int(first[:4]), int(first[5:])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        key = f"{year:04d}-{month:02d}"
        out.append((key, months.get(key, 0)))
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out
