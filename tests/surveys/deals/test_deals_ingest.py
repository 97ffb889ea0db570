"""Deal events in: each way in, its signature scheme, storage as received,
idempotence, processing by a real RQ worker, failures kept with reasons, and
replay (issue 15)."""

from datetime import timedelta

from sqlalchemy import func, select

from surveys.deals.models import Deal, DealEvent
from surveys.extensions import db
from tests.conftest import run_worker
from tests.builders.deals import (
    SALESFORCE_ORG, configure, event_body, fixture_bytes, post_hubspot, post_signed,
)


def _rep(make_person, email="ana.rep@example.com", **fields):
    return make_person(email=email, name="Ana Rep", roles=("rep",), password=None, **fields)


def _count(model):
    return db.session.scalar(select(func.count()).select_from(model))


# -- The generic webhook --------------------------------------------------------


def test_a_signed_event_is_stored_as_received_and_processed_by_a_worker(app, client, clock, make_person):
    configure(app)
    rep = _rep(make_person)
    body = fixture_bytes("generic_closed_lost.json")
    response = post_signed(client, body, clock())
    assert response.status_code == 202
    assert response.json["status"] == "accepted" and response.json["event_id"] == "evt_0001"
    event = db.session.scalar(select(DealEvent))
    assert event.status == "received" and event.raw == body.decode() and event.source == "api"
    assert _count(Deal) == 0
    run_worker(app)
    db.session.expire_all()
    event = db.session.scalar(select(DealEvent))
    assert event.status == "processed", event.error
    deal = db.session.get(Deal, event.deal_id)
    assert (deal.external_id, deal.owner_id, deal.account, deal.amount, deal.currency, deal.outcome) == (
        "OPP-1001", rep.id, "Globex Corp", 180000.0, "USD", "lost")
    assert deal.close_date.isoformat() == "2026-11-30" and deal.products == ["Platform", "SSO"]
    assert deal.competitor == "Initrode" and deal.loss_reason == "Missing feature"


def test_the_same_event_twice_is_stored_once_and_answers_duplicate(app, client, clock, make_person):
    configure(app)
    _rep(make_person)
    body = event_body("evt_dup")
    assert post_signed(client, body, clock()).status_code == 202
    again = post_signed(client, body, clock() + timedelta(seconds=30))
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    run_worker(app)
    assert _count(DealEvent) == 1 and _count(Deal) == 1


def test_wrong_secret_tampered_body_stale_and_missing_signatures_are_refused(app, client, clock, make_person):
    configure(app)
    body = event_body("evt_sig")
    wrong = post_signed(client, body, clock(), secret="not-the-secret")
    assert wrong.status_code == 401 and wrong.mimetype == "application/problem+json"
    good_header = post_signed.__globals__["canary_signature"]("whsec_test_0123456789abcdef", int(clock().timestamp()), body)
    tampered = client.post("/api/v1/deal-events", data=body.replace(b"180000", b"1"), content_type="application/json",
                           headers={"Canary-Signature": good_header})
    assert tampered.status_code == 401
    stale = post_signed(client, body, clock(), timestamp=int(clock().timestamp()) - 301)
    assert stale.status_code == 401 and "five minutes" in stale.json["detail"]
    future = post_signed(client, body, clock(), timestamp=int(clock().timestamp()) + 301)
    assert future.status_code == 401
    missing = client.post("/api/v1/deal-events", data=body, content_type="application/json")
    assert missing.status_code == 401
    garbled = client.post("/api/v1/deal-events", data=body, content_type="application/json",
                          headers={"Canary-Signature": "v1=abc"})
    assert garbled.status_code == 401
    assert _count(DealEvent) == 0


def test_a_replayed_request_is_accepted_once_even_within_the_tolerance(app, client, clock, make_person):
    """A captured request sent again (same signature, same body) stores nothing new."""
    configure(app)
    body = event_body("evt_replay")
    header = post_signed.__globals__["canary_signature"]("whsec_test_0123456789abcdef", int(clock().timestamp()), body)
    first = client.post("/api/v1/deal-events", data=body, content_type="application/json", headers={"Canary-Signature": header})
    clock.advance(timedelta(minutes=4))
    second = client.post("/api/v1/deal-events", data=body, content_type="application/json", headers={"Canary-Signature": header})
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json["status"] == "duplicate"
    clock.advance(timedelta(minutes=2))
    late = client.post("/api/v1/deal-events", data=body, content_type="application/json", headers={"Canary-Signature": header})
    assert late.status_code == 401
    assert _count(DealEvent) == 1


