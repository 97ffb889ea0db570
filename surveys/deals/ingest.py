"""The ways deal events come in: checking who sent them, and reading them.

Each source's request is verified first (a signature, or Salesforce's
organisation id), then read into normalized events:
`{"event_id", "type", "occurred_at", "deal": {field: value}}` with the field
names of the generic webhook (docs/api.md). Reading never judges the deal's
values (an unknown owner, an amount that is not a number): that happens when
the stored event is processed, so such an event is kept and marked failed.
What is refused here is a request that is not an event at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from urllib.parse import unquote

from surveys import limits

TOLERANCE_SECONDS = 300
EVENT_TYPES = ("deal.updated", "deal.closed_won", "deal.closed_lost", "deal.no_decision")
DEAL_FIELDS = ("id", "owner_email", "account", "amount", "currency", "stage", "outcome", "close_date",
               "competitor", "segment", "region", "products", "loss_reason")
TYPE_OF_OUTCOME = {"won": "deal.closed_won", "lost": "deal.closed_lost", "no_decision": "deal.no_decision"}


class SignatureInvalid(Exception):
    """The request is not proven to come from the sender it claims (401)."""


class NotAnEvent(Exception):
    """The body cannot be read as events (422); `errors` maps field to message."""

    def __init__(self, message, errors=None):
        super().__init__(message)
        self.errors = errors or {}


# -- The generic webhook: Canary-Signature: t=<unix>,v1=<hex> ----------------


def canary_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a sender puts on `body` at `timestamp` (also used by the demo and tests)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_canary_signature(header: str | None, body: bytes, secret: str | None, now: datetime) -> None:
    if not secret:
        raise SignatureInvalid("Deal events are not accepted: DEAL_WEBHOOK_SECRET is not set.")
    if not header:
        raise SignatureInvalid("The Canary-Signature header is missing.")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit() or not signatures:
        raise SignatureInvalid("The Canary-Signature header must read 't=<unix seconds>,v1=<hex HMAC>'.")
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE_SECONDS:
        raise SignatureInvalid("The signature's timestamp is more than five minutes from now.")
    expected = canary_signature(secret, int(timestamp), body).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise SignatureInvalid("The signature does not match the body.")


def parse_generic(body: bytes) -> dict:
    try:
        data = limits.loads(body)
    except (ValueError, limits.HostileInput):
        raise NotAnEvent("The body must be a JSON event object.") from None
    if not isinstance(data, dict):
        raise NotAnEvent("The body must be a JSON event object.")
    errors = {}
    event_id = data.get("id")
    if not isinstance(event_id, (str, int)) or isinstance(event_id, bool) or str(event_id).strip() == "":
        errors["id"] = "An event id (string) is required."
    elif len(str(event_id)) > 200:
        errors["id"] = "At most 200 characters."
    if data.get("type") not in EVENT_TYPES:
        errors["type"] = f"One of: {', '.join(EVENT_TYPES)}."
    occurred_at = None
    if data.get("occurred_at") is not None:
        try:
            occurred_at = parse_time(data["occurred_at"])
        except ValueError:
            errors["occurred_at"] = "An ISO 8601 instant."
    deal = data.get("deal")
    if not isinstance(deal, dict):
        errors["deal"] = "A deal object is required."
    elif not isinstance(deal.get("id"), (str, int)) or str(deal.get("id")).strip() == "":
        errors["deal.id"] = "The deal's id in the CRM is required."
    if errors:
        raise NotAnEvent("The body is not a deal event.", errors)
    return {"event_id": str(event_id), "type": data["type"], "occurred_at": occurred_at,
            "deal": {key: deal[key] for key in DEAL_FIELDS if key in deal}}


def parse_time(value) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, timezone.utc)
    if not isinstance(value, str):
        raise ValueError(value)
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


# -- Salesforce Outbound Messages (SOAP) --------------------------------------

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SF_OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# sObject field -> deal field. Outbound messages carry the object's own fields
# only, so the owner's email and the account name come from formula fields.
SALESFORCE_FIELD_MAP = {
    "Id": "id", "Owner_Email__c": "owner_email", "Account_Name__c": "account", "Amount": "amount",
    "CurrencyIsoCode": "currency", "StageName": "stage", "CloseDate": "close_date",
    "Primary_Competitor__c": "competitor", "Segment__c": "segment", "Region__c": "region",
    "Product_Lines__c": "products", "Loss_Reason__c": "loss_reason",
}

SALESFORCE_ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{SF_OUTBOUND}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)


def parse_salesforce(body: bytes, allowed_org_ids, field_map=None) -> tuple[str, list[dict]]:
    """The organisation id and one event per Notification. Raises
    SignatureInvalid for an organisation not on the allow-list."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise NotAnEvent("Document type declarations are not accepted.")
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise NotAnEvent("The body is not a SOAP envelope.") from None
    notifications = root.find(f"{{{SOAP_ENV}}}Body/{{{SF_OUTBOUND}}}notifications")
    if notifications is None:
        raise NotAnEvent("The SOAP body has no outbound-message notifications.")
    org_id = (notifications.findtext(f"{{{SF_OUTBOUND}}}OrganizationId") or "").strip()
    allowed = {_org15(org) for org in allowed_org_ids if org}
    if not org_id or _org15(org_id) not in allowed:
        raise SignatureInvalid("This Salesforce organisation is not allowed (SALESFORCE_ORG_IDS).")
    field_map = field_map or SALESFORCE_FIELD_MAP
    events = []
    for index, notification in enumerate(notifications.findall(f"{{{SF_OUTBOUND}}}Notification")):
        notification_id = (notification.findtext(f"{{{SF_OUTBOUND}}}Id") or "").strip()
        sobject = notification.find(f"{{{SF_OUTBOUND}}}sObject")
        if not notification_id or sobject is None:
            raise NotAnEvent(f"Notification {index + 1} has no Id or no sObject.")
        fields = {}
        for child in sobject:
            name = child.tag.rsplit("}", 1)[-1]
            if child.get(f"{{{XSI}}}nil") == "true":
                fields[name] = None
            else:
                fields[name] = (child.text or "").strip()
        deal = {field_map[name]: value for name, value in fields.items() if name in field_map}
        if "products" in deal and isinstance(deal["products"], str):
            deal["products"] = [p.strip() for p in deal["products"].split(";") if p.strip()]
        outcome = _salesforce_outcome(fields)
        if outcome:
            deal["outcome"] = outcome
        if not deal.get("id"):
            raise NotAnEvent(f"Notification {index + 1} carries no opportunity Id.")
        occurred_at = None
        if fields.get("LastModifiedDate"):
            try:
                occurred_at = parse_time(fields["LastModifiedDate"])
            except ValueError:
                occurred_at = None
        events.append({"event_id": notification_id, "type": TYPE_OF_OUTCOME.get(outcome, "deal.updated"),
                       "occurred_at": occurred_at, "deal": deal})
    if not events:
        raise NotAnEvent("The message carries no Notification.")
    return org_id, events


