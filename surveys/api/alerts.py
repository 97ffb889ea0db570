"""Alerts in the API: list (by state), read, change state (docs/api.md)."""

from flask import g, jsonify, request

from surveys.alert_models import ALERT_STATES, Alert
from surveys.alert_routing import (
    WEBHOOK_FORMATS, WebhookInvalid, add_webhook, routing_dict, set_owner, webhook_dict, webhooks_of,
)
from surveys.alerts import AlertStateError, alert_dict, change_state, list_alerts, published
from surveys.api.base import api_bp, api_roles, get_or_404, json_body, problem_responses
from surveys.audit import record
from surveys import payloads
from surveys.extensions import db
from surveys.models import QuestionSet
from surveys.problems import ApiProblem, validation_problem
from surveys.permissions import EDITORS, STAFF



@api_bp.get("/alerts")
@api_roles(*STAFF)
def alerts_index():
    state = request.args.get("state") or None
    try:
        alerts = list_alerts(state=state)
    except AlertStateError as error:
        raise ApiProblem(400, "Bad request", str(error), error.errors) from None
    return jsonify([alert_dict(alert) for alert in alerts])


@api_bp.get("/alerts/<int:alert_id>")
@api_roles(*STAFF)
def alert_show(alert_id):
    return jsonify(alert_dict(_published_or_404(alert_id)))


def _published_or_404(alert_id):
    alert = get_or_404(Alert, alert_id, "alert")
    if not published([alert]):  # its slice is withheld under the set's current rules
        raise ApiProblem(404, "Not found", f"No alert with id {alert_id}.")
    return alert


@api_bp.post("/alerts/<int:alert_id>/state")
@api_roles(*STAFF)
def alert_state(alert_id):
    alert = _published_or_404(alert_id)
    body = json_body(schema="AlertStateChange")
    try:
        change_state(alert, g.api_user, body.get("state"), body.get("note"))
    except AlertStateError as error:
        db.session.rollback()
        raise validation_problem(error.errors) from None
    db.session.commit()
    return jsonify(alert_dict(alert))


@api_bp.get("/question-sets/<int:set_id>/alert-webhooks")
@api_roles(*EDITORS)
def alert_webhooks_index(set_id):
    question_set = get_or_404(QuestionSet, set_id, "question set")
    return jsonify([webhook_dict(w) for w in webhooks_of(question_set)])


@api_bp.post("/question-sets/<int:set_id>/alert-webhooks")
@api_roles(*EDITORS)
def alert_webhooks_create(set_id):
    question_set = get_or_404(QuestionSet, set_id, "question set")
    body = json_body()
    try:
        webhook = add_webhook(question_set, body.get("url"), body.get("format", "json"), body.get("secret"))
    except WebhookInvalid as error:
        db.session.rollback()
        raise validation_problem(error.errors) from None
    record(g.api_user, "alert_webhook.created", webhook, {"question_set_id": set_id, "format": webhook.format})
    db.session.commit()
    return jsonify(webhook_dict(webhook)), 201


@api_bp.get("/question-sets/<int:set_id>/alert-routing")
@api_roles(*EDITORS)
def alert_routing_show(set_id):
    return jsonify(routing_dict(get_or_404(QuestionSet, set_id, "question set")))


@api_bp.post("/question-sets/<int:set_id>/owner")
@api_roles(*EDITORS)
def question_set_owner(set_id):
    question_set = get_or_404(QuestionSet, set_id, "question set")
    body = json_body(schema="QuestionSetOwner")
    try:
        before = set_owner(question_set, body["email"])
    except WebhookInvalid as error:
        db.session.rollback()
        raise validation_problem(error.errors) from None
    record(g.api_user, "question_set.owner_changed", question_set,
           {"from": before, "to": question_set.owner_id})
    db.session.commit()
    return jsonify(routing_dict(question_set))


