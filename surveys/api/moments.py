"""Moments in the API: create, read, update, pause and resume (docs/api.md).
The deal scorecard of a moment is in surveys/api/deal_scorecards.py."""

from flask import current_app, g, jsonify, request
from sqlalchemy import select

from surveys.api.base import api_bp, api_roles, get_or_404, json_body, problem_responses
from surveys.tabular import csv_text, download
from surveys.audit import record
from surveys.deals.models import Moment
from surveys.deals.moments import MomentInvalid, create_moment, moment_dict, update_moment
from surveys.deals.scorecard import CSV_COLUMNS, DEFAULT_CAP, Options, ScorecardQueryInvalid, csv_rows, deal_scorecard
from surveys import payloads
from surveys.extensions import db
from surveys.problems import ApiProblem, validation_problem
from surveys.permissions import EDITORS, STAFF


@api_bp.post("/moments")
@api_roles(*EDITORS)
def moments_create():
    body = json_body()
    try:
        moment = create_moment(g.api_user, body)
    except MomentInvalid as error:
        db.session.rollback()
        raise validation_problem(error.errors) from None
    record(g.api_user, "moment.created", moment, {"name": moment.name, "on": moment.on})
    db.session.commit()
    return jsonify(moment_dict(moment)), 201


@api_bp.get("/moments")
@api_roles(*STAFF)
def moments_index():
    return jsonify([moment_dict(m) for m in db.session.scalars(select(Moment).order_by(Moment.id))])


@api_bp.get("/moments/<int:moment_id>")
@api_roles(*STAFF)
def moment_show(moment_id):
    return jsonify(moment_dict(get_or_404(Moment, moment_id, "moment")))


@api_bp.patch("/moments/<int:moment_id>")
@api_roles(*EDITORS)
def moment_update(moment_id):
    moment = get_or_404(Moment, moment_id, "moment")
    body = json_body()
    try:
        update_moment(moment, body)
    except MomentInvalid as error:
        db.session.rollback()
        raise validation_problem(error.errors) from None
    record(g.api_user, "moment.updated", moment, {"fields": sorted(body)})
    db.session.commit()
    return jsonify(moment_dict(moment))


def _set_status(moment_id, status):
    moment = get_or_404(Moment, moment_id, "moment")
    moment.status = status
    record(g.api_user, f"moment.{'paused' if status == 'paused' else 'resumed'}", moment)
    db.session.commit()
    return jsonify(moment_dict(moment))


@api_bp.post("/moments/<int:moment_id>/pause")
@api_roles(*EDITORS)
def moment_pause(moment_id):
    return _set_status(moment_id, "paused")


@api_bp.post("/moments/<int:moment_id>/resume")
@api_roles(*EDITORS)
def moment_resume(moment_id):
    return _set_status(moment_id, "active")


@api_bp.get("/moments/<int:moment_id>/scorecard")
@api_roles(*STAFF)
def moment_scorecard(moment_id):
    moment = get_or_404(Moment, moment_id, "moment")
    query = {name: value for name, value in request.args.items() if value != ""}
    if "cap" in query:
        try:
            query["cap"] = float(query["cap"])
        except ValueError:
            pass  # the schema names it: must be a number
    if errors := payloads.shape_errors("DealScorecardQuery", query, root="query"):
        raise ApiProblem(400, "Bad request", "The query has invalid parameters: " + "; ".join(
            f"{name}: {message}" for name, message in errors.items()) + ".", errors)
    try:
        options = Options(period=query.get("period", "quarter"), by=query.get("by"), weight=query.get("weight", "deal"),
                          cap=query.get("cap", current_app.config.get("DEAL_WEIGHT_CAP", DEFAULT_CAP)))
        card = deal_scorecard(moment, options)
    except ScorecardQueryInvalid as error:
        raise ApiProblem(400, "Bad request", str(error)) from None
    if request.args.get("format") == "csv":
        return download(csv_text(CSV_COLUMNS, csv_rows(card)), "text/csv", f"{moment.name}-deal-scorecard.csv")
    return jsonify(card)


_MOMENT = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "question_set_id": {"type": "integer"},
    "on": {"type": "array", "items": {"type": "string", "enum": ["closed_lost", "closed_won", "stage_back", "no_decision"]}},
    "min_amount": {"type": ["number", "null"]}, "segments": {"type": "array", "items": {"type": "string"}},
    "regions": {"type": "array", "items": {"type": "string"}}, "products": {"type": "array", "items": {"type": "string"}},
    "delay_minutes": {"type": "integer"}, "working_hours": {"type": "string"},
    "reminder_days": {"type": "array", "items": {"type": "integer"}}, "expire_days": {"type": "integer"},
    "status": {"type": "string", "enum": ["active", "paused"]}}}
_ID = [{"name": "moment_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_ONE = {"200": {"description": "The moment", "content": {"application/json": {"schema": _MOMENT}}}}

OPENAPI_PATHS = {
    "/moments": {
        "post": {"summary": "Define a deal moment (attributed question sets only)", "description": "Roles pm, admin. Audited.",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("MomentInput")}}},
                 "responses": {"201": {"description": "Created", "content": {"application/json": {"schema": _MOMENT}}},
                               **problem_responses(400, 401, 403, 422)}},
        "get": {"summary": "Every moment", "description": "Roles pm, leader, admin.",
                "responses": {"200": {"description": "Moments", "content": {"application/json": {"schema": {
                    "type": "array", "items": _MOMENT}}}}, **problem_responses(401, 403)}},
    },
    "/moments/{moment_id}": {
        "get": {"summary": "One moment", "description": "Roles pm, leader, admin.", "parameters": _ID,
                "responses": {**_ONE, **problem_responses(401, 403, 404)}},
        "patch": {"summary": "Change a moment's fields", "description": "Roles pm, admin. Audited.", "parameters": _ID,
                  "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("MomentChange")}}},
                  "responses": {**_ONE, **problem_responses(400, 401, 403, 404, 422)}},
    },
    "/moments/{moment_id}/scorecard": {"get": {
        "summary": "The moment's deal scorecard per period of close date (JSON, or CSV with ?format=csv)",
        "description": "Roles pm, leader, admin. ?period=month|quarter, ?by=outcome|competitor|size|segment|region|product, "
        "?weight=revenue adds the revenue-weighted view in the reporting currency (weights capped at ?cap, from 0.01 to 1, "
        "default 0.10 of the group's total; deals whose currency has no rate on their close date are left out and listed; "
        "Kish effective n for intervals; deal counts always shown).",
        "parameters": _ID + [{"name": name, "in": "query", "required": False,
                              "schema": payloads.SCHEMAS["DealScorecardQuery"]["properties"][name]}
                             for name in ("period", "by", "weight", "cap", "format")],
        "responses": {"200": {"description": "The scorecard", "content": {
            "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}},
            **problem_responses(400, 401, 403, 404)}}},
    "/moments/{moment_id}/pause": {"post": {"summary": "Stop inviting (invitations already made still go out)",
                                            "description": "Roles pm, admin.", "parameters": _ID,
                                            "responses": {**_ONE, **problem_responses(401, 403, 404)}}},
    "/moments/{moment_id}/resume": {"post": {"summary": "Invite again on new events", "description": "Roles pm, admin.",
                                             "parameters": _ID, "responses": {**_ONE, **problem_responses(401, 403, 404)}}},
}
