"""Cadences in the API: create, read, edit, pause, resume, archive, restore, preview, rounds."""

from datetime import date

from flask import g, jsonify, request
from sqlalchemy import select

from cadence import cadences as service
from cadence.clock import utcnow
from cadence.models import Cadence, Round
from cadence.planner import NudgeRefused
from surveys.api.base import (
    ARCHIVED_PARAMETER,
    api_bp,
    api_roles,
    archived_argument,
    get_or_404,
    json_body,
    problem_responses,
)
from surveys.extensions import db
from surveys import lifecycle, limits, payloads
from surveys.problems import ApiProblem, validation_problem
from surveys.permissions import EDITORS, STAFF



@api_bp.post("/cadences")
@api_roles(*EDITORS)
def create_cadence():
    try:
        cadence = service.create_cadence(json_body(), g.api_user, utcnow())
    except service.CadenceInvalid as invalid:
        db.session.rollback()
        raise validation_problem(invalid.errors) from None
    return jsonify(service.cadence_to_dict(cadence)), 201


@api_bp.get("/cadences")
@api_roles(*STAFF)
def list_cadences():
    cadences = db.session.scalars(
        select(Cadence).where(lifecycle.archived_filter(Cadence, archived_argument())).order_by(Cadence.id)
    ).all()
    return jsonify([service.cadence_to_dict(c) for c in cadences])


@api_bp.get("/cadences/<int:cadence_id>")
@api_roles(*STAFF)
def get_cadence(cadence_id):
    return jsonify(service.cadence_to_dict(get_or_404(Cadence, cadence_id, "cadence")))


@api_bp.patch("/cadences/<int:cadence_id>")
@api_roles(*EDITORS)
def update_cadence(cadence_id):
    """Change some of a cadence's fields; rounds already recorded keep theirs."""
    cadence = get_or_404(Cadence, cadence_id, "cadence")
    try:
        service.update_cadence(cadence, json_body(), g.api_user, utcnow())
    except service.CadenceInvalid as invalid:
        db.session.rollback()
        raise validation_problem(invalid.errors) from None
    return jsonify(service.cadence_to_dict(cadence))


@api_bp.get("/cadences/<int:cadence_id>/preview")
@api_roles(*STAFF)
def preview_cadence(cadence_id):
    cadence = get_or_404(Cadence, cadence_id, "cadence")
    count = request.args.get("count", "5")
    if limits.whole_number(count, minimum=1, maximum=100) is None:
        raise ApiProblem(400, "Bad request", "count must be a whole number from 1 to 100", {"count": "from 1 to 100"})
    return jsonify({"occurrences": service.preview(cadence, utcnow(), int(count))})


@api_bp.post("/cadences/<int:cadence_id>/pause")
@api_roles(*EDITORS)
def pause_cadence(cadence_id):
    cadence = service.pause(get_or_404(Cadence, cadence_id, "cadence"), g.api_user)
    return jsonify(service.cadence_to_dict(cadence))


@api_bp.post("/cadences/<int:cadence_id>/resume")
@api_roles(*EDITORS)
def resume_cadence(cadence_id):
    cadence = service.resume(get_or_404(Cadence, cadence_id, "cadence"), g.api_user)
    return jsonify(service.cadence_to_dict(cadence))


@api_bp.post("/cadences/<int:cadence_id>/archive")
@api_roles(*EDITORS)
def archive_cadence(cadence_id):
    """Off the lists and no new rounds; an open round runs to its close."""
    cadence = get_or_404(Cadence, cadence_id, "cadence")
    try:
        lifecycle.archive_cadence(cadence, g.api_user, utcnow())
    except lifecycle.LifecycleRefused as refused:
        raise ApiProblem(409, "Not archived", str(refused)) from None
    return jsonify(service.cadence_to_dict(cadence))


@api_bp.post("/cadences/<int:cadence_id>/restore")
@api_roles(*EDITORS)
def restore_cadence(cadence_id):
    """Back on the lists; periods missed while archived are not sent."""
    cadence = get_or_404(Cadence, cadence_id, "cadence")
    try:
        lifecycle.restore_cadence(cadence, g.api_user)
    except lifecycle.LifecycleRefused as refused:
        raise ApiProblem(409, "Not restored", str(refused)) from None
    return jsonify(service.cadence_to_dict(cadence))


