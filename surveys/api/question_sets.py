"""Question sets over the API: create (with a draft version), read, list, publish."""

from flask import g, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from surveys.api import api_bp, api_roles, get_or_404, json_body
from surveys.api.openapi import problem_responses
from surveys.extensions import db
from surveys.models import QUESTION_TYPES, QuestionSet, QuestionSetVersion
from surveys.problems import ApiProblem, validation_problem
from surveys.questions import (
    NothingToPublish,
    QuestionSetInvalid,
    create_question_set,
    publish,
    question_set_to_dict,
    version_to_dict,
)

READERS = ("pm", "leader", "admin")
DESIGNERS = ("pm", "admin")


@api_bp.post("/question-sets")
@api_roles(*DESIGNERS)
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
@api_roles(*READERS)
def list_question_sets():
    question_sets = db.session.scalars(
        select(QuestionSet).options(selectinload(QuestionSet.versions)).order_by(QuestionSet.name, QuestionSet.id)
    )
    return [question_set_to_dict(question_set, include_questions=False) for question_set in question_sets]


@api_bp.get("/question-sets/<int:question_set_id>")
@api_roles(*READERS)
def get_question_set(question_set_id):
    question_set = db.session.scalar(
        select(QuestionSet)
        .where(QuestionSet.id == question_set_id)
        .options(selectinload(QuestionSet.versions).selectinload(QuestionSetVersion.questions))
    )
    if question_set is None:
        raise ApiProblem(404, "Not found", f"No question set with id {question_set_id}.")
    return question_set_to_dict(question_set)


@api_bp.post("/question-sets/<int:question_set_id>/publish")
@api_roles(*DESIGNERS)
def publish_question_set(question_set_id):
    question_set = get_or_404(QuestionSet, question_set_id, "question set")
    try:
        version = publish(question_set)
    except NothingToPublish as refusal:
        db.session.rollback()
        return ApiProblem(409, "Nothing to publish", str(refusal)).get_response()
    db.session.commit()
    return version_to_dict(version, include_questions=False)


# -- OpenAPI -------------------------------------------------------------------------

_ID_PARAMETER = {
    "name": "question_set_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}

OPENAPI_SCHEMAS = {
    "QuestionOption": {
        "type": "object",
        "required": ["key", "label"],
        "additionalProperties": False,
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
            "label": {"type": "string", "maxLength": 200},
        },
    },
    "Question": {
        "type": "object",
        "description": "One question. Only the fields its type uses may carry a value: scale uses scale_max, "
        "favorable_min, low_label, high_label; nps low_label, high_label; single_choice options; multi_choice "
        "options, allow_other; number min, max, unit; text max_length; yes_no none. show_if must name an earlier "
        "question and `equals` must be one of its answers (an option key, \"yes\"/\"no\", or a number in range).",
        "required": ["key", "type", "prompt"],
        "additionalProperties": False,
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$", "description": "Stable across versions."},
            "type": {"type": "string", "enum": list(QUESTION_TYPES)},
            "prompt": {"type": "string", "maxLength": 500},
            "help": {"type": ["string", "null"], "maxLength": 1000},
            "required": {"type": "boolean", "default": True},
            "scale_max": {"type": ["integer", "null"], "minimum": 3, "maximum": 10, "default": 5},
            "favorable_min": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "Answers at or above it are favourable; default scale_max - 1 (top two boxes).",
            },
            "low_label": {"type": ["string", "null"], "maxLength": 100},
            "high_label": {"type": ["string", "null"], "maxLength": 100},
            "options": {
                "type": ["array", "null"],
                "minItems": 2,
                "maxItems": 50,
                "items": {"$ref": "#/components/schemas/QuestionOption"},
            },
            "allow_other": {"type": ["boolean", "null"], "default": False},
            "min": {"type": ["number", "null"]},
            "max": {"type": ["number", "null"]},
            "unit": {"type": ["string", "null"], "maxLength": 40},
            "max_length": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000, "default": 2000},
            "show_if": {
                "type": ["object", "null"],
                "required": ["question", "equals"],
                "additionalProperties": False,
                "properties": {
                    "question": {"type": "string"},
                    "equals": {"type": ["string", "number"]},
                },
            },
        },
    },
    "QuestionSetInput": {
        "type": "object",
        "required": ["name", "questions"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "description": {"type": ["string", "null"], "maxLength": 2000},
            "confidentiality": {"type": "string", "enum": ["attributed", "confidential"], "default": "confidential"},
            "min_group_size": {"type": "integer", "minimum": 3, "default": 5},
            "comment_min_group_size": {
                "type": "integer",
                "minimum": 3,
                "description": "At least min_group_size; default the larger of 10 and min_group_size.",
            },
            "hold_until_close": {"type": "boolean", "default": False},
            "questions": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {"$ref": "#/components/schemas/Question"},
                "description": "Keys must be unique within the set.",
            },
        },
    },
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
            "summary": "List question sets (roles: pm, leader, admin)",
            "tags": ["question sets"],
            "responses": {
                "200": {
                    "description": "Every question set, by name, with its versions (without questions)",
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/QuestionSetSummary"}}
                        }
                    },
                },
                **problem_responses(401, 403),
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
    },
    "/question-sets/{question_set_id}/publish": {
        "post": {
            "operationId": "publishQuestionSet",
            "summary": "Publish the draft as the next version; it never changes afterwards (roles: pm, admin)",
            "tags": ["question sets"],
            "parameters": [_ID_PARAMETER],
            "responses": {
                "200": _json("QuestionSetVersionSummary", "The published version"),
                **problem_responses(401, 403, 404, 409),
            },
        },
    },
}
