"""Question sets over the API: create (with a draft version; also the import
of an exported set), read, list, export, change settings, replace the draft's
questions, publish (with an explicit confirmation when a measure breaks)."""

from flask import g, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cadence.clock import utcnow
from surveys.api.base import ARCHIVED_PARAMETER, api_bp, api_roles, archived_argument, json_body, problem_responses
from surveys.extensions import db
from surveys import audit, lifecycle, payloads
from surveys.models import QuestionSet, QuestionSetVersion
from surveys.permissions import EDITORS, STAFF
from surveys.problems import ApiProblem, validation_problem
from surveys.questions.drafts import create_question_set, publish, replace_draft_questions, update_settings
from surveys.questions.rules import BreakingChangesNotConfirmed, NothingToPublish, QuestionSetInvalid
from surveys.questions.shapes import export_question_set, question_set_to_dict, version_to_dict



@api_bp.post("/question-sets")
@api_roles(*EDITORS)
def create_question_set_endpoint():
    data = json_body()
    try:
        question_set = create_question_set(g.api_user, data)
    except QuestionSetInvalid as invalid:
        db.session.rollback()
        # Answered directly rather than raised so the `errors` map is kept
        # whatever the app-wide HTTPException handler does with it.
        return validation_problem(invalid.errors).get_response()
    db.session.commit()
    response = question_set_to_dict(question_set)
    return response, 201, {"Location": url_for("api.get_question_set", question_set_id=question_set.id)}


@api_bp.get("/question-sets")
@api_roles(*STAFF)
def list_question_sets():
    question_sets = db.session.scalars(
        select(QuestionSet).where(lifecycle.archived_filter(QuestionSet, archived_argument()))
        .options(selectinload(QuestionSet.versions)).order_by(QuestionSet.name, QuestionSet.id)
    )
    return [question_set_to_dict(question_set, include_questions=False) for question_set in question_sets]


@api_bp.get("/question-sets/<int:question_set_id>")
@api_roles(*STAFF)
def get_question_set(question_set_id):
    return question_set_to_dict(_load_with_questions(question_set_id))


def _load_with_questions(question_set_id) -> QuestionSet:
    question_set = db.session.scalar(
        select(QuestionSet)
        .where(QuestionSet.id == question_set_id)
        .options(selectinload(QuestionSet.versions).selectinload(QuestionSetVersion.questions))
    )
    if question_set is None:
        raise ApiProblem(404, "Not found", f"No question set with id {question_set_id}.")
    return question_set


@api_bp.get("/question-sets/<int:question_set_id>/export")
@api_roles(*STAFF)
def export_question_set_endpoint(question_set_id):
    """The set as a create body: POST it to this or another installation."""
    question_set = _load_with_questions(question_set_id)
    audit.record(g.api_user, "question_set.exported", question_set)
    db.session.commit()
    return export_question_set(question_set)


@api_bp.patch("/question-sets/<int:question_set_id>")
@api_roles(*EDITORS)
def update_question_set_settings(question_set_id):
    question_set = _load_with_questions(question_set_id)
    data = json_body()
    try:
        update_settings(question_set, data)
    except QuestionSetInvalid as invalid:
        db.session.rollback()
        return validation_problem(invalid.errors).get_response()
    db.session.commit()
    return question_set_to_dict(question_set)


@api_bp.put("/question-sets/<int:question_set_id>/draft")
@api_roles(*EDITORS)
def replace_draft(question_set_id):
    """Replace the draft's questions (opening draft N+1 after a publish);
    published versions are never touched."""
    question_set = _load_with_questions(question_set_id)
    data = json_body()
    if errors := payloads.shape_errors("DraftInput", data, skip="questions"):  # the questions: below
        raise validation_problem(errors)
    try:
        draft = replace_draft_questions(question_set, data.get("questions"))
    except QuestionSetInvalid as invalid:
        db.session.rollback()
        return validation_problem(invalid.errors).get_response()
    db.session.commit()
    return version_to_dict(draft)


