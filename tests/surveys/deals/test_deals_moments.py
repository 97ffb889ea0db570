"""Deal moments: who is asked, when (delay, working hours in the owner's
zone), once per deal, the form with the deal's context, answers stored with
the deal, one daily digest per rep, expiry (issue 15). The tick runs at
given instants of the test clock."""

import threading
import time
from datetime import datetime, timezone

import requests
from sqlalchemy import func, select

from cadence.clock import parse_instant
from surveys.deals.ingest import canary_signature
from surveys.deals.models import Deal, DealAnswer, DealDigest, MomentInvitation
from surveys.deals.moments import invitation_token, run_moments, within_working_hours
from surveys.extensions import db
from surveys.questions.drafts import publish
from surveys.starter_templates import create_from_template, template_by_slug
from tests.conftest import csrf_token_from, run_worker
from tests.builders.deals import SECRET, configure, event_body, post_signed
from tests.servers import gunicorn_server
from tests.test_processes import flask_env


def _published(slug="deal-lost", owner=None):
    question_set = create_from_template(owner, template_by_slug(slug))
    db.session.flush()
    publish(question_set)
    db.session.commit()
    return question_set


def _moment(client, headers, set_id, **fields):
    body = {"name": "Lost deals", "question_set_id": set_id, "on": ["closed_lost"], "delay_minutes": 60,
            "working_hours": "09:00-18:00", "reminder_days": [1, 3], "expire_days": 7, **fields}
    response = client.post("/api/v1/moments", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def _rep(make_person, email="ana.rep@example.com", zone="Europe/Paris"):
    return make_person(email=email, name="Ana Rep", roles=("rep",), password=None, timezone=zone)


def _invitations():
    return db.session.scalars(select(MomentInvitation).order_by(MomentInvitation.id)).all()


def test_moments_take_attributed_published_sets_only_and_check_their_fields(app, client, api_token):
    headers = api_token(roles=("pm",))
    attributed = _published()
    confidential = _published("win-loss-pulse")
    refused = client.post("/api/v1/moments", headers=headers, json={
        "name": "x", "question_set_id": confidential.id, "on": ["closed_lost"]})
    assert refused.status_code == 422 and "attributed" in refused.json["errors"]["question_set_id"]
    bad = client.post("/api/v1/moments", headers=headers, json={
        "name": "", "question_set_id": attributed.id, "on": ["closed_sideways"], "working_hours": "18:00-09:00",
        "delay_minutes": -5, "expire_days": 3, "reminder_days": [1, 5], "min_amount": "big"})
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"name", "on", "working_hours", "delay_minutes", "reminder_days", "min_amount"}
    moment = _moment(client, headers, attributed.id, segments=["Enterprise"])
    assert moment["on"] == ["closed_lost"] and moment["status"] == "active"
    paused = client.post(f"/api/v1/moments/{moment['id']}/pause", headers=headers).json
    assert paused["status"] == "paused"
    changed = client.patch(f"/api/v1/moments/{moment['id']}", headers=headers, json={"min_amount": 50000}).json
    assert changed["min_amount"] == 50000 and changed["segments"] == ["Enterprise"]
    leader = api_token(roles=("leader",), email="leader@example.com")
    assert client.post("/api/v1/moments", headers=leader, json={}).status_code == 403
    assert client.get(f"/api/v1/moments/{moment['id']}", headers=leader).json["name"] == "Lost deals"


def test_a_closed_lost_deal_invites_its_owner_once_after_the_delay_in_working_hours(app, client, clock, make_person, api_token, smtp):
    configure(app)
    rep = _rep(make_person)  # Paris: the close at 14:00Z is 15:00 there, a Tuesday
    moment = _moment(client, api_token(roles=("pm",)), _published().id)
    post_signed(client, event_body("evt_a"), clock())
    post_signed(client, event_body("evt_b", stage="Closed Lost - Duplicate"), clock())  # the CRM says it twice
    run_worker(app)
    [invitation] = _invitations()
    assert (invitation.moment_id, invitation.person_id, invitation.trigger, invitation.status) == (
        moment["id"], rep.id, "closed_lost", "scheduled")
    assert invitation.send_at == parse_instant("2026-12-01T15:00:00Z")  # occurred 14:00Z + 60 min
    assert invitation.expires_at == parse_instant("2026-12-08T15:00:00Z")
    # Even told afresh that the deal just closed, the moment makes no second invitation.
    from surveys.deals.moments import on_deal_changed

    assert on_deal_changed(invitation.deal, None, clock(), clock()) == 0
    assert len(_invitations()) == 1
    assert run_moments(parse_instant("2026-12-01T14:59:00Z"))["sent"] == 0
    assert run_moments(parse_instant("2026-12-01T15:00:00Z"))["sent"] == 1
    assert smtp.wait_for(1) == 1
    message = smtp.messages[0]
    assert message["To"] == "Ana Rep <ana.rep@example.com>" and "Globex" in message["Subject"]
    assert run_moments(parse_instant("2026-12-01T15:01:00Z"))["sent"] == 0
    deals = client.get("/api/v1/deals", headers=api_token(roles=("leader",), email="l@example.com")).json
    assert [i["status"] for i in deals[0]["invitations"]] == ["sent"]