@api_bp.get("/cadences/<int:cadence_id>/rounds")
@api_roles(*STAFF)
def cadence_rounds(cadence_id):
    cadence = get_or_404(Cadence, cadence_id, "cadence")
    return jsonify(service.round_summaries(cadence))


@api_bp.put("/cadences/<int:cadence_id>/occurrences/<period_key>")
@api_roles(*EDITORS)
def change_occurrence(cadence_id, period_key):
    """Skip one upcoming round or move it: {"action": "skip"} or
    {"action": "move", "opens_on": "YYYY-MM-DD"}."""
    cadence = get_or_404(Cadence, cadence_id, "cadence")
    body = json_body(schema="OccurrenceChange")
    opens_on = date.fromisoformat(body["opens_on"]) if "opens_on" in body else None
    try:
        service.change_occurrence(cadence, period_key, body.get("action"), opens_on, g.api_user, utcnow())
    except service.CadenceInvalid as invalid:
        db.session.rollback()
        raise validation_problem(invalid.errors) from None
    return jsonify({"occurrences": service.preview(cadence, utcnow(), 5)})


@api_bp.delete("/cadences/<int:cadence_id>/occurrences/<period_key>")
@api_roles(*EDITORS)
def restore_occurrence(cadence_id, period_key):
    cadence = get_or_404(Cadence, cadence_id, "cadence")
    service.restore_occurrence(cadence, period_key, g.api_user)
    return jsonify({"occurrences": service.preview(cadence, utcnow(), 5)})


@api_bp.post("/rounds/<int:round_id>/nudge")
@api_roles(*EDITORS)
def nudge_round(round_id):
    """Remind the non-responders of an open round now (at most once a day)."""
    round_ = get_or_404(Round, round_id, "round")
    try:
        count = service.nudge(round_, g.api_user, utcnow())
    except NudgeRefused as refused:
        raise ApiProblem(409, "Nudge refused", str(refused)) from None
    return jsonify({"nudged": count})


payloads.declare("OccurrenceChange", {
    "type": "object", "required": ["action"], "additionalProperties": False,
    "properties": {"action": {"type": "string", "enum": ["skip", "move"]}, "opens_on": {"type": "string", "format": "date"}},
})
_AUDIENCE = {
    "type": "object",
    "properties": {k: {"type": "array", "items": {"type": "string"}} for k in ("teams", "regions", "segments")},
}
OPENAPI_SCHEMAS = {
    "Cadence": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "question_set_id": {"type": "integer"},
            "rrule": {"type": "string"},
            "send_time": {"type": "string"},
            "timezone": {"type": "string"},
            "open_days": {"type": "integer"},
            "reminder_days": {"type": "array", "items": {"type": "integer"}},
            "grace_days": {"type": "integer"},
            "add_late_joiners": {"type": "boolean"},
            "audience": _AUDIENCE,
            "starts_on": {"type": "string", "format": "date"},
            "ends_on": {"type": ["string", "null"], "format": "date"},
            "status": {"type": "string", "enum": ["active", "paused"]},
            "next_open_at": {"type": ["string", "null"], "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "archived_at": {"type": ["string", "null"], "format": "date-time",
                            "description": "when it was archived; null for a cadence on the lists"},
        },
    },
    "RoundSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "period_key": {"type": "string"},
            "opens_at": {"type": "string", "format": "date-time"},
            "closes_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["open", "closed", "skipped"]},
            "late": {"type": "boolean"},
            "note": {"type": ["string", "null"]},
            "invited": {"type": ["integer", "null"],
                        "description": "null when withheld (confidential set, fewer than its minimum group size)"},
            "responded": {"type": ["integer", "null"],
                          "description": "null while a set that holds results until close has the round open, "
                                         "or when withheld"},
            "rate": {"type": ["number", "null"]},
            "withheld": {"type": "boolean"},
            "held": {"type": "boolean"},
        },
    },
}