def test_without_a_configured_secret_every_event_is_refused(app, client, clock):
    app.config["DEAL_WEBHOOK_SECRET"] = None
    response = post_signed(client, event_body("evt_x"), clock(), secret="anything")
    assert response.status_code == 401
    assert _count(DealEvent) == 0


def test_a_body_that_is_not_an_event_is_422_and_stores_nothing(app, client, clock):
    configure(app)
    for body in (b"not json", b"[1, 2]", b'{"id": "e1", "type": "deal.exploded", "deal": {"id": "1"}}',
                 b'{"id": "e2", "type": "deal.updated"}', b'{"type": "deal.updated", "deal": {"id": "1"}}'):
        response = post_signed(client, body, clock())
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"
    response = post_signed(client, b'{"id": "e1", "type": "deal.exploded", "deal": {"id": "1"}}', clock())
    assert set(response.json["errors"]) == {"type"}
    assert _count(DealEvent) == 0


def test_bad_deals_are_stored_and_marked_failed_with_the_reason_and_nothing_half_created(app, client, clock, make_person):
    configure(app)
    _rep(make_person)
    cases = {
        "evt_owner": ({"owner_email": "nobody@example.com"}, "unknown owner email 'nobody@example.com'"),
        "evt_currency": ({"currency": "XYZ"}, "unknown currency 'XYZ'"),
        "evt_amount": ({"amount": "a lot"}, "amount 'a lot' is not a non-negative number"),
        "evt_missing": ({"account": None, "stage": ""}, "missing account, stage"),
        "evt_date": ({"close_date": "last tuesday"}, "close_date 'last tuesday' is not a date"),
    }
    for event_id, (fields, _) in cases.items():
        deal = {"id": f"OPP-{event_id}", **fields}
        assert post_signed(client, event_body(event_id, **deal), clock()).status_code == 202
    run_worker(app)
    db.session.expire_all()
    for event_id, (_, reason) in cases.items():
        event = db.session.scalar(select(DealEvent).where(DealEvent.event_id == event_id))
        assert event.status == "failed" and reason in event.error, (event_id, event.error)
        assert event.deal_id is None
    assert _count(Deal) == 0


def test_a_failed_event_is_replayed_by_an_admin_after_the_cause_is_fixed(app, client, clock, make_person, api_token):
    configure(app)
    assert post_signed(client, event_body("evt_later", owner_email="new.rep@example.com"), clock()).status_code == 202
    run_worker(app)
    event = db.session.scalar(select(DealEvent))
    assert event.status == "failed"
    _rep(make_person, email="new.rep@example.com")  # the person import catches up
    pm = api_token(roles=("pm",), email="pm@example.com")
    assert client.post(f"/api/v1/deal-events/{event.id}/replay", headers=pm).status_code == 403
    admin = api_token(roles=("admin",), email="admin@example.com")
    response = client.post(f"/api/v1/deal-events/{event.id}/replay", headers=admin)
    assert response.status_code == 202 and response.json["status"] == "received"
    run_worker(app)
    db.session.expire_all()
    event = db.session.get(DealEvent, event.id)
    assert event.status == "processed" and event.attempts == 2
    from surveys.audit import AuditEvent

    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "deal_event.replayed"))


def test_a_later_event_updates_the_deal_and_an_older_one_arriving_late_does_not(app, client, clock, make_person):
    configure(app)
    _rep(make_person)
    newer = event_body("evt_new", stage="Closed Lost", amount=150000)
    older = event_body("evt_old", type="deal.updated", stage="Negotiation", outcome="open", amount=120000)
    older = older.replace(b"2026-12-01T14:00:00Z", b"2026-11-20T10:00:00Z")
    post_signed(client, newer, clock())
    run_worker(app)
    post_signed(client, older, clock())
    run_worker(app)
    db.session.expire_all()
    deal = db.session.scalar(select(Deal))
    assert (deal.stage, deal.outcome, deal.amount) == ("Closed Lost", "lost", 150000.0)
    assert {e.status for e in db.session.scalars(select(DealEvent))} == {"processed"}


