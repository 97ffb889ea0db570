"""Product areas, needs and evidence in the API (docs/api.md, SPEC §10)."""

from flask import g, jsonify, request

from cadence.clock import utcnow
from surveys.api.base import api_bp, api_roles, get_or_404, json_body, problem_responses
from surveys import payloads
from surveys.extensions import db
from surveys.problems import ApiProblem, validation_problem
from surveys.tabular import csv_text, download
from surveys.limits import MAX_ID, record_id
from surveys.triage.areas import areas_tree
from surveys.triage.inbox import item_by_token
from surveys.triage.inputs import TriageError
from surveys.triage.needs import link_item, link_option_answer, need_evidence, ranked_needs
from surveys.triage.models import NEED_STATUSES, Area, Need
from surveys.permissions import EDITORS, STAFF

EVIDENCE_COLUMNS = ("id", "kind", "text", "importance", "amount", "confidential", "question_set", "period_key",
                    "writer", "heard_at")
CSV_COLUMNS = ("id", "name", "area", "status", "mentions", "this_period", "last_period", "trend", "importance",
               "revenue", "confidential", "public_note")


def _csv(header, rows, filename):
    """Through surveys.tabular, like every export: a comment a spreadsheet would run as a formula is neutralised."""
    return download(csv_text(header, rows), "text/csv", filename)


@api_bp.get("/areas")
@api_roles(*STAFF)
def list_areas():
    areas = areas_tree()
    if request.args.get("format") == "csv":
        rows = [area | {"owners": "; ".join(owner["email"] for owner in area["owners"])} for area in areas]
        return _csv(("id", "name", "path", "parent_id", "owners"), rows, "areas.csv")
    return jsonify(areas)


def _need_filters():
    area = request.args.get("area")
    status = request.args.get("status")
    errors = {}
    area_id = None
    if area:
        area_id = record_id(area)
        if area_id is None or db.session.get(Area, area_id) is None:
            errors["area"] = "No such area."
    if status and status not in NEED_STATUSES:
        errors["status"] = f"Status is one of: {', '.join(NEED_STATUSES)}."
    if errors:
        raise ApiProblem(400, "Bad request", "; ".join(errors.values()), errors)
    return area_id, status or None


def _need_json(row):
    return {key: row[key] for key in CSV_COLUMNS} | {"area_id": row["area_id"], "heard_back": row["heard_back"]}


@api_bp.get("/needs")
@api_roles(*STAFF)
def list_needs():
    area_id, status = _need_filters()
    rows = ranked_needs(utcnow(), area_id, status)
    if request.args.get("format") == "csv":
        return _csv(CSV_COLUMNS, rows, "needs.csv")
    return jsonify([_need_json(row) for row in rows])


@api_bp.get("/needs/<int:need_id>")
@api_roles(*STAFF)
def get_need(need_id):
    need = get_or_404(Need, need_id, "need")
    row = next(r for r in ranked_needs(utcnow()) if r["id"] == need.id)
    evidence = [{k: (v.isoformat().replace("+00:00", "Z") if k == "heard_at" else v) for k, v in e.items()}
                for e in need_evidence(need)]
    if request.args.get("format") == "csv":
        return _csv(EVIDENCE_COLUMNS, evidence, f"need-{need.id}-evidence.csv")
    return jsonify(_need_json(row) | {"evidence": evidence})


@api_bp.post("/needs/<int:need_id>/evidence")
@api_roles(*EDITORS)
def add_evidence(need_id):
    need = get_or_404(Need, need_id, "need")
    body = json_body(schema="EvidenceInput")
    comment_id, answer_id = body.get("comment_id"), body.get("answer_id")
    if (comment_id is None) == (answer_id is None):
        raise validation_problem({"comment_id": "Send exactly one of comment_id (from the inbox) or answer_id."})
    try:
        if comment_id is not None:
            item = item_by_token(comment_id)
            if item is None:
                raise TriageError({"comment_id": "No comment with that id is in the inbox."})
            evidence = link_item(g.api_user, item, need, body.get("importance"), utcnow())
        else:
            evidence = link_option_answer(g.api_user, answer_id, need, body.get("importance"), utcnow())
    except TriageError as error:
        db.session.rollback()
        raise validation_problem(error.errors) from None
    db.session.commit()
    return jsonify({"id": evidence.id, "need_id": need.id, "kind": evidence.kind, "importance": evidence.importance,
                    "text": evidence.text, "confidential": evidence.confidential}), 201


