"""Signing and posting deal events the way their senders do, for the deal tests."""

import json
from pathlib import Path

from surveys.deals.ingest import canary_signature, hubspot_signature

DATA = Path(__file__).resolve().parents[1] / "data" / "deals"
SECRET = "whsec_test_0123456789abcdef"
HUBSPOT_SECRET = "hubspot-client-secret-for-tests"
SALESFORCE_ORG = "00D5g000004ABCDEAA"


def configure(app):
    app.config.update(DEAL_WEBHOOK_SECRET=SECRET, HUBSPOT_CLIENT_SECRET=HUBSPOT_SECRET,
                      SALESFORCE_ORG_IDS=f"00Dxx0000001gEREAY, {SALESFORCE_ORG}")


def fixture_bytes(name) -> bytes:
    return (DATA / name).read_bytes()


def event_body(event_id="evt_1", type="deal.closed_lost", **deal) -> bytes:
    base = {"id": "OPP-1", "owner_email": "ana.rep@example.com", "account": "Globex", "amount": 180000,
            "currency": "USD", "stage": "Closed Lost", "outcome": "lost", "close_date": "2026-11-30",
            "competitor": "Initrode", "segment": "Enterprise", "region": "EMEA", "products": ["Platform"]}
    base.update(deal)
    return json.dumps({"id": event_id, "type": type, "occurred_at": "2026-12-01T14:00:00Z", "deal": base}).encode()


def post_signed(client, body: bytes, now, secret=SECRET, timestamp=None):
    timestamp = int(now.timestamp()) if timestamp is None else timestamp
    return client.post("/api/v1/deal-events", data=body, content_type="application/json",
                       headers={"Canary-Signature": canary_signature(secret, timestamp, body)})


def post_hubspot(client, body: bytes, now, secret=HUBSPOT_SECRET, timestamp_ms=None, uri=None):
    timestamp = str(int(now.timestamp() * 1000) if timestamp_ms is None else timestamp_ms)
    uri = uri or "http://canary.test/api/v1/deal-events/hubspot"
    signature = hubspot_signature(secret, "POST", uri, body, timestamp)
    return client.post("/api/v1/deal-events/hubspot", data=body, content_type="application/json",
                       headers={"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp})