def test_filters_amount_segment_region_and_product(app, client, clock, make_person, api_token):
    configure(app)
    _rep(make_person)
    set_id = _published().id
    _moment(client, api_token(roles=("pm",)), set_id, min_amount=100000, segments=["Enterprise"], regions=["EMEA"],
            products=["SSO", "Analytics"])
    cases = {
        "small": {"amount": 99999, "products": ["SSO"]},
        "smb": {"segment": "SMB", "products": ["SSO"]},
        "na": {"region": "NA", "products": ["SSO"]},
        "other_product": {"products": ["Platform"]},
        "match": {"amount": 100000, "products": ["Platform", "Analytics"]},
    }
    for name, fields in cases.items():
        post_signed(client, event_body(f"evt_{name}", id=f"OPP-{name}", **fields), clock())
    run_worker(app)
    assert [db.session.get(Deal, i.deal_id).external_id for i in _invitations()] == ["OPP-match"]


def test_won_deals_and_paused_moments_do_not_invite_for_a_lost_only_moment(app, client, clock, make_person, api_token):
    configure(app)
    _rep(make_person)
    headers = api_token(roles=("pm",))
    lost = _moment(client, headers, _published().id)
    won = _moment(client, headers, _published("deal-won").id, name="Won deals", on=["closed_won"])
    client.post(f"/api/v1/moments/{won['id']}/pause", headers=headers)
    post_signed(client, event_body("evt_won", id="OPP-W", type="deal.closed_won", outcome="won", stage="Closed Won"), clock())
    post_signed(client, event_body("evt_lost", id="OPP-L"), clock())
    run_worker(app)
    assert [(i.moment_id, i.deal.external_id) for i in _invitations()] == [(lost["id"], "OPP-L")]


def test_working_hours_are_the_owners_own_across_time_zones():
    tuesday_1425z = parse_instant("2026-12-01T14:25:00Z")
    # Los Angeles: 06:25 local, before opening -> 09:00 PST = 17:00Z.
    assert within_working_hours(tuesday_1425z, "America/Los_Angeles", "09:00-18:00") == parse_instant("2026-12-01T17:00:00Z")
    # Tokyo: 23:25 local, after closing -> Wednesday 09:00 JST = 00:00Z.
    assert within_working_hours(tuesday_1425z, "Asia/Tokyo", "09:00-18:00") == parse_instant("2026-12-02T00:00:00Z")
    # Paris: 15:25 local, inside -> unchanged.
    assert within_working_hours(tuesday_1425z, "Europe/Paris", "09:00-18:00") == tuesday_1425z
    # Friday 17:30 in New York with hours to 17:00 -> Monday 09:00 EST.
    friday = parse_instant("2026-12-04T22:30:00Z")
    assert within_working_hours(friday, "America/New_York", "09:00-17:00") == parse_instant("2026-12-07T14:00:00Z")
    # Across the European clock change: Friday 2027-03-26 19:00 CET -> Monday 09:00 CEST = 07:00Z.
    assert within_working_hours(parse_instant("2027-03-26T18:00:00Z"), "Europe/Berlin", "09:00-18:00") == parse_instant("2027-03-29T07:00:00Z")


def test_the_tick_sends_at_the_owners_opening_time(app, client, clock, make_person, api_token, smtp):
    configure(app)
    _rep(make_person, zone="Asia/Tokyo")
    _moment(client, api_token(roles=("pm",)), _published().id, delay_minutes=30)
    post_signed(client, event_body("evt_tokyo"), clock())  # occurred 14:00Z = 23:00 JST, +30 min = 23:30
    run_worker(app)
    [invitation] = _invitations()
    assert invitation.send_at == parse_instant("2026-12-02T00:00:00Z")
    assert run_moments(parse_instant("2026-12-01T23:59:00Z"))["sent"] == 0
    assert run_moments(parse_instant("2026-12-02T00:00:00Z"))["sent"] == 1