_NEED = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "area": {"type": ["string", "null"]},
    "area_id": {"type": ["integer", "null"]}, "status": {"type": "string", "enum": list(NEED_STATUSES)},
    "mentions": {"type": "integer"}, "this_period": {"type": "integer"}, "last_period": {"type": "integer"},
    "trend": {"type": "integer"}, "importance": {"type": "integer", "description": "sum of evidence importance"},
    "revenue": {"type": ["number", "null"], "description": "deal amounts at stake (null until deals exist)"},
    "confidential": {"type": "integer", "description": "pieces of evidence from confidential sets"},
    "public_note": {"type": "string"}, "heard_back": {"type": ["object", "null"]}}}
payloads.declare("EvidenceInput", {
    "type": "object", "required": ["importance"], "additionalProperties": False,
    "description": "Exactly one of comment_id and answer_id.",
    "properties": {"comment_id": {"type": "string"}, "answer_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                   "importance": {"type": "integer", "minimum": 1, "maximum": 3,
                                  "description": "1 (nice to have), 2 (important) or 3 (deal-breaker)"}},
}, sentences=True)
_NEED_ID = {"name": "need_id", "in": "path", "required": True, "schema": {"type": "integer"}}

OPENAPI_SCHEMAS = {"Need": _NEED}

OPENAPI_PATHS = {
    "/areas": {"get": {
        "summary": "Product areas: the tree (each with its path and parent) and their owning PMs",
        "description": "Roles pm, leader, admin. format=csv for a spreadsheet.",
        "parameters": [{"name": "format", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": ["json", "csv"]}}],
        "responses": {"200": {"description": "The areas", "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "integer"}, "name": {"type": "string"}, "path": {"type": "string"},
                "parent_id": {"type": ["integer", "null"]},
                "owners": {"type": "array", "items": {"type": "object"}}}}}},
            "text/csv": {"schema": {"type": "string"}}}},
            **problem_responses(401, 403)}}},
    "/needs": {"get": {
        "summary": "Needs, ranked: mentions this period, importance, revenue at stake, all mentions",
        "description": "Roles pm, leader, admin. format=csv for a spreadsheet.",
        "parameters": [
            {"name": "area", "in": "query", "required": False, "schema": {"type": "integer"},
             "description": "an area id: the area and its sub-areas"},
            {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": list(NEED_STATUSES)}},
            {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "csv"]}}],
        "responses": {"200": {"description": "The needs", "content": {
            "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Need"}}},
            "text/csv": {"schema": {"type": "string"}}}},
            **problem_responses(400, 401, 403)}}},
    "/needs/{need_id}": {"get": {
        "summary": "One need with its evidence, oldest first (no writer for confidential evidence)",
        "description": "Roles pm, leader, admin. format=csv: the evidence as a spreadsheet.",
        "parameters": [_NEED_ID, {"name": "format", "in": "query", "required": False,
                                  "schema": {"type": "string", "enum": ["json", "csv"]}}],
        "responses": {"200": {"description": "The need", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Need"}},
            "text/csv": {"schema": {"type": "string"}}}}, **problem_responses(401, 403, 404)}}},
    "/needs/{need_id}/evidence": {"post": {
        "summary": "Link a comment (comment_id, as the inbox shows it) or a chosen option (answer_id) to a need",
        "description": "Roles pm, admin. Audited. answer_id: attributed sets only (confidential choices are "
        "counted through area mappings). A comment already linked to the need is refused (422).",
        "parameters": [_NEED_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("EvidenceInput")}}},
        "responses": {"201": {"description": "The evidence", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"id": {"type": "integer"}, "need_id": {"type": "integer"},
                                             "kind": {"type": "string"}, "importance": {"type": "integer"},
                                             "text": {"type": "string"}, "confidential": {"type": "boolean"}}}}}},
            **problem_responses(400, 401, 403, 404, 422)}}},
}
