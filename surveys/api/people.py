"""People over the API: list (pm, leader, admin) and bulk upsert (admin).

The upsert is the CSV import's JSON twin: the same validator and the same
upsert, with item indexes where the CSV has line numbers. Validation errors
are keyed "[<index>].<field>" (for example "[3].timezone"), or "[<index>]"
alone when the problem concerns the whole item, as question sets key theirs
("questions[4].scale_max").
"""

from flask import g, request
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from surveys.org.models import Person, Team
from surveys.org.people import (
    PERSON_FIELDS,
    normalise_team_path,
    person_to_dict,
    team_and_subteams,
    upsert_people,
    validate_people,
)
from surveys import limits, payloads
from surveys.api.base import api_bp, api_roles, json_body, problem_responses
from surveys.extensions import db
from surveys import audit
from surveys.problems import ApiProblem, validation_problem
from surveys.permissions import ADMINS, STAFF

PER_PAGE = 50
# One request stays one short transaction; larger syncs send several batches.
MAX_ITEMS_PER_REQUEST = 5000


@api_bp.get("/people")
@api_roles(*STAFF)
def list_people():
    page = _page_number()
    query = select(Person)
    team_path = request.args.get("team", "").strip()
    if team_path:
        if db.session.scalar(select(Team.id).where(Team.path == normalise_team_path(team_path))) is None:
            raise ApiProblem(404, "Not found", f"No team with the path '{team_path}'.")
        query = query.join(Team, Person.team_id == Team.id).where(team_and_subteams(team_path))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    people = db.session.scalars(
        query.options(selectinload(Person.team), selectinload(Person.manager))
        .order_by(Person.email)
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    return {"items": [person_to_dict(p) for p in people], "page": page, "per_page": PER_PAGE, "total": total}


def _page_number() -> int:
    raw = request.args.get("page", "1")
    if limits.whole_number(raw, minimum=1, maximum=MAX_PAGE) is None:
        raise ApiProblem(400, "Bad request", f"page must be a whole number from 1 to {MAX_PAGE:,}.")
    return int(raw)


# Far beyond any real org; keeps OFFSET within what every database accepts.
MAX_PAGE = 1_000_000


payloads.declare("PeopleInput", {"type": "array", "maxItems": MAX_ITEMS_PER_REQUEST, "items": payloads.ref("PersonInput")})


@api_bp.post("/people")
@api_roles(*ADMINS)
def upsert_people_endpoint():
    items = json_body(list)
    errors = payloads.shape_errors("PeopleInput", items, root="items", depth=2)
    # The fields that fit their schema go on to the checks a schema cannot
    # make (time zones, duplicates, managers), so one answer lists every fault.
    rows = [(index, {name: value for name, value in item.items() if f"[{index}].{name}" not in errors})
            for index, item in enumerate(items) if isinstance(item, dict)]
    good, row_errors = validate_people(rows, position_word="item")
    for error in row_errors:
        errors.setdefault(f"[{error.line}].{error.field}" if error.field else f"[{error.line}]", error.reason)
    if errors:
        raise validation_problem(errors, "Some people are invalid; nothing was stored.")
    result = upsert_people(good, g.api_user)
    audit.record(g.api_user, "people.imported", None,
                 {"created": result.created, "updated": result.updated, "source": "api"})
    db.session.commit()
    return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}


OPENAPI_SCHEMAS = {
    "Person": {
        "type": "object",
        "required": ["id", "email", "name", "roles", "team", "region", "segment", "manager_email", "timezone", "active"],
        "properties": {"id": {"type": "integer"}, **PERSON_FIELDS, "roles": {"type": "array", "items": PERSON_FIELDS["roles"]["items"]},
                       "timezone": {"type": "string"}},
    },
}

OPENAPI_PATHS = {
    "/people": {
        "get": {
            "summary": "List people (roles pm, leader, admin)",
            "parameters": [
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1},
                 "description": f"{PER_PAGE} people per page, ordered by email."},
                {"name": "team", "in": "query", "schema": {"type": "string"},
                 "description": "A team path; includes its sub-teams. 404 when no team has that path."},
            ],
            "responses": {
                "200": {
                    "description": "One page of people",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Person"}},
                            "page": {"type": "integer"},
                            "per_page": {"type": "integer"},
                            "total": {"type": "integer"},
                        },
                    }}},
                },
                **problem_responses(400, 401, 403, 404),
            },
        },
        "post": {
            "summary": "Create or update people by email (role admin)",
            "description": "All or nothing: when any item is invalid the answer is 422 and nothing is stored. "
            "The problem's `errors` map is keyed '[<item index>].<field>' (e.g. '[3].timezone': "
            "\"unknown time zone 'Mars/Olympus_Mons' ...\"), or '[<item index>]' for a problem with the whole "
            f"item. At most {MAX_ITEMS_PER_REQUEST} items per request.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": payloads.ref("PeopleInput")}},
            },
            "responses": {
                "200": {
                    "description": "Counts of people created, changed, and matched but already as given",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {
                            "created": {"type": "integer"},
                            "updated": {"type": "integer"},
                            "unchanged": {"type": "integer"},
                        },
                    }}},
                },
                **problem_responses(400, 401, 403, 422),
            },
        },
    },
}