@api_bp.post("/question-sets/<int:question_set_id>/publish")
@api_roles(*EDITORS)
def publish_question_set(question_set_id):
    question_set = _load_with_questions(question_set_id)
    # The body is optional; only {"confirm_breaking": true} means anything.
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        raise ApiProblem(400, "Bad request", "The body, when given, must be a JSON object.")
    if errors := payloads.shape_errors("PublishInput", body):
        raise validation_problem(errors)
    try:
        version = publish(question_set, confirm_breaking=body.get("confirm_breaking", False))
    except NothingToPublish as refusal:
        db.session.rollback()
        return ApiProblem(409, "Nothing to publish", str(refusal)).get_response()
    except BreakingChangesNotConfirmed as refusal:
        db.session.rollback()
        errors = {change.key: " ".join(change.details) for change in refusal.changes}
        return ApiProblem(409, "Confirm the breaking changes", str(refusal), errors).get_response()
    audit.record(g.api_user, "question_set.published", question_set, {"version": version.number})
    db.session.commit()
    return version_to_dict(version, include_questions=False)


@api_bp.post("/question-sets/<int:question_set_id>/archive")
@api_roles(*EDITORS)
def archive_question_set(question_set_id):
    """Off the lists; refused (409) while a cadence that is not archived sends it."""
    question_set = _load_with_questions(question_set_id)
    try:
        lifecycle.archive_question_set(question_set, g.api_user, utcnow())
    except lifecycle.LifecycleRefused as refused:
        cadences = {str(c.id): c.name for c in lifecycle.live_cadences_using(question_set)}
        return ApiProblem(409, "Not archived", str(refused), {"cadences": cadences} if cadences else None).get_response()
    return question_set_to_dict(question_set, include_questions=False)


@api_bp.post("/question-sets/<int:question_set_id>/restore")
@api_roles(*EDITORS)
def restore_question_set(question_set_id):
    question_set = _load_with_questions(question_set_id)
    try:
        lifecycle.restore_question_set(question_set, g.api_user)
    except lifecycle.LifecycleRefused as refused:
        return ApiProblem(409, "Not restored", str(refused)).get_response()
    return question_set_to_dict(question_set, include_questions=False)


# -- OpenAPI -------------------------------------------------------------------------

_ID_PARAMETER = {
    "name": "question_set_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}

payloads.declare("PublishInput", {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "confirm_breaking": {
            "type": "boolean",
            "default": False,
            "description": "Required (true) when the draft changes the measure (type, scale, favourable "
            "threshold or option keys) of a question the last published version had: its trend breaks there.",
        },
    },
}, sentences=True)

_ARCHIVED_AT = {"type": ["string", "null"], "format": "date-time",
                "description": "when it was archived; null for a set on the lists"}

OPENAPI_SCHEMAS = {
    "QuestionSetVersionSummary": {
        "type": "object",
        "required": ["id", "number", "status", "published_at"],
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "integer"},
            "status": {"type": "string", "enum": ["draft", "published"]},
            "published_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "QuestionSetVersion": {
        "allOf": [
            {"$ref": "#/components/schemas/QuestionSetVersionSummary"},
            {
                "type": "object",
                "required": ["questions"],
                "properties": {"questions": {"type": "array", "items": {"$ref": "#/components/schemas/Question"}}},
            },
        ]
    },
    "QuestionSet": {
        "type": "object",
        "required": [
            "id", "name", "description", "confidentiality", "min_group_size",
            "comment_min_group_size", "hold_until_close", "versions",
        ],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "confidentiality": {"type": "string", "enum": ["attributed", "confidential"]},
            "min_group_size": {"type": "integer"},
            "comment_min_group_size": {"type": "integer"},
            "hold_until_close": {"type": "boolean"},
            "archived_at": _ARCHIVED_AT,
            "versions": {"type": "array", "items": {"$ref": "#/components/schemas/QuestionSetVersion"}},
        },
    },
    "QuestionSetSummary": {
        "type": "object",
        "description": "A question set as listed: its versions without their questions.",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "confidentiality": {"type": "string", "enum": ["attributed", "confidential"]},
            "min_group_size": {"type": "integer"},
            "comment_min_group_size": {"type": "integer"},
            "hold_until_close": {"type": "boolean"},
            "archived_at": _ARCHIVED_AT,
            "versions": {"type": "array", "items": {"$ref": "#/components/schemas/QuestionSetVersionSummary"}},
        },
    },
}


def _json(schema_name, description):
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
    }


