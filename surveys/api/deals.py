"""Deals in the API: the signed ways in (generic webhook, Salesforce outbound
messages, HubSpot webhooks), and deals and their events to read and replay
(docs/api.md)."""

from flask import Response, current_app, g, jsonify, request
from sqlalchemy import select

from cadence.clock import utcnow
from surveys import payloads
from surveys.api.base import api_bp, api_roles, get_or_404, json_body, problem_responses
from surveys.deals import currency, ingest
from surveys.deals.models import EVENT_STATUSES, OUTCOMES, DealEvent, ExchangeRate
from surveys.deals.processing import event_dict, raw_text, replay, store_events
from surveys.deals.queries import deal_dict, list_deals, list_events
from surveys.extensions import db
from surveys.problems import ApiProblem, validation_problem
from surveys.permissions import STAFF


@api_bp.post("/deal-events")
def deal_events_generic():
    body = request.get_data(cache=True)
    try:
        ingest.verify_canary_signature(request.headers.get("Canary-Signature"), body,
                                       current_app.config.get("DEAL_WEBHOOK_SECRET"), utcnow())
    except ingest.SignatureInvalid as refused:
        raise ApiProblem(401, "Unauthorized", str(refused)) from None
    try:
        event = ingest.parse_generic(body)
    except ingest.NotAnEvent as error:
        raise ApiProblem(422, "Not a deal event", str(error), error.errors) from None
    [stored] = store_events("api", [event], raw_text(body), utcnow())
    status = "accepted" if stored.created else "duplicate"
    return jsonify({"event_id": stored.event_id, "id": stored.id, "status": status}), (202 if stored.created else 200)


@api_bp.post("/deal-events/salesforce")
def deal_events_salesforce():
    """Salesforce retries until it gets an Ack, so the Ack comes only after
    every notification of the message is stored."""
    body = request.get_data(cache=True)
    allowed = [org.strip() for org in (current_app.config.get("SALESFORCE_ORG_IDS") or "").split(",")]
    try:
        _org, events = ingest.parse_salesforce(body, allowed, current_app.config.get("SALESFORCE_FIELD_MAP"))
    except ingest.SignatureInvalid as refused:
        return _soap_fault(401, str(refused))
    except ingest.NotAnEvent as error:
        return _soap_fault(422, str(error))
    store_events("salesforce", events, raw_text(body), utcnow())
    return Response(ingest.SALESFORCE_ACK, status=200, mimetype="text/xml")


def _soap_fault(status, message):
    from xml.sax.saxutils import escape

    xml = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{ingest.SOAP_ENV}">'
           f"<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode>"
           f"<faultstring>{escape(message)}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>")
    return Response(xml, status=status, mimetype="text/xml")


@api_bp.post("/deal-events/hubspot")
def deal_events_hubspot():
    body = request.get_data(cache=True)
    base = current_app.config.get("BASE_URL", "").rstrip("/")
    uri = base + request.full_path.rstrip("?")
    try:
        ingest.verify_hubspot(request.headers.get("X-HubSpot-Signature-v3"),
                              request.headers.get("X-HubSpot-Request-Timestamp"), request.method, uri, body,
                              current_app.config.get("HUBSPOT_CLIENT_SECRET"), utcnow())
    except ingest.SignatureInvalid as refused:
        raise ApiProblem(401, "Unauthorized", str(refused)) from None
    try:
        events = ingest.parse_hubspot(body, current_app.config.get("HUBSPOT_PROPERTY_MAP"))
    except ingest.NotAnEvent as error:
        raise ApiProblem(422, "Not a deal event", str(error), error.errors) from None
    stored = store_events("hubspot", events, raw_text(body), utcnow())
    return jsonify({"events": [{"event_id": s.event_id, "id": s.id,
                                "status": "accepted" if s.created else "duplicate"} for s in stored]}), 202


@api_bp.get("/deals")
@api_roles(*STAFF)
def deals_index():
    outcome = request.args.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise ApiProblem(400, "Bad request", f"outcome must be one of {', '.join(OUTCOMES)}.")
    page = request.args.get("page", "1")
    if not page.isdigit() or int(page) < 1:
        raise ApiProblem(400, "Bad request", "page must be a positive whole number.")
    deals = list_deals(outcome=outcome, owner=request.args.get("owner") or None, page=int(page))
    return jsonify([deal_dict(deal) for deal in deals])