_ID = [{"name": "cadence_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_CADENCE = {"application/json": {"schema": {"$ref": "#/components/schemas/Cadence"}}}
OPENAPI_PATHS = {
    "/cadences": {
        "post": {
            "summary": "Create a cadence",
            "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("CadenceInput")}}},
            "responses": {"201": {"description": "Created", "content": _CADENCE}, **problem_responses(400, 401, 403, 422)},
        },
        "get": {
            "summary": "List cadences (archived ones only with ?archived=true)",
            "parameters": [ARCHIVED_PARAMETER],
            "responses": {
                "200": {"description": "Cadences", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Cadence"}}}}},
                **problem_responses(400, 401, 403),
            },
        },
    },
    "/cadences/{cadence_id}": {
        "get": {"summary": "Read a cadence", "parameters": _ID, "responses": {"200": {"description": "The cadence", "content": _CADENCE}, **problem_responses(401, 403, 404)}},
        "patch": {
            "summary": "Change some of a cadence's fields (the others keep their values); rounds already "
                       "recorded keep the settings they were opened with",
            "parameters": _ID,
            "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("CadenceChanges")}}},
            "responses": {"200": {"description": "The cadence", "content": _CADENCE},
                          **problem_responses(400, 401, 403, 404, 422)},
        },
    },
    "/cadences/{cadence_id}/preview": {
        "get": {
            "summary": "Next occurrences",
            "parameters": _ID + [{"name": "count", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 5}}],
            "responses": {
                "200": {
                    "description": "Occurrences",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {"occurrences": {"type": "array", "items": {
                        "type": "object",
                        "properties": {
                            "period_key": {"type": "string"},
                            "opens_at": {"type": "string", "format": "date-time"},
                            "closes_at": {"type": "string", "format": "date-time"},
                            "reminders_at": {"type": "array", "items": {"type": "string", "format": "date-time"}},
                            "skipped": {"type": "boolean"},
                            "moved_from": {"type": ["string", "null"], "format": "date"},
                        },
                    }}}}}},
                },
                **problem_responses(400, 401, 403, 404),
            },
        },
    },
    "/cadences/{cadence_id}/pause": {
        "post": {"summary": "Pause a cadence", "parameters": _ID, "responses": {"200": {"description": "The cadence", "content": _CADENCE}, **problem_responses(401, 403, 404)}},
    },
    "/cadences/{cadence_id}/resume": {
        "post": {"summary": "Resume a cadence", "parameters": _ID, "responses": {"200": {"description": "The cadence", "content": _CADENCE}, **problem_responses(401, 403, 404)}},
    },
    "/cadences/{cadence_id}/archive": {
        "post": {"summary": "Archive a cadence: off the lists, no new rounds (an open round runs to its close)",
                 "parameters": _ID,
                 "responses": {"200": {"description": "The cadence", "content": _CADENCE},
                               **problem_responses(401, 403, 404, 409)}},
    },
    "/cadences/{cadence_id}/restore": {
        "post": {"summary": "Restore an archived cadence (periods missed while archived are not sent); "
                            "409 while its question set is archived",
                 "parameters": _ID,
                 "responses": {"200": {"description": "The cadence", "content": _CADENCE},
                               **problem_responses(401, 403, 404, 409)}},
    },
    "/cadences/{cadence_id}/rounds": {
        "get": {
            "summary": "Rounds of a cadence, newest first",
            "parameters": _ID,
            "responses": {
                "200": {"description": "Rounds", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/RoundSummary"}}}}},
                **problem_responses(401, 403, 404),
            },
        },
    },
    "/cadences/{cadence_id}/occurrences/{period_key}": {
        "put": {
            "summary": "Skip or move one upcoming round",
            "parameters": _ID + [{"name": "period_key", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("OccurrenceChange")}}},
            "responses": {"200": {"description": "The next occurrences"}, **problem_responses(400, 401, 403, 404, 422)},
        },
        "delete": {
            "summary": "Undo a skip or move",
            "parameters": _ID + [{"name": "period_key", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The next occurrences"}, **problem_responses(401, 403, 404)},
        },
    },
    "/rounds/{round_id}/nudge": {
        "post": {
            "summary": "Remind the non-responders of an open round now (at most once in 24 hours)",
            "parameters": [{"name": "round_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {
                "200": {"description": "How many were nudged", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"nudged": {"type": ["integer", "null"], "description": "null while the set holds results until close"}}}}}},
                **problem_responses(401, 403, 404, 409),
            },
        },
    },
}