def test_deals_and_events_are_listed_for_staff_only(app, client, clock, make_person, api_token):
    configure(app)
    _rep(make_person)
    post_signed(client, event_body("evt_list"), clock())
    run_worker(app)
    assert client.get("/api/v1/deals").status_code == 401
    rep_token = api_token(roles=("rep",), email="other.rep@example.com")
    assert client.get("/api/v1/deals", headers=rep_token).status_code == 403
    staff = api_token(roles=("leader",), email="leader@example.com")
    deals = client.get("/api/v1/deals?outcome=lost&owner=ANA.REP@example.com", headers=staff).json
    assert [d["external_id"] for d in deals] == ["OPP-1"] and deals[0]["owner_email"] == "ana.rep@example.com"
    assert client.get("/api/v1/deals?outcome=won", headers=staff).json == []
    assert client.get("/api/v1/deals?outcome=maybe", headers=staff).status_code == 400
    shown = client.get(f"/api/v1/deals/{deals[0]['id']}", headers=staff).json
    assert [e["event_id"] for e in shown["events"]] == ["evt_list"]
    events = client.get("/api/v1/deal-events?status=processed", headers=staff).json
    assert [e["event_id"] for e in events] == ["evt_list"]


# -- Salesforce outbound messages ---------------------------------------------


def test_a_salesforce_message_with_two_notifications_stores_both_then_acks(app, client, clock, make_person):
    configure(app)
    _rep(make_person)
    body = fixture_bytes("salesforce_two_notifications.xml")
    response = client.post("/api/v1/deal-events/salesforce", data=body, content_type="text/xml; charset=utf-8",
                           headers={"SOAPAction": '""'})
    assert response.status_code == 200 and b"<Ack>true</Ack>" in response.data
    assert b"notificationsResponse" in response.data
    events = db.session.scalars(select(DealEvent).order_by(DealEvent.event_id)).all()
    assert [(e.event_id, e.type, e.source) for e in events] == [
        ("04l5g00000AbCdEAA1", "deal.closed_lost", "salesforce"), ("04l5g00000AbCdFAA1", "deal.closed_won", "salesforce")]
    # Salesforce resends until it has an Ack: the resend stores nothing new.
    assert client.post("/api/v1/deal-events/salesforce", data=body, content_type="text/xml").status_code == 200
    assert _count(DealEvent) == 2
    run_worker(app)
    deals = {d.external_id: d for d in db.session.scalars(select(Deal))}
    lost, won = deals["0065g00000Opp001AAA"], deals["0065g00000Opp002AAA"]
    assert (lost.outcome, lost.amount, lost.competitor, lost.products, lost.loss_reason) == (
        "lost", 180000.0, "Globex", ["Platform", "SSO"], "Price")
    assert (won.outcome, won.currency, won.competitor, won.segment) == ("won", "EUR", None, "Mid-Market")