@api_bp.get("/deals/<int:deal_id>")
@api_roles(*STAFF)
def deal_show(deal_id):
    from surveys.deals.models import Deal

    deal = get_or_404(Deal, deal_id, "deal")
    body = deal_dict(deal)
    body["events"] = [event_dict(e) for e in db.session.scalars(
        select(DealEvent).where(DealEvent.deal_id == deal.id).order_by(DealEvent.id))]
    return jsonify(body)


@api_bp.get("/deal-events")
@api_roles(*STAFF)
def deal_events_index():
    status = request.args.get("status") or None
    if status is not None and status not in EVENT_STATUSES:
        raise ApiProblem(400, "Bad request", f"status must be one of {', '.join(EVENT_STATUSES)}.")
    return jsonify([event_dict(e) for e in list_events(status=status)])


@api_bp.get("/deal-events/<int:event_id>")
@api_roles(*STAFF)
def deal_event_show(event_id):
    return jsonify(event_dict(get_or_404(DealEvent, event_id, "deal event")))


@api_bp.post("/deal-events/<int:event_id>/replay")
@api_roles("admin")
def deal_event_replay(event_id):
    event = get_or_404(DealEvent, event_id, "deal event")
    if event.status == "processing":
        raise ApiProblem(409, "Conflict", "The event is being processed; replay it once that is done.")
    replay(event, g.api_user, utcnow())
    return jsonify(event_dict(event)), 202


@api_bp.get("/exchange-rates")
@api_roles(*STAFF)
def exchange_rates_index():
    return jsonify({"reporting_currency": currency.reporting_currency(),
                    "rates": [currency.rate_dict(rate) for rate in currency.list_rates()],
                    "deals_without_rate": [{"currency": code, "deals": count} for code, count in currency.deals_without_rate()]})


@api_bp.post("/exchange-rates")
@api_roles("admin")
def exchange_rate_set():
    data = json_body(schema="ExchangeRateInput")
    try:
        rate, change = currency.set_rate(g.api_user, data)
    except currency.RateInvalid as invalid:
        raise validation_problem(invalid.errors) from None
    return jsonify(currency.rate_dict(rate)), (201 if change == "added" else 200)


@api_bp.delete("/exchange-rates/<int:rate_id>")
@api_roles("admin")
def exchange_rate_delete(rate_id):
    currency.delete_rate(g.api_user, get_or_404(ExchangeRate, rate_id, "exchange rate"))
    return "", 204


_ID = {"type": "integer"}
_RATE = {"type": "object", "properties": {
    "id": _ID, "currency": {"type": "string"}, "rate": {"type": "number"}, "reporting_currency": {"type": "string"},
    "effective_from": {"type": "string", "format": "date"}}}
_EVENT = {"type": "object", "properties": {
    "id": _ID, "source": {"type": "string"}, "event_id": {"type": "string"}, "type": {"type": "string"},
    "status": {"type": "string", "enum": list(EVENT_STATUSES)}, "error": {"type": ["string", "null"]},
    "deal_id": {"type": ["integer", "null"]}, "payload": {"type": "object"}}}
_DEAL = {"type": "object", "properties": {
    "id": _ID, "source": {"type": "string"}, "external_id": {"type": "string"}, "owner_email": {"type": "string"},
    "account": {"type": "string"}, "amount": {"type": "number"}, "currency": {"type": "string"},
    "amount_reporting": {"type": ["number", "null"],
                         "description": "The amount in reporting_currency at the rate of the close date; null without a rate"},
    "reporting_currency": {"type": "string"},
    "stage": {"type": "string"}, "outcome": {"type": "string", "enum": list(OUTCOMES)},
    "close_date": {"type": ["string", "null"]}, "competitor": {"type": ["string", "null"]},
    "segment": {"type": ["string", "null"]}, "region": {"type": ["string", "null"]},
    "products": {"type": "array", "items": {"type": "string"}}, "invitations": {"type": "array"}}}
_SIGNED = {"security": []}


def _param(name, kind="integer", where="path"):
    return {"name": name, "in": where, "required": where == "path", "schema": {"type": kind}}