_ALERT_ID = {"name": "alert_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_NULLABLE_NUMBER = {"type": ["number", "null"]}

OPENAPI_SCHEMAS = {
    "Alert": {
        "type": "object",
        "required": ["id", "question_set_id", "question_key", "metric", "slice", "round_id", "value", "baseline",
                     "limits", "direction", "state"],
        "properties": {
            "id": {"type": "integer"},
            "question_set_id": {"type": "integer"},
            "cadence_id": {"type": "integer"},
            "question_key": {"type": "string"},
            "metric": {"type": "string", "enum": ["favorable_pct", "mean", "nps", "yes_pct", "option_pct"]},
            "option": {"type": ["string", "null"], "description": "the option key, for option_pct"},
            "slice": {"type": "object", "properties": {
                "kind": {"type": "string", "enum": ["overall", "team", "region", "segment"]},
                "name": {"type": ["string", "null"]}}},
            "round_id": {"type": "integer"},
            "value": {"type": "number"},
            "baseline": {"type": "number"},
            "limits": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            "ci95": {"type": ["array", "null"], "items": _NULLABLE_NUMBER},
            "n": {"type": "integer"},
            "direction": {"type": "string", "enum": ["down", "up"]},
            "rule": {"type": "string", "enum": ["shewhart", "ewma"]},
            "severity": {"type": "string", "enum": ["high", "medium", "low"]},
            "state": {"type": "string", "enum": list(ALERT_STATES)},
            "note": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "state_changed_at": {"type": ["string", "null"], "format": "date-time"},
            "history": {"type": "array", "items": {"type": "object"},
                        "description": "the chart: published values, baselines and limits, oldest first"},
        },
    },
}

_WEBHOOK = {"type": "object", "properties": {
    "id": {"type": "integer"}, "question_set_id": {"type": "integer"}, "url": {"type": "string"},
    "format": {"type": "string", "enum": list(WEBHOOK_FORMATS)}, "active": {"type": "boolean"},
    "created_at": {"type": "string", "format": "date-time"}}}
_SET_ID = {"name": "set_id", "in": "path", "required": True, "schema": {"type": "integer"}}

_PERSON = {"type": ["object", "null"], "properties": {
    "id": {"type": "integer"}, "email": {"type": "string"}, "name": {"type": "string"}}}
_ROUTING = {"type": "object", "properties": {
    "question_set_id": {"type": "integer"}, "owner": _PERSON,
    "recipients": {"type": "array", "items": _PERSON}, "webhooks": {"type": "array", "items": _WEBHOOK}}}

OPENAPI_PATHS = {
    "/question-sets/{set_id}/alert-routing": {
        "get": {
            "summary": "Who the set's alerts go to: its owner, the leaders who follow it, its webhooks",
            "description": "Roles pm, admin. Every active leader follows every cadence.",
            "parameters": [_SET_ID],
            "responses": {"200": {"description": "The routing", "content": {"application/json": {"schema": _ROUTING}}},
                          **problem_responses(401, 403, 404)},
        }
    },
    "/question-sets/{set_id}/owner": {
        "post": {
            "summary": "Name the set's owner (a PM), who receives its alerts",
            "description": "Roles pm, admin. Audited.",
            "parameters": [_SET_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("QuestionSetOwner")}}},
            "responses": {"200": {"description": "The routing", "content": {"application/json": {"schema": _ROUTING}}},
                          **problem_responses(400, 401, 403, 404, 422)},
        }
    },
    "/question-sets/{set_id}/alert-webhooks": {
        "get": {
            "summary": "The question set's outgoing alert webhooks (secrets are never returned)",
            "description": "Roles pm, admin.",
            "parameters": [_SET_ID],
            "responses": {"200": {"description": "The webhooks", "content": {"application/json": {"schema": {
                "type": "array", "items": _WEBHOOK}}}}, **problem_responses(401, 403, 404)},
        },
        "post": {
            "summary": "Add an outgoing alert webhook",
            "description": "Roles pm, admin. Each post is signed 'Canary-Signature: t=<unix seconds>,v1=<hex "
            "HMAC-SHA256 of \"<t>.<raw body>\" under the secret>'; format json (Canary's alert objects), slack "
            "(an incoming-webhook message with Block Kit sections) or teams (a message with an Adaptive Card).",
            "parameters": [_SET_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("AlertWebhookInput")}}},
            "responses": {"201": {"description": "The webhook", "content": {"application/json": {"schema": _WEBHOOK}}},
                          **problem_responses(400, 401, 403, 404, 422)},
        },
    },
    "/alerts": {
        "get": {
            "summary": "Alerts, most severe and most recent first",
            "description": "Roles pm, leader, admin. An alert is a published metric of a slice that left its "
            "control limits when its round closed; withheld slices are never watched.",
            "parameters": [{"name": "state", "in": "query", "required": False, "schema": {
                "type": "string", "enum": ["open", *ALERT_STATES]}, "description": "open: new or acknowledged"}],
            "responses": {
                "200": {"description": "The alerts", "content": {"application/json": {"schema": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Alert"}}}}},
                **problem_responses(400, 401, 403),
            },
        }
    },
    "/alerts/{alert_id}": {
        "get": {
            "summary": "One alert, with its chart data",
            "description": "Roles pm, leader, admin.",
            "parameters": [_ALERT_ID],
            "responses": {
                "200": {"description": "The alert", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Alert"}}}},
                **problem_responses(401, 403, 404),
            },
        }
    },
    "/alerts/{alert_id}/state": {
        "post": {
            "summary": "Move an alert on: new -> acknowledged -> explained (with a note) or false_alarm",
            "description": "Roles pm, leader, admin. Recorded in the audit log.",
            "parameters": [_ALERT_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("AlertStateChange")}}},
            "responses": {
                "200": {"description": "The alert", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Alert"}}}},
                **problem_responses(400, 401, 403, 404, 422),
            },
        }
    },
}
