"""The cadence engine through the tick: downtime, skip and move, grace, late
joiners, inactive people, nudges, per-recipient time zones, send rate,
concurrent ticks, operations."""

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from cadence.models import Cadence, Delivery, Invitation, Round
from cadence.planner import tick
from surveys.extensions import db
from tests.conftest import ROOT, run_worker
from tests.builders.loop import REPS, answer_through_link, instant, link_path, set_up_org_and_cadence

UTC = timezone.utc


def preview(client, headers, cadence_id, count=3):
    return client.get(f"/api/v1/cadences/{cadence_id}/preview?count={count}", headers=headers).json["occurrences"]


def test_scheduler_down_for_weeks_opens_the_open_window_once_late_and_records_the_rest_as_skipped(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers, rrule="FREQ=WEEKLY;BYDAY=MO", open_days=3, reminder_days=[])
    upcoming = preview(client, headers, cadence["id"], count=4)
    # Down from before the first occurrence until one day into the fourth.
    back = instant(upcoming[3]["opens_at"]) + timedelta(days=1)
    report = tick(back)
    assert len(report.skipped) == 3 and report.opened == [f"Monthly pulse {upcoming[3]['period_key']} (late)"]
    rounds = {r.period_key: r for r in db.session.scalars(select(Round))}
    assert [rounds[o["period_key"]].status for o in upcoming] == ["skipped", "skipped", "skipped", "open"]
    assert rounds[upcoming[0]["period_key"]].note.startswith("missed")
    assert rounds[upcoming[3]["period_key"]].late is True
    again = tick(back + timedelta(minutes=1))
    assert not again.opened and not again.skipped
    run_worker(app)
    assert smtp.wait_for(len(REPS)) == len(REPS)  # one round's invitations, no burst of old ones
    rows = client.get(f"/api/v1/cadences/{cadence['id']}/rounds", headers=headers).json
    assert [r["status"] for r in rows] == ["open", "skipped", "skipped", "skipped"]


def test_one_round_moved_and_another_skipped_without_shifting_the_series(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers)
    # Future occurrences (not one whose window is already open and opens at the next tick).
    first, second, third = [o for o in preview(client, headers, cadence["id"], count=4) if not o["due_now"]][:3]
    first_day = datetime.fromisoformat(first["opens_at_local"]).date()
    moved = client.put(f"/api/v1/cadences/{cadence['id']}/occurrences/{first['period_key']}",
                       json={"action": "move", "opens_on": (first_day + timedelta(days=3)).isoformat()}, headers=headers)
    assert moved.status_code == 200, moved.text
    skipped = client.put(f"/api/v1/cadences/{cadence['id']}/occurrences/{second['period_key']}",
                         json={"action": "skip"}, headers=headers)
    assert skipped.status_code == 200
    too_far = client.put(f"/api/v1/cadences/{cadence['id']}/occurrences/{third['period_key']}",
                         json={"action": "move", "opens_on": (first_day + timedelta(days=200)).isoformat()}, headers=headers)
    assert too_far.status_code == 422 and "at most" in too_far.json["errors"]["opens_on"]
    after = [o for o in preview(client, headers, cadence["id"], count=4) if not o["due_now"]]
    assert after[0]["moved_from"] == first_day.isoformat() and after[1]["skipped"] is True
    assert after[2]["opens_at"] == third["opens_at"]  # the series is unchanged

    assert not tick(instant(first["opens_at"])).opened  # not on the usual date any more
    report = tick(instant(after[0]["opens_at"]))
    assert report.opened == [f"Monthly pulse {first['period_key']}"]
    report = tick(instant(second["opens_at"]) + timedelta(minutes=1))
    assert report.skipped == [f"Monthly pulse {second['period_key']} (skipped by a PM)"]
    assert tick(instant(third["opens_at"])).opened == [f"Monthly pulse {third['period_key']}"]
    statuses = dict(db.session.execute(select(Round.period_key, Round.status)).all())
    assert {key: statuses[key] for key in (first["period_key"], second["period_key"], third["period_key"])} == {
        first["period_key"]: "closed", second["period_key"]: "skipped", third["period_key"]: "open"}


