"""Alerts through the API and the staff page: list by state, change state
(audited), problem details for bad input, CSRF-protected forms that keep
the input, and the scorecard linking out. And routing: one email per person
per round close, signed webhooks retried with backoff."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from cadence.models import Round
from surveys.alert_models import Alert, AlertNotification, AlertWebhook
from surveys.alert_routing import add_webhook, watch_and_notify
from surveys.audit import AuditEvent
from surveys.extensions import db
from tests.builders.alerts import build_rounds
from tests.conftest import csrf_token_from, run_worker


def _drop_plan():
    steady = [("EMEA", {"confidence": 5}, 21), ("EMEA", {"confidence": 2}, 9),
              ("AMER", {"confidence": 5}, 5), ("AMER", {"confidence": 2}, 3),
              ("APAC", {"confidence": 5}, 4), ("APAC", {"confidence": 2}, 3)]
    last = [("EMEA", {"confidence": 5}, 9), ("EMEA", {"confidence": 2}, 21),
            ("AMER", {"confidence": 5}, 5), ("AMER", {"confidence": 2}, 3),
            ("APAC", {"confidence": 5}, 1), ("APAC", {"confidence": 2}, 2)]
    return [steady] * 5 + [last]


def _alerts(owner=None):
    data, rounds = build_rounds(_drop_plan())
    if owner is not None:
        data.question_set.owner_id = owner.id
        db.session.commit()
    return data, rounds


def _watch(rounds):
    out = None
    for round_ in rounds:
        out = watch_and_notify(db.session.get(Round, round_.id))
    return out


def test_the_api_lists_and_moves_alerts_with_audit_and_problems(app, api_token, redis_conn):
    _data, rounds = _alerts()
    _watch(rounds)
    headers = api_token(roles=("leader",))
    client = app.test_client()
    listed = client.get("/api/v1/alerts?state=new", headers=headers)
    assert listed.status_code == 200
    alerts = listed.get_json()
    assert alerts and all(a["state"] == "new" for a in alerts)
    first = alerts[0]
    assert set(first) >= {"id", "question_set_id", "question_key", "metric", "slice", "round_id", "value", "baseline",
                          "limits", "direction", "state"}
    rank = {"high": 0, "medium": 1, "low": 2}
    assert [rank[a["severity"]] for a in alerts] == sorted(rank[a["severity"]] for a in alerts)
    assert first["direction"] == "down" and first["limits"][0] > first["value"]
    assert not any(a["slice"]["name"] in ("APAC", "AMER") for a in alerts)
    bad = client.post(f"/api/v1/alerts/{first['id']}/state", headers=headers, json={"state": "explained"})
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json" and "note" in bad.get_json()["errors"]
    assert client.get("/api/v1/alerts?state=lost", headers=headers).status_code == 400
    moved = client.post(f"/api/v1/alerts/{first['id']}/state", headers=headers, json={"state": "acknowledged"})
    assert moved.status_code == 200 and moved.get_json()["state"] == "acknowledged"
    done = client.post(f"/api/v1/alerts/{first['id']}/state", headers=headers,
                       json={"state": "explained", "note": "pricing change in October"})
    assert done.get_json()["state"] == "explained" and done.get_json()["note"] == "pricing change in October"
    again = client.post(f"/api/v1/alerts/{first['id']}/state", headers=headers, json={"state": "false_alarm"})
    assert again.status_code == 422
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "alert.state_changed")).all()
    assert [(e.details["from"], e.details["to"]) for e in events] == [("new", "acknowledged"), ("acknowledged", "explained")]
    assert all(e.target == f"alerts:{first['id']}" for e in events)
    assert client.get("/api/v1/alerts?state=explained", headers=headers).get_json()[0]["id"] == first["id"]
    document = client.get("/api/v1/openapi.json").get_json()
    assert {"/alerts", "/alerts/{alert_id}", "/alerts/{alert_id}/state"} <= set(document["paths"])
    assert "Alert" in document["components"]["schemas"]


def test_the_alerts_page_shows_charts_and_keeps_input_on_error(app, signed_in_client, redis_conn):
    _data, rounds = _alerts()
    _watch(rounds)
    client = signed_in_client(roles=("pm",))
    page = client.get("/alerts/")
    assert page.status_code == 200
    assert page.text.count("<svg") == db.session.query(Alert).count()
    assert "APAC" not in page.text and "AMER" not in page.text
    alert = db.session.scalars(select(Alert).order_by(Alert.score.desc())).first()
    no_csrf = client.post(f"/alerts/{alert.id}/state", data={"state": "explained", "note": ""})
    assert no_csrf.status_code == 400
    token = csrf_token_from(page.text)
    kept = client.post(f"/alerts/{alert.id}/state", data={"state": "explained", "note": "  ", "csrf_token": token})
    assert kept.status_code == 422 and "Say what explains the change" in kept.text
    done = client.post(f"/alerts/{alert.id}/state",
                       data={"state": "false_alarm", "note": "a survey wording mix-up", "csrf_token": token})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).state == "false_alarm"
    # Leaders see the page; reps never sign in.
    assert signed_in_client(roles=("leader",), email="lead@example.com").get("/alerts/").status_code == 200


class _Hook(BaseHTTPRequestHandler):
    failures_left = 0
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).failures_left != 0:
            type(self).failures_left -= 1
            self.send_response(500)
            self.end_headers()
            return
        type(self).received.append((self.headers["Canary-Signature"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    servers = []

    def start(failures):
        handler = type("Hook", (_Hook,), {"failures_left": failures, "received": []})
        server = HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_one_email_per_person_and_webhooks_retried_or_failed(app, make_person, smtp, redis_conn, hook_server):
    app.config["ALERT_RETRY_INTERVALS"] = [0, 0, 0]
    owner = make_person(email="owner@example.com", name="Olive Owner", roles=("pm",))
    make_person(email="lead@example.com", name="Lee Leader", roles=("leader", "pm"))
    make_person(email="pm2@example.com", name="Other PM", roles=("pm",))
    data, rounds = _alerts(owner=owner)
    flaky, flaky_handler = hook_server(2)
    dead, dead_handler = hook_server(-1)  # always fails
    secret = "s3cret-s3cret-s3cret"
    add_webhook(data.question_set, f"http://127.0.0.1:{flaky.server_port}/hook", "slack", secret)
    add_webhook(data.question_set, f"http://127.0.0.1:{dead.server_port}/hook", "teams", secret)
    db.session.commit()
    _watch(rounds)
    try:
        run_worker(app, ["mail"])
    finally:
        app.config.pop("ALERT_RETRY_INTERVALS", None)
    alert_count = db.session.query(Alert).count()
    assert alert_count >= 3
    recipients = sorted(m["To"].addresses[0].addr_spec for m in smtp.messages if m["X-Canary-Kind"] == "alerts")
    assert recipients == ["lead@example.com", "owner@example.com"]  # one each, however many alerts
    html = smtp.messages[0].get_body(preferencelist=("html",)).get_content()
    text = smtp.messages[0].get_body(preferencelist=("plain",)).get_content()
    assert html.count("<svg") == alert_count and "http://canary.test/scorecards/rounds/" in text
    assert "/scorecards/rounds/%d?slice=region#heatmap" % rounds[-1].id in text
    assert "/scorecards/rounds/%d#q-confidence" % rounds[-1].id in text
    assert "baseline 70.0" in text and "n = 30" in text and "APAC" not in html + text and "AMER" not in html + text
    # The flaky endpoint failed twice, then received the alerts exactly once, signed.
    assert len(flaky_handler.received) == 1
    signature, body = flaky_handler.received[0]
    stamp, digest = dict(part.split("=", 1) for part in signature.split(",")).values()
    assert hmac.compare_digest(digest, hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest())
    payload = json.loads(body)
    assert payload["text"].startswith("Canary:") and payload["blocks"][0]["type"] == "header"
    assert "APAC" not in body.decode() and "AMER" not in body.decode()
    notifications = {n.target: n for n in db.session.scalars(
        select(AlertNotification).where(AlertNotification.channel == "webhook"))}
    hooks = {w.url: str(w.id) for w in db.session.scalars(select(AlertWebhook))}
    flaky_note = notifications[hooks[f"http://127.0.0.1:{flaky.server_port}/hook"]]
    dead_note = notifications[hooks[f"http://127.0.0.1:{dead.server_port}/hook"]]
    assert flaky_note.status == "sent" and flaky_note.attempts == 3
    assert dead_note.status == "failed" and dead_note.attempts == 4 and "answered 500" in dead_note.last_error
    assert dead_handler.received == []
    # The failure is visible to admins on the operations page.
    admin_page = _admin_client(app, make_person).get("/cadences/operations")
    assert "Failed alert messages" in admin_page.text and "answered 500" in admin_page.text
    # Re-running the round-closed work sends nothing again.
    smtp.reset()
    _watch(rounds[-1:])
    run_worker(app, ["mail"])
    assert smtp.messages == []


def test_the_scorecard_marks_the_metrics_that_alerted(app, signed_in_client, redis_conn):
    _data, rounds = _alerts()
    _watch(rounds)
    client = signed_in_client(roles=("leader",))
    page = client.get(f"/scorecards/rounds/{rounds[-1].id}")
    assert page.status_code == 200
    assert "Alerted" in page.text and "everyone: favourable % down" in page.text
    assert "region EMEA: favourable % down" in page.text and "APAC" not in page.text.split("Alerted", 1)[1].split("</p>", 1)[0]
    earlier = client.get(f"/scorecards/rounds/{rounds[0].id}")
    assert "Alerted" not in earlier.text


def _admin_client(app, make_person):
    make_person(email="admin@example.com", name="Ada Admin", roles=("admin",))
    client = app.test_client()
    page = client.get("/sign-in")
    client.post("/sign-in", data={"email": "admin@example.com", "password": "correct horse battery",
                                  "csrf_token": csrf_token_from(page.text)})
    return client


def test_the_round_closed_job_watches_and_mails_once(app, make_person, smtp, redis_conn):
    """Through the planner's own enqueue and real RQ workers: the round-closed
    job watches the round, the digest goes out, and the alert email is its own
    message, once per person."""
    from cadence import dispatch
    from surveys.alerts import watch_round

    app.config["ALERT_RETRY_INTERVALS"] = [0]
    leader = make_person(email="lead@example.com", name="Lee Leader", roles=("leader",))
    _data, rounds = _alerts(owner=leader)  # the owner is also a leader: still one email
    for round_ in rounds[:-1]:
        watch_round(db.session.get(Round, round_.id))
    try:
        dispatch.rounds_closed([rounds[-1].id])
        run_worker(app, ["rollups", "mail"])
        dispatch.rounds_closed([rounds[-1].id])  # a second close report changes nothing
        run_worker(app, ["rollups", "mail"])
    finally:
        app.config.pop("ALERT_RETRY_INTERVALS", None)
    assert db.session.query(Alert).filter(Alert.round_id == rounds[-1].id).count() >= 3
    kinds = sorted(m["X-Canary-Kind"] for m in smtp.messages)
    assert kinds == ["alerts", "digest"]


def test_webhooks_are_added_through_the_api_with_field_errors(app, api_token):
    data, _rounds = build_rounds([[("EMEA", {"confidence": 4}, 6)]])
    headers = api_token(roles=("pm",))
    client = app.test_client()
    path = f"/api/v1/question-sets/{data.question_set.id}/alert-webhooks"
    bad = client.post(path, headers=headers, json={"url": "ftp://x", "format": "irc", "secret": "short"})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"url", "format", "secret"}
    made = client.post(path, headers=headers, json={"url": "https://hooks.example.com/x", "format": "teams",
                                                     "secret": "0123456789abcdef"})
    assert made.status_code == 201 and made.get_json()["format"] == "teams" and "secret" not in made.get_json()
    assert [w["url"] for w in client.get(path, headers=headers).get_json()] == ["https://hooks.example.com/x"]
    assert client.get(path, headers=api_token(roles=("leader",), email="l@example.com")).status_code == 403
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "alert_webhook.created")) is not None


def test_the_owner_is_named_through_the_api_and_routing_lists_who_hears(app, api_token, make_person):
    data, _rounds = build_rounds([[("EMEA", {"confidence": 4}, 6)]])
    creator = make_person(email="creator@example.com", name="Cree Ator", roles=("pm",))
    data.question_set.owner_id = creator.id
    make_person(email="lead@example.com", name="Lee Leader", roles=("leader",))
    make_person(email="newpm@example.com", name="New PM", roles=("pm",))
    db.session.commit()
    headers = api_token(roles=("admin",))
    client = app.test_client()
    base = f"/api/v1/question-sets/{data.question_set.id}"
    routing = client.get(f"{base}/alert-routing", headers=headers).get_json()
    assert routing["owner"]["email"] == "creator@example.com"
    assert sorted(p["email"] for p in routing["recipients"]) == ["creator@example.com", "lead@example.com"]
    refused = client.post(f"{base}/owner", headers=headers, json={"email": "lead@example.com"})  # not a PM
    assert refused.status_code == 422 and "email" in refused.get_json()["errors"]
    moved = client.post(f"{base}/owner", headers=headers, json={"email": "newpm@example.com"})
    assert moved.status_code == 200 and moved.get_json()["owner"]["email"] == "newpm@example.com"
    assert sorted(p["email"] for p in moved.get_json()["recipients"]) == ["lead@example.com", "newpm@example.com"]
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "question_set.owner_changed")) is not None