OPENAPI_PATHS = {
    "/deal-events": {
        "post": {
            **_SIGNED,
            "summary": "A deal event from a CRM, a workflow tool or a script (signed, no bearer token)",
            "description": "Header Canary-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' "
            "under DEAL_WEBHOOK_SECRET>. 202 once stored; 200 'duplicate' for an event id already stored.",
            "parameters": [_param("Canary-Signature", "string", "header")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["id", "type", "deal"], "properties": {
                    "id": {"type": "string"}, "type": {"type": "string", "enum": list(ingest.EVENT_TYPES)},
                    "occurred_at": {"type": "string"}, "deal": {"type": "object"}}}}}},
            "responses": {"202": {"description": "Stored", "content": {"application/json": {"schema": {"type": "object"}}}},
                          "200": {"description": "Already stored", "content": {"application/json": {"schema": {"type": "object"}}}},
                          **problem_responses(400, 401, 422)},
        },
        "get": {
            "summary": "Deal events as received, newest first", "description": "Roles pm, leader, admin.",
            "parameters": [_param("status", "string", "query")],
            "responses": {"200": {"description": "Events", "content": {"application/json": {"schema": {
                "type": "array", "items": _EVENT}}}}, **problem_responses(400, 401, 403)},
        },
    },
    "/deal-events/salesforce": {
        "post": {
            **_SIGNED,
            "summary": "Salesforce Outbound Message (SOAP notifications envelope)",
            "description": "The organisation id must be in SALESFORCE_ORG_IDS. Answers the SOAP Ack once every "
            "notification is stored.",
            "requestBody": {"required": True, "content": {"text/xml": {"schema": {"type": "string"}}}},
            "responses": {"200": {"description": "Ack", "content": {"text/xml": {"schema": {"type": "string"}}}},
                          "401": {"description": "Organisation not allowed"}, "422": {"description": "Not a notifications envelope"}},
        }
    },
    "/deal-events/hubspot": {
        "post": {
            **_SIGNED,
            "summary": "HubSpot webhook batch, signed with X-HubSpot-Signature-v3",
            "parameters": [_param("X-HubSpot-Signature-v3", "string", "header"),
                           _param("X-HubSpot-Request-Timestamp", "string", "header")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}},
            "responses": {"202": {"description": "Stored", "content": {"application/json": {"schema": {"type": "object"}}}},
                          **problem_responses(400, 401, 422)},
        }
    },
    "/deal-events/{event_id}": {
        "get": {"summary": "One deal event", "description": "Roles pm, leader, admin.",
                "parameters": [_param("event_id")],
                "responses": {"200": {"description": "The event", "content": {"application/json": {"schema": _EVENT}}},
                              **problem_responses(401, 403, 404)}},
    },
    "/deal-events/{event_id}/replay": {
        "post": {"summary": "Process a stored event again", "description": "Role admin. Audited.",
                 "parameters": [_param("event_id")],
                 "responses": {"202": {"description": "Queued", "content": {"application/json": {"schema": _EVENT}}},
                               **problem_responses(401, 403, 404, 409)}},
    },
    "/deals": {
        "get": {"summary": "Deals with their latest state and invitations", "description": "Roles pm, leader, admin.",
                "parameters": [_param("outcome", "string", "query"), _param("owner", "string", "query"),
                               _param("page", "integer", "query")],
                "responses": {"200": {"description": "Deals", "content": {"application/json": {"schema": {
                    "type": "array", "items": _DEAL}}}}, **problem_responses(400, 401, 403)}},
    },
    "/exchange-rates": {
        "get": {"summary": "Exchange rates to the reporting currency, and the deals no rate converts",
                "description": "Roles pm, leader, admin.",
                "responses": {"200": {"description": "Rates", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"reporting_currency": {"type": "string"},
                                                     "rates": {"type": "array", "items": _RATE},
                                                     "deals_without_rate": {"type": "array"}}}}}},
                              **problem_responses(401, 403)}},
        "post": {"summary": "Add a rate, or change the rate of a currency and date",
                 "description": "Role admin. Audited. The currency's deals are converted again by a worker.",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": payloads.ref("ExchangeRateInput")}}},
                 "responses": {"201": {"description": "Added", "content": {"application/json": {"schema": _RATE}}},
                               "200": {"description": "Changed", "content": {"application/json": {"schema": _RATE}}},
                               **problem_responses(400, 401, 403, 422)}},
    },
    "/exchange-rates/{rate_id}": {
        "delete": {"summary": "Delete a rate", "description": "Role admin. Audited. Its currency's deals are converted again.",
                   "parameters": [_param("rate_id")],
                   "responses": {"204": {"description": "Deleted"}, **problem_responses(401, 403, 404)}},
    },
    "/deals/{deal_id}": {
        "get": {"summary": "One deal and its events", "description": "Roles pm, leader, admin.",
                "parameters": [_param("deal_id")],
                "responses": {"200": {"description": "The deal", "content": {"application/json": {"schema": _DEAL}}},
                              **problem_responses(401, 403, 404)}},
    },
}