def test_grace_period_accepts_answers_after_the_close_but_reminders_stop_at_it(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers, open_days=3, reminder_days=[1, 2], grace_days=2)
    first = preview(client, headers, cadence["id"], count=1)[0]
    opens, nominal_close = instant(first["opens_at"]), instant(first["closes_at"])
    assert first["reminders_at"] and all(instant(r) < nominal_close for r in first["reminders_at"])
    tick(opens)
    run_worker(app)
    smtp.wait_for(len(REPS))
    path = link_path(smtp.messages[0])
    round_ = db.session.scalar(select(Round))
    assert round_.closes_at == nominal_close + timedelta(days=2)
    tick(nominal_close + timedelta(hours=1))  # after the nominal close, within grace
    assert db.session.scalar(select(Round.status)) == "open"
    ok = answer_through_link(client, path, {"confidence": "4", "recommend": "9", "lost_deal": "no", "deals": "2"})
    assert ok.status_code == 303
    due_after_close = db.session.scalar(select(func.count(Delivery.id)).where(Delivery.due_at >= nominal_close))
    assert due_after_close == 0
    tick(round_.closes_at)
    assert db.session.scalar(select(Round.status)) == "closed"


def test_late_joiners_are_invited_and_inactive_people_get_no_reminder(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers, reminder_days=[2], add_late_joiners=True)
    first = preview(client, headers, cadence["id"], count=1)[0]
    opens = instant(first["opens_at"])
    tick(opens)
    run_worker(app)
    smtp.wait_for(len(REPS))
    smtp.messages.clear()
    joined = client.post("/api/v1/people", headers=headers, json=[
        {"email": "gus.new@example.com", "name": "Gus New", "roles": ["rep"], "team": "Sales / NA / SMB", "timezone": "UTC"},
        {"email": "fay.rep@example.com", "name": "Fay Rep", "roles": ["rep"], "team": "Sales / NA / SMB",
         "timezone": "America/Denver", "active": False},
    ])
    assert joined.status_code == 200, joined.text
    report = tick(opens + timedelta(hours=1))
    assert report.late_joiners == 1
    run_worker(app)
    smtp.wait_for(1)
    assert [m["To"].addresses[0].addr_spec for m in smtp.messages] == ["gus.new@example.com"]
    smtp.messages.clear()
    tick(opens + timedelta(days=2, hours=2))  # Gus's ladder starts from his own invitation
    run_worker(app)
    smtp.wait_for(len(REPS))
    reminded = sorted(m["To"].addresses[0].addr_spec for m in smtp.messages)
    assert "fay.rep@example.com" not in reminded and "gus.new@example.com" in reminded
    assert len(reminded) == len(REPS)  # five remaining reps plus Gus
    fay = db.session.scalar(select(Delivery).join(Invitation).where(Delivery.kind == "reminder-1", Delivery.status == "cancelled"))
    assert fay.last_error == "the person is no longer active"


def test_nudge_reaches_non_responders_and_is_refused_twice_a_day(app, client, api_token, clock, smtp, redis_conn):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers, reminder_days=[])
    opens = instant(preview(client, headers, cadence["id"], count=1)[0]["opens_at"])
    tick(opens)
    run_worker(app)
    smtp.wait_for(len(REPS))
    answer_through_link(client, link_path(smtp.messages[0]), {"confidence": "4", "recommend": "9", "lost_deal": "no", "deals": "2"})
    smtp.messages.clear()
    round_id = db.session.scalar(select(Round.id))
    # The nudge is judged against the app's clock: move the round's window around now.
    now = clock()
    db.session.execute(Round.__table__.update().values(opens_at=now - timedelta(hours=1), closes_at=now + timedelta(days=3)))
    db.session.commit()
    first = client.post(f"/api/v1/rounds/{round_id}/nudge", headers=headers)
    assert first.status_code == 200 and first.json == {"nudged": len(REPS) - 1}
    run_worker(app)
    assert smtp.wait_for(len(REPS) - 1) == len(REPS) - 1
    second = client.post(f"/api/v1/rounds/{round_id}/nudge", headers=headers)
    assert second.status_code == 409 and "24 hours" in second.json["detail"]
    assert db.session.scalar(select(func.count(Delivery.id)).where(Delivery.kind.like("nudge-%"))) == len(REPS) - 1


