"""Product areas: a tree of areas owned by PMs, the questions and options
mapped to them, and the comment counts rolled up the tree."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from cadence.models import Round
from surveys.audit import record
from surveys.extensions import db
from surveys.models import Answer, Question, QuestionSet
from surveys.org.models import Person
from surveys.scorecard.confidentiality import round_plan
from surveys.triage.inputs import AREA_NAME_MAX, TriageError, get_by_id
from surveys.triage.models import Area, AreaMapping, AreaOwner


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
        counted = [m for m in by_set[set_id]
                   if plan is None or not plan.question_reason(m.question_key, None, None)]
        if not counted:
            continue
        chosen = dict(((key, option), count) for key, option, count in db.session.execute(
            select(Answer.question_key, Answer.value_text, func.count(Answer.id))
            .where(Answer.round_id == round_.id, Answer.question_key.in_({m.question_key for m in counted}))
            .group_by(Answer.question_key, Answer.value_text)))
        for mapping in counted:
            counts[mapping.area_id] += chosen.get((mapping.question_key, mapping.option_key), 0)
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