def test_the_form_shows_the_deal_and_stores_the_answers_with_it(app, client, clock, make_person, api_token):
    configure(app)
    _rep(make_person)
    _moment(client, api_token(roles=("pm",)), _published().id)
    post_signed(client, event_body("evt_form"), clock())
    run_worker(app)
    [invitation] = _invitations()
    token = invitation_token(invitation)
    assert client.get(f"/d/{token}").status_code == 404  # not sent yet
    clock.set(parse_instant("2026-12-01T15:00:00Z"))
    run_moments(clock())
    page = client.get(f"/d/{token}")
    assert page.status_code == 200
    for fact in ("Globex", "180,000 USD", "Initrode", "2026-11-30", "Attributed."):
        assert fact in page.text, fact
    forged = client.post(f"/d/{token}", data={"loss_reason": "price", "closeness": "3"})  # no form token
    assert forged.status_code == 400 and db.session.scalar(select(func.count()).select_from(DealAnswer)) == 0
    bad = client.post(f"/d/{token}", data={"csrf_token": csrf_token_from(page.text), "closeness": "9"})
    assert bad.status_code == 422 and db.session.scalar(select(func.count()).select_from(DealAnswer)) == 0
    done = client.post(f"/d/{token}", data={"csrf_token": csrf_token_from(page.text), "loss_reason": "missing_feature",
                                            "product_gap": ["security", "integrations"], "closeness": "4",
                                            "save_story": "SSO with SCIM."})
    assert done.status_code == 303
    rows = db.session.scalars(select(DealAnswer).order_by(DealAnswer.question_key, DealAnswer.value_text)).all()
    assert [(r.question_key, r.value_num, r.value_text) for r in rows] == [
        ("closeness", 4.0, None), ("loss_reason", None, "missing_feature"), ("product_gap", None, "integrations"),
        ("product_gap", None, "security"), ("save_story", None, "SSO with SCIM.")]
    assert {r.deal_id for r in rows} == {invitation.deal_id}
    db.session.expire_all()
    assert _invitations()[0].status == "answered"
    assert client.get(f"/d/{token}x").status_code == 404


def test_one_daily_digest_per_rep_lists_every_deal_still_waiting(app, client, clock, make_person, api_token, smtp):
    configure(app)
    _rep(make_person)
    _moment(client, api_token(roles=("pm",)), _published().id, reminder_days=[1, 2])
    for n in range(3):
        post_signed(client, event_body(f"evt_{n}", id=f"OPP-{n}", account=f"Account {n}"), clock())
    run_worker(app)
    assert run_moments(parse_instant("2026-12-01T15:00:00Z"))["sent"] == 3
    assert smtp.wait_for(3) == 3
    # The rep answers one deal; the others wait.
    first = _invitations()[0]
    first.status, first.responded_at = "answered", parse_instant("2026-12-01T16:00:00Z")
    db.session.commit()
    report = run_moments(parse_instant("2026-12-02T15:00:00Z"))
    assert report == {"expired": 0, "sent": 0, "digests": 1}
    assert smtp.wait_for(4) == 4
    digest = smtp.messages[3]
    assert digest["Subject"] == "2 closed deals waiting for your answers"
    body = digest.get_body(preferencelist=("plain",)).get_content()
    assert "Account 1" in body and "Account 2" in body and "Account 0" not in body
    assert run_moments(parse_instant("2026-12-02T16:30:00Z"))["digests"] == 0  # once a day
    assert run_moments(parse_instant("2026-12-03T15:00:00Z"))["digests"] == 1  # the second reminder day
    assert run_moments(parse_instant("2026-12-04T15:00:00Z"))["digests"] == 0  # no reminder left
    assert db.session.scalar(select(func.count()).select_from(DealDigest)) == 2


def test_invitations_expire_and_the_form_closes(app, client, clock, make_person, api_token):
    configure(app)
    _rep(make_person)
    _moment(client, api_token(roles=("pm",)), _published().id, expire_days=2, reminder_days=[1])
    post_signed(client, event_body("evt_exp"), clock())
    run_worker(app)
    run_moments(parse_instant("2026-12-01T15:00:00Z"))
    [invitation] = _invitations()
    token = invitation_token(invitation)
    clock.set(parse_instant("2026-12-03T14:59:00Z"))
    assert client.get(f"/d/{token}").status_code == 200
    assert run_moments(parse_instant("2026-12-03T15:00:00Z"))["expired"] == 1
    clock.set(parse_instant("2026-12-03T15:00:00Z"))
    closed = client.get(f"/d/{token}")
    assert closed.status_code == 200 and "have closed" in closed.text
    assert client.post(f"/d/{token}", data={"loss_reason": "price"}).status_code == 410


def test_an_old_close_learned_late_is_not_asked_about(app, client, clock, make_person, api_token):
    configure(app)
    _rep(make_person)
    _moment(client, api_token(roles=("pm",)), _published().id)
    post_signed(client, event_body("evt_old", close_date="2026-10-01"), clock())
    run_worker(app)
    assert _invitations() == [] and db.session.scalar(select(func.count()).select_from(Deal)) == 1