OPENAPI_PATHS = {
    "/question-sets": {
        "get": {
            "operationId": "listQuestionSets",
            "summary": "List question sets (roles: pm, leader, admin); archived ones only with ?archived=true",
            "tags": ["question sets"],
            "parameters": [ARCHIVED_PARAMETER],
            "responses": {
                "200": {
                    "description": "The question sets (by default those not archived), by name, with their "
                    "versions (without questions)",
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/QuestionSetSummary"}}
                        }
                    },
                },
                **problem_responses(400, 401, 403),
            },
        },
        "post": {
            "operationId": "createQuestionSet",
            "summary": "Create a question set and its draft version 1 (roles: pm, admin)",
            "tags": ["question sets"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QuestionSetInput"}}},
            },
            "responses": {
                "201": _json("QuestionSet", "Created; the set with its draft version"),
                **problem_responses(400, 401, 403, 422),
            },
        },
    },
    "/question-sets/{question_set_id}": {
        "get": {
            "operationId": "getQuestionSet",
            "summary": "A question set, its versions and their questions (roles: pm, leader, admin)",
            "tags": ["question sets"],
            "parameters": [_ID_PARAMETER],
            "responses": {"200": _json("QuestionSet", "The question set"), **problem_responses(401, 403, 404)},
        },
        "patch": {
            "operationId": "updateQuestionSetSettings",
            "summary": "Change the set's name, description or confidentiality settings (roles: pm, admin)",
            "description": "Once any answer exists, confidentiality can only become stricter.",
            "tags": ["question sets"],
            "parameters": [_ID_PARAMETER],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QuestionSetSettings"}}},
            },
            "responses": {"200": _json("QuestionSet", "The updated set"), **problem_responses(400, 401, 403, 404, 422)},
        },
    },
    "/question-sets/{question_set_id}/export": {
        "get": {
            "operationId": "exportQuestionSet",
            "summary": "The set (its draft, else its latest version) as a create body, to import elsewhere "
            "(roles: pm, leader, admin)",
            "tags": ["question sets"],
            "parameters": [_ID_PARAMETER],
            "responses": {
                "200": _json("QuestionSetInput", "POST it to /question-sets to import it"),
                **problem_responses(401, 403, 404),
            },
        },
    },
    "/question-sets/{question_set_id}/draft": {
        "put": {
            "operationId": "replaceQuestionSetDraft",
            "summary": "Replace the draft's questions; after a publish this opens draft N+1 (roles: pm, admin)",
            "description": "Published versions never change. Keys line questions up across versions.",
            "tags": ["question sets"],
            "parameters": [_ID_PARAMETER],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DraftInput"}}},
            },
            "responses": {
                "200": _json("QuestionSetVersion", "The draft with its questions"),
                **problem_responses(400, 401, 403, 404, 422),
            },
        },
    },
    "/question-sets/{question_set_id}/publish": {
        "post": {
            "operationId": "publishQuestionSet",
            "summary": "Publish the draft as the next version; it never changes afterwards (roles: pm, admin)",
            "tags": ["question sets"],
            "description": "When the draft changes the measure of a question of the last published version "
            "(type, scale, favourable threshold or option keys), the answer is 409 with `errors` naming each such "
            "question (key -> what changed) unless the body is {\"confirm_breaking\": true}. A 409 also answers "
            "when there is no draft or it has no questions.",
            "parameters": [_ID_PARAMETER],
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PublishInput"}}},
            },
            "responses": {
                "200": _json("QuestionSetVersionSummary", "The published version"),
                **problem_responses(400, 401, 403, 404, 409, 422),
            },
        },
    },
    "/question-sets/{question_set_id}/archive": {
        "post": {
            "operationId": "archiveQuestionSet",
            "summary": "Archive a question set: off the lists, its versions and rounds kept (roles: pm, admin)",
            "description": "409 while a cadence that is not archived sends it; `errors.cadences` maps "
            "their ids to their names. A 409 also answers when it is already archived.",
            "tags": ["question sets"],
            "parameters": [_ID_PARAMETER],
            "responses": {"200": _json("QuestionSetSummary", "The archived set"),
                          **problem_responses(401, 403, 404, 409)},
        },
    },
    "/question-sets/{question_set_id}/restore": {
        "post": {
            "operationId": "restoreQuestionSet",
            "summary": "Restore an archived question set to the lists (roles: pm, admin)",
            "tags": ["question sets"],
            "parameters": [_ID_PARAMETER],
            "responses": {"200": _json("QuestionSetSummary", "The restored set"),
                          **problem_responses(401, 403, 404, 409)},
        },
    },
}