def _org15(org_id: str) -> str:
    """Salesforce ids come in 15- and 18-character forms; the first 15 identify."""
    return org_id.strip()[:15]


def _salesforce_outcome(fields: dict) -> str | None:
    if "IsClosed" not in fields and "IsWon" not in fields:
        return None
    if fields.get("IsWon") == "true":
        return "won"
    if fields.get("IsClosed") == "true":
        stage = (fields.get("StageName") or "").lower().replace(" ", "")
        return "no_decision" if "nodecision" in stage else "lost"
    return "open"


# -- HubSpot webhooks, signature v3 --------------------------------------------

HUBSPOT_PROPERTY_MAP = {
    "hs_object_id": "id", "owner_email": "owner_email", "account_name": "account", "amount": "amount",
    "deal_currency_code": "currency", "dealstage": "stage", "closedate": "close_date",
    "competitor": "competitor", "segment": "segment", "region": "region", "product_lines": "products",
    "closed_lost_reason": "loss_reason",
}


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """Base64 of HMAC-SHA256 over method + URI + body + timestamp (HubSpot's v3)."""
    message = f"{method}{unquote(uri)}".encode() + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_hubspot(signature: str | None, timestamp: str | None, method: str, uri: str, body: bytes,
                   secret: str | None, now: datetime) -> None:
    if not secret:
        raise SignatureInvalid("HubSpot events are not accepted: HUBSPOT_CLIENT_SECRET is not set.")
    if not signature or not timestamp or not timestamp.isdigit():
        raise SignatureInvalid("X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required.")
    if abs(now.timestamp() * 1000 - int(timestamp)) > TOLERANCE_SECONDS * 1000:
        raise SignatureInvalid("The request timestamp is more than five minutes from now.")
    expected = hubspot_signature(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected, signature.strip()):
        raise SignatureInvalid("The signature does not match the request.")


def parse_hubspot(body: bytes, property_map=None) -> list[dict]:
    """A batch (JSON array) of deal events. Each carries the deal's properties
    (`properties`, as a workflow sends them) or one changed property
    (`propertyName`/`propertyValue`, as a deal.propertyChange subscription does)."""
    try:
        data = limits.loads(body)
    except (ValueError, limits.HostileInput):
        raise NotAnEvent("The body must be a JSON array of events.") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise NotAnEvent("The body must be a JSON array of events.")
    property_map = property_map or HUBSPOT_PROPERTY_MAP
    events = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or item.get("eventId") in (None, "") or item.get("objectId") in (None, ""):
            raise NotAnEvent(f"Event {index + 1} has no eventId or objectId.", {f"{index}": "eventId and objectId are required."})
        properties = dict(item.get("properties") or {})
        if item.get("propertyName"):
            properties[item["propertyName"]] = item.get("propertyValue")
        deal = {property_map[name]: _hubspot_value(value) for name, value in properties.items() if name in property_map}
        deal["id"] = str(item["objectId"])
        if isinstance(deal.get("products"), str):
            deal["products"] = [p.strip() for p in deal["products"].split(";") if p.strip()]
        if isinstance(deal.get("close_date"), str) and deal["close_date"].isdigit():
            deal["close_date"] = parse_time(int(deal["close_date"])).date().isoformat()
        if "stage" in deal:
            deal["outcome"] = _hubspot_outcome(str(deal["stage"]))
        occurred_at = parse_time(item["occurredAt"]) if isinstance(item.get("occurredAt"), (int, float)) else None
        events.append({"event_id": str(item["eventId"]), "type": TYPE_OF_OUTCOME.get(deal.get("outcome"), "deal.updated"),
                       "occurred_at": occurred_at, "deal": deal})
    return events


def _hubspot_value(value):
    return value.get("value") if isinstance(value, dict) and "value" in value else value


def _hubspot_outcome(stage: str) -> str:
    stage = stage.lower().replace(" ", "").replace("_", "")
    if stage == "closedwon":
        return "won"
    if stage == "closedlost":
        return "lost"
    if "nodecision" in stage:
        return "no_decision"
    return "open"


def dumps(value) -> str:
    return json.dumps(value, default=str, sort_keys=True)