def test_two_events_of_one_deal_racing_in_two_web_processes_make_one_invitation(app, client, make_person, api_token, redis_conn):
    """gunicorn with two workers, the real clock: both events are stored, a worker applies both, one invitation."""
    rep = _rep(make_person)
    _moment(client, api_token(roles=("pm",)), _published().id)
    db.session.commit()
    env = flask_env(app, DEAL_WEBHOOK_SECRET=SECRET)
    bodies = [event_body(f"evt_race_{n}", stage=f"Closed Lost {n}") for n in range(2)]
    results = []
    with gunicorn_server(env, workers=2) as base:
        barrier = threading.Barrier(len(bodies))

        def send(body):
            barrier.wait()
            stamp = int(time.time())
            results.append(requests.post(f"{base}/api/v1/deal-events", data=body, timeout=30, headers={
                "Content-Type": "application/json", "Canary-Signature": canary_signature(SECRET, stamp, body)}).status_code)

        threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(results) == [202, 202]
    app.config["CLOCK"].set(datetime.now(timezone.utc))
    run_worker(app)
    db.session.expire_all()
    [invitation] = _invitations()
    assert invitation.person_id == rep.id


def test_a_deal_moved_back_a_stage_and_one_closed_as_no_decision_trigger_their_moments(app, client, clock, make_person, api_token):
    configure(app)
    _rep(make_person)
    headers = api_token(roles=("pm",))
    back = _moment(client, headers, _published().id, name="Slipped", on=["stage_back"])
    stalled = _moment(client, headers, _published().id, name="No decision", on=["no_decision"])
    open_deal = {"type": "deal.updated", "outcome": "open", "close_date": "2027-01-31", "id": "OPP-S"}
    post_signed(client, event_body("evt_s1", stage="Negotiation", **open_deal), clock())
    run_worker(app)
    post_signed(client, event_body("evt_s2", stage="Proposal", **open_deal).replace(b"14:00:00Z", b"14:10:00Z"), clock())
    post_signed(client, event_body("evt_n", id="OPP-N", type="deal.no_decision", outcome="no_decision",
                                   stage="Closed - No Decision"), clock())
    run_worker(app)
    made = {(i.moment_id, i.deal.external_id, i.trigger) for i in _invitations()}
    assert made == {(back["id"], "OPP-S", "stage_back"), (stalled["id"], "OPP-N", "no_decision")}
    post_signed(client, event_body("evt_s3", stage="Negotiation", **open_deal).replace(b"14:00:00Z", b"14:20:00Z"), clock())
    run_worker(app)
    assert len(_invitations()) == 2  # moving forward again asks nothing


def test_a_worker_dying_before_its_moments_ran_loses_no_invitation(app, client, clock, make_person, api_token, smtp):
    """The worker applies the event and records its outcome, then dies
    before committing: the outcome and the moment's invitation are one
    transaction, so nothing was kept, and the tick hands the event to another
    worker that applies it and invites the owner (issue 15)."""
    from datetime import timedelta

    from cadence.jobs import tick
    from cadence.queues import get_queue
    from surveys.deals.models import DealEvent
    from surveys.deals.processing import _record_outcome, apply_event, claim_event

    configure(app)
    _rep(make_person)  # Paris
    _moment(client, api_token(roles=("pm",)), _published().id)
    post_signed(client, event_body("evt_crash"), clock())
    event_id = db.session.scalar(select(DealEvent.id))
    get_queue("cadence").empty()  # the worker took the job
    # The worker's own path up to the point where it used to commit the outcome...
    claimed = clock()
    attempt = claim_event(event_id, claimed)
    deal, _previous = apply_event(db.session.get(DealEvent, event_id), claimed)
    assert _record_outcome(event_id, attempt, status="processed", error=None, deal_id=deal.id, processed_at=claimed)
    # ...then it dies: its connection, and the transaction with it, is gone.
    db.session.rollback()
    db.session.close()
    assert db.session.scalar(select(DealEvent.status)) == "processing"
    assert db.session.scalar(select(func.count()).select_from(Deal)) == 0 and _invitations() == []
    assert tick((claimed + timedelta(minutes=9)).isoformat())["deal_events_requeued"] == 0
    clock.set(claimed + timedelta(minutes=11))
    assert tick(clock().isoformat())["deal_events_requeued"] == 1
    run_worker(app)
    db.session.expire_all()
    assert db.session.scalar(select(DealEvent.status)) == "processed"
    [invitation] = _invitations()
    assert (invitation.status, invitation.send_at) == ("scheduled", parse_instant("2026-12-01T15:00:00Z"))
    assert tick("2026-12-01T14:59:00Z")["deal_moments"]["sent"] == 0
    assert tick("2026-12-01T15:00:00Z")["deal_moments"]["sent"] == 1
    assert smtp.wait_for(1) == 1 and smtp.messages[0]["To"] == "Ana Rep <ana.rep@example.com>"