def test_salesforce_from_an_organisation_not_allowed_is_refused_and_not_acked(app, client):
    configure(app)
    body = fixture_bytes("salesforce_two_notifications.xml").replace(SALESFORCE_ORG.encode(), b"00D000000000BADAAA")
    response = client.post("/api/v1/deal-events/salesforce", data=body, content_type="text/xml")
    assert response.status_code == 401 and b"Ack" not in response.data and b"Fault" in response.data
    for bad in (b"<notasoap/>", b"not xml at all",
                b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'):
        refused = client.post("/api/v1/deal-events/salesforce", data=bad, content_type="text/xml")
        assert refused.status_code == 422 and b"Ack" not in refused.data
    assert _count(DealEvent) == 0


# -- HubSpot webhooks (signature v3) ------------------------------------------


def test_a_hubspot_batch_stores_every_event_and_the_bad_one_fails_alone(app, client, clock, make_person):
    configure(app)
    _rep(make_person)
    body = fixture_bytes("hubspot_batch.json")
    response = post_hubspot(client, body, clock())
    assert response.status_code == 202
    assert [e["status"] for e in response.json["events"]] == ["accepted"] * 3
    run_worker(app)
    events = {e.event_id: e for e in db.session.scalars(select(DealEvent))}
    assert events["3816279340"].status == "processed" and events["3816279341"].status == "processed"
    assert events["3816279342"].status == "failed" and "amount 'lots'" in events["3816279342"].error
    deals = {d.external_id: d for d in db.session.scalars(select(Deal))}
    assert set(deals) == {"1246965", "1246966"}
    assert (deals["1246965"].outcome, deals["1246965"].close_date.isoformat(), deals["1246965"].products) == (
        "lost", "2026-12-01", ["Platform", "Analytics"])
    assert deals["1246966"].outcome == "won"
    again = post_hubspot(client, body, clock())
    assert [e["status"] for e in again.json["events"]] == ["duplicate"] * 3


def test_hubspot_signatures_wrong_secret_tampered_stale_and_other_uri_are_refused(app, client, clock):
    configure(app)
    body = fixture_bytes("hubspot_batch.json")
    assert post_hubspot(client, body, clock(), secret="wrong").status_code == 401
    stale = int(clock().timestamp() * 1000) - 301_000
    assert post_hubspot(client, body, clock(), timestamp_ms=stale).status_code == 401
    assert post_hubspot(client, body, clock(), uri="http://elsewhere.test/api/v1/deal-events/hubspot").status_code == 401
    from surveys.deals.ingest import hubspot_signature

    timestamp = str(int(clock().timestamp() * 1000))
    signature = hubspot_signature("hubspot-client-secret-for-tests", "POST",
                                  "http://canary.test/api/v1/deal-events/hubspot", body, timestamp)
    tampered = client.post("/api/v1/deal-events/hubspot", data=body.replace(b"95000", b"1"), content_type="application/json",
                           headers={"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp})
    assert tampered.status_code == 401
    replayed = [client.post("/api/v1/deal-events/hubspot", data=body, content_type="application/json",
                            headers={"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp})
                for _ in range(2)]
    assert [r.status_code for r in replayed] == [202, 202]
    assert [e["status"] for e in replayed[1].json["events"]] == ["duplicate"] * 3
    assert _count(DealEvent) == 3


def test_an_event_whose_job_was_lost_is_queued_again_by_the_tick(app, client, clock, make_person):
    from cadence.queues import get_queue
    from surveys.deals.processing import requeue_stale

    configure(app)
    _rep(make_person)
    assert post_signed(client, event_body("evt_lost_job"), clock()).status_code == 202
    get_queue("cadence").empty()  # Redis lost the job
    run_worker(app)
    assert db.session.scalar(select(DealEvent.status)) == "received"
    assert requeue_stale(clock() + timedelta(minutes=1)) == 0  # not stale yet: its job may still be waiting
    assert requeue_stale(clock() + timedelta(minutes=3)) == 1
    run_worker(app)
    db.session.expire_all()
    assert db.session.scalar(select(DealEvent.status)) == "processed" and _count(Deal) == 1


def _tick(instant):
    from cadence.jobs import tick

    return tick(instant.isoformat())["deal_events_requeued"]


def test_an_event_a_dead_worker_left_processing_is_queued_again_by_the_tick_and_applied_once(app, client, clock, make_person):
    from cadence.queues import get_queue
    from surveys.deals.processing import apply_claimed, claim_event

    configure(app)
    _rep(make_person)
    assert post_signed(client, event_body("evt_dead_worker"), clock()).status_code == 202
    event_id = db.session.scalar(select(DealEvent.id))
    # A worker takes the job, claims the event and dies before applying it.
    get_queue("cadence").empty()
    claimed = clock()
    assert claim_event(event_id, claimed) == 1
    assert _tick(claimed + timedelta(minutes=9)) == 0  # a live worker may still be applying it
    db.session.expire_all()
    assert db.session.scalar(select(DealEvent.status)) == "processing" and _count(Deal) == 0
    clock.set(claimed + timedelta(minutes=11))
    assert _tick(clock()) == 1
    assert _tick(clock()) == 1  # queued twice (until applied, every tick queues it): applied once
    run_worker(app)
    db.session.expire_all()
    event = db.session.get(DealEvent, event_id)
    assert (event.status, event.attempts, event.claimed_at, event.processed_at) == ("processed", 2, clock(), clock())
    deal = db.session.scalar(select(Deal))
    applied_at = deal.updated_at
    # The first worker was only slow: it finishes its old claim, and nothing it did is kept.
    assert apply_claimed(event_id, 1, clock() + timedelta(minutes=1)) == "superseded"
    db.session.expire_all()
    event, deal = db.session.get(DealEvent, event_id), db.session.scalar(select(Deal))
    assert (event.status, event.attempts, event.processed_at) == ("processed", 2, clock())
    assert _count(Deal) == 1 and deal.updated_at == applied_at


def test_an_event_abandoned_by_five_workers_fails_for_an_admin_to_replay(app, client, clock, make_person):
    from cadence.queues import get_queue
    from surveys.deals.processing import MAX_ATTEMPTS, REQUEUE_PROCESSING_AFTER, claim_event

    configure(app)
    _rep(make_person)
    assert post_signed(client, event_body("evt_poison"), clock()).status_code == 202
    event_id = db.session.scalar(select(DealEvent.id))
    instant = clock()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        get_queue("cadence").empty()
        assert claim_event(event_id, instant) == attempt
        instant += REQUEUE_PROCESSING_AFTER + timedelta(minutes=1)
        assert _tick(instant) == (1 if attempt < MAX_ATTEMPTS else 0)
    db.session.expire_all()
    event = db.session.get(DealEvent, event_id)
    assert event.status == "failed" and "abandoned by 5 workers" in event.error and event.processed_at == instant
    assert _count(Deal) == 0