def test_recipient_time_zone_sends_at_nine_local_for_each_rep(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers, timezone="recipient", reminder_days=[2])
    first = preview(client, headers, cadence["id"], count=1)[0]
    report = tick(instant(first["opens_at"]))
    assert report.opened and report.invites_enqueued == 0  # nobody's 09:00 yet (UTC+14 has no rep)
    invitations = db.session.scalars(select(Invitation)).all()
    for invitation in invitations:
        local = invitation.send_at.astimezone(ZoneInfo(invitation.timezone))
        assert local.strftime("%H:%M") == "09:00"
        reminder = db.session.scalar(select(Delivery.due_at).where(Delivery.invitation_id == invitation.id, Delivery.kind == "reminder-1"))
        assert reminder.astimezone(ZoneInfo(invitation.timezone)).strftime("%H:%M") == "09:00"
    berlin = next(i for i in invitations if i.timezone == "Europe/Berlin")
    report = tick(berlin.send_at)
    run_worker(app)
    smtp.wait_for(1)
    got = {m["To"].addresses[0].addr_spec for m in smtp.messages}
    assert "ana.rep@example.com" in got and "fay.rep@example.com" not in got  # Denver is still asleep


def test_send_rate_is_respected_across_the_batch(app, client, api_token, smtp, redis_conn):
    import time

    app.config["MAIL_RATE_PER_SECOND"] = 2
    stamps = []
    original = smtp.handle_DATA

    async def stamping(server, session, envelope):
        stamps.append(time.monotonic())
        return await original(server, session, envelope)

    smtp.handle_DATA = stamping
    try:
        headers = api_token()
        cadence = set_up_org_and_cadence(client, headers, reminder_days=[])
        tick(instant(preview(client, headers, cadence["id"], count=1)[0]["opens_at"]))
        run_worker(app)
        smtp.wait_for(len(REPS))
    finally:
        app.config["MAIL_RATE_PER_SECOND"] = 0
        del smtp.handle_DATA
    assert len(stamps) == len(REPS)
    # No more than 2 messages in any window shorter than one second.
    assert all(later - earlier >= 0.9 for earlier, later in zip(stamps, stamps[2:]))


def test_two_ticks_in_two_processes_at_the_same_instant_create_one_of_everything(app, client, api_token, smtp, redis_conn):
    from tests.test_processes import flask_env

    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers, reminder_days=[2, 3])
    opens = preview(client, headers, cadence["id"], count=1)[0]["opens_at"]
    env = flask_env(app)
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "cadence", "tick", "--now", opens]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum("opened Monthly pulse" in out for out, _ in outputs) == 1, outputs
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Round.id))) == 1
    assert db.session.scalar(select(func.count(Invitation.id))) == len(REPS)
    kinds = dict(db.session.execute(select(Delivery.kind, func.count()).group_by(Delivery.kind)).all())
    assert kinds == {"invite": len(REPS), "reminder-1": len(REPS), "reminder-2": len(REPS)}
    run_worker(app)
    assert smtp.wait_for(len(REPS)) == len(REPS)
    smtp.wait_for(len(REPS) + 1, timeout=1)
    assert len(smtp.messages) == len(REPS)


def test_operations_page_and_status_command_show_failures_and_skips(app, client, api_token, smtp, redis_conn, signed_in_client):
    from tests.test_processes import flask

    app.config["MAIL_RETRY_INTERVALS"] = [0]
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers, rrule="FREQ=WEEKLY;BYDAY=MO", open_days=3, reminder_days=[])
    upcoming = preview(client, headers, cadence["id"], count=2)
    smtp.refuse_addresses = {"ben.rep@example.com"}
    tick(instant(upcoming[1]["opens_at"]) + timedelta(hours=1))  # the first was missed
    run_worker(app)
    smtp.wait_for(len(REPS) - 1)
    admin = signed_in_client(roles=("admin",))
    page = admin.get("/cadences/operations")
    assert page.status_code == 200
    assert "ben.rep@example.com" in page.text and "550" in page.text
    assert upcoming[0]["period_key"] in page.text and "missed" in page.text
    from tests.test_processes import flask_env

    result = flask(flask_env(app), "cadence", "status")
    assert result.returncode == 0, result.stderr
    assert "last tick:" in result.stdout and "failed delivery" in result.stdout and "ben.rep@example.com" in result.stdout
    # An admin retries once the address is fixed.
    smtp.refuse_addresses = set()
    failed_id = db.session.scalar(select(Delivery.id).where(Delivery.status == "failed"))
    from tests.conftest import csrf_token_from

    retry = admin.post(f"/cadences/operations/deliveries/{failed_id}/retry", data={"csrf_token": csrf_token_from(page.text)})
    assert retry.status_code == 302
    run_worker(app)
    smtp.wait_for(len(REPS))
    assert "ben.rep@example.com" in {m["To"].addresses[0].addr_spec for m in smtp.messages}
