"""Faults with real processes, each bounded in time and
checked by counting rows and messages:

- Redis restarted mid-round, losing its jobs, under a running worker;
- the database connection dropped in the middle of a rep's submission;
- 200 concurrent submissions through a real gunicorn server;
- two workers and two cron schedulers through a whole round, against one of
  each.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.pool import NullPool

from cadence.clock import utcnow
from cadence.links import invitation_token
from cadence.models import Delivery, Invitation, Round
from cadence.planner import REQUEUE_QUEUED_AFTER, tick
from surveys.app import create_app
from surveys.extensions import db
from surveys.models import Answer, Response
from surveys.scorecard.tallies import tally_drift
from surveys.snapshots import ScorecardSnapshot
from tests.conftest import csrf_token_from, empty_all_tables
from tests.builders.loop import QUESTIONS, REPS, first_opening, link_path
from tests.servers import gunicorn_server, running, wait_until
from tests.test_processes import flask_env

pytestmark = pytest.mark.slow

FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
# What one rep posts (QUESTIONS of tests/test_loop.py) and the answer rows it makes:
# confidence, recommend, lost_deal, lost_to, two gaps, deals, notes.
ANSWERS = {"confidence": "4", "recommend": "9", "lost_deal": "yes", "lost_to": "acme", "gaps": ["sso", "api"],
           "deals": "3", "notes": "Pricing came up"}
ROWS_PER_RESPONSE = 8


def count(statement) -> int:
    db.session.expire_all()
    return db.session.scalar(statement)


def sent(kind: str) -> int:
    return count(select(func.count(Delivery.id)).where(Delivery.kind == kind, Delivery.status == "sent"))


def answer_rows_per_response() -> dict[int, int]:
    """How many answer rows each response has, as a GROUP BY."""
    db.session.expire_all()
    return dict(db.session.execute(
        select(Response.id, func.count(Answer.id)).outerjoin(Answer, Answer.response_id == Response.id).group_by(Response.id)
    ).all())


# -- Redis restarted mid-round ----------------------------------------------------------


class PrivateRedis:
    """A redis-server of its own on a unix socket, so restarting it does not
    disturb the session's. `restart(lose_data=True)` kills it (no shutdown
    save) and removes its append-only file: what a crash of a Redis without
    persistence, or a failover to an empty replica, looks like."""

    def __init__(self, folder: Path):
        from cadence.redis_server import start_redis_server

        self.folder = folder
        self.socket_path = str(folder / "redis.sock")
        self._start = start_redis_server
        self.process = None
        self.start()

    def start(self):
        import redis

        self.process = self._start(self.socket_path)
        wait_until(lambda: self._pings(redis), 10, "the private Redis")

    def _pings(self, redis) -> bool:
        try:
            return redis.Redis(unix_socket_path=self.socket_path, socket_timeout=1).ping()
        except (redis.RedisError, OSError):
            return False

    def restart(self, lose_data: bool):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        if lose_data:
            for leftover in self.folder.iterdir():
                if leftover.name.startswith(("redis.aof", "appendonlydir")) or leftover.suffix == ".rdb":
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        Path(self.socket_path).unlink(missing_ok=True)
        self.start()

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def test_redis_restarted_mid_round_loses_nothing_the_next_ticks_reenqueue_all_that_is_owed(app, client, api_token, smtp, tmp_path):
    redis_server = PrivateRedis(tmp_path)
    private = create_app({**app.config, "REDIS_URL": f"unix://{redis_server.socket_path}"})
    env = flask_env(private)
    try:
        opens = first_opening(client, api_token())
        with private.app_context():
            assert tick(opens).invites_enqueued == len(REPS)  # six invitations waiting in Redis...
        redis_server.restart(lose_data=True)  # ...and gone
        with private.app_context():
            from cadence.queues import get_queue

            assert get_queue("mail").count == 0

        # RQ's worker retries while Redis is away when it is idle, but exits if
        # Redis vanishes while it records a job: production supervises it.
        with running(FLASK + ["worker"], env=env, supervise=True):
            time.sleep(3)  # the worker is up and finds nothing to do
            assert smtp.messages == []
            with private.app_context():
                # Soon after, the queued deliveries might still be in Redis: not re-sent yet.
                assert tick(opens + timedelta(minutes=1)).requeued == 0
                # Once overdue, every one still owed is handed out again.
                assert tick(opens + REQUEUE_QUEUED_AFTER + timedelta(minutes=1)).requeued == len(REPS)
            assert smtp.wait_for(len(REPS), timeout=30) == len(REPS)
            wait_until(lambda: sent("invite") == len(REPS), 10, "the invitations marked sent")

            # Restarted again, under the running worker: it reconnects (or is
            # restarted), and the reminders the next tick enqueues go out.
            redis_server.restart(lose_data=True)
            with private.app_context():
                assert tick(opens + timedelta(days=2, minutes=1)).reminders_enqueued == len(REPS)
            assert smtp.wait_for(2 * len(REPS), timeout=40) == 2 * len(REPS)
            wait_until(lambda: sent("reminder-1") == len(REPS), 10, "the reminders marked sent")

        kinds = [message["X-Canary-Kind"] for message in smtp.messages]
        assert (kinds.count("invite"), kinds.count("reminder-1")) == (len(REPS), len(REPS))
        recipients = {(m["X-Canary-Kind"], m["To"].addresses[0].addr_spec) for m in smtp.messages}
        assert len(recipients) == 2 * len(REPS)  # nobody twice, nobody missed
    finally:
        redis_server.stop()


# -- The database connection dropped during a submission -----------------------------


@contextmanager
def connection_dropped_at_first_answer_insert(app):
    """Kill the request's database connection just before it writes the
    answers, after the response row went in: on PostgreSQL the server ends
    the backend (pg_terminate_backend); on SQLite the connection is closed
    under the open transaction. Only the first such statement is hit."""
    engine = db.engine
    armed = {"left": 1}
    url = app.config["SQLALCHEMY_DATABASE_URI"]

    def drop(conn, cursor, statement, parameters, context, executemany):
        if not armed["left"] or not statement.lstrip().upper().startswith("INSERT INTO ANSWERS"):
            return
        armed["left"] -= 1
        raw = conn.connection.dbapi_connection
        if engine.dialect.name == "postgresql":
            admin = create_engine(url, poolclass=NullPool)
            with admin.connect() as other:
                # The second argument waits (up to 5 s) until the backend is gone.
                other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": raw.info.backend_pid})
            admin.dispose()
        else:
            raw.close()

    event.listen(engine, "before_cursor_execute", drop)
    try:
        yield armed
    finally:
        event.remove(engine, "before_cursor_execute", drop)


def test_database_dropped_during_a_submission_shows_a_clear_error_keeps_nothing_half_written_and_resubmission_works(
        app, client, api_token, smtp, redis_conn):
    opens = first_opening(client, api_token())
    tick(opens)
    invitation = db.session.scalars(select(Invitation).order_by(Invitation.id)).first()
    path = f"/r/{invitation_token(invitation)}"
    page = client.get(path)
    assert page.status_code == 200
    data = {"csrf_token": csrf_token_from(page.text), **ANSWERS}

    with connection_dropped_at_first_answer_insert(app) as armed:
        failed = client.post(path, data=data)
        assert armed["left"] == 0, "the fault was not injected"
    assert failed.status_code == 500
    assert "Something went wrong on our side" in failed.text and "Please try again" in failed.text
    for leak in ("Traceback", "OperationalError", "ProgrammingError", "INSERT INTO", "sqlalchemy"):
        assert leak not in failed.text
    # Nothing half-written: no response without its answers, no answers, not marked answered.
    assert count(select(func.count(Response.id))) == 0
    assert count(select(func.count(Answer.id))) == 0
    assert db.session.get(Invitation, invitation.id).responded_at is None

    # The rep sends the same form again (same page, same token) and it is stored whole.
    again = client.post(path, data=data)
    assert again.status_code == 303, again.text
    assert answer_rows_per_response() == {count(select(Response.id)): ROWS_PER_RESPONSE}
    assert db.session.get(Invitation, invitation.id).responded_at is not None


# -- 200 concurrent submissions through gunicorn ------------------------------------------

SUBMISSIONS = 200
DOUBLE_SUBMITTERS = 20  # reps whose two submissions race each other (a double tap)


def set_up_reps_and_open_round(client, headers, reps: int) -> None:
    people = [{"email": f"load{i:03d}@example.com", "name": f"Load Rep {i}", "roles": ["rep"],
               "team": f"Sales / Pod {i % 8}", "region": f"R{i % 3}", "segment": "SMB", "timezone": "UTC"}
              for i in range(reps)]
    assert client.post("/api/v1/people", json=people, headers=headers).status_code == 200
    set_id = client.post("/api/v1/question-sets", json={"name": "Load", "questions": QUESTIONS}, headers=headers).json["id"]
    assert client.post(f"/api/v1/question-sets/{set_id}/publish", headers=headers).status_code == 200
    cadence = client.post("/api/v1/cadences", headers=headers, json={
        "name": "Load", "question_set_id": set_id, "rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "timezone": "UTC"}).json
    preview = client.get(f"/api/v1/cadences/{cadence['id']}/preview?count=1", headers=headers).json
    opens = preview["occurrences"][0]["opens_at"]
    from tests.builders.loop import instant

    assert tick(instant(opens), enqueue=False).invitations == reps


def test_200_concurrent_submissions_through_gunicorn_are_all_stored_none_twice_no_5xx(app, client, api_token, redis_conn):
    reps = SUBMISSIONS - DOUBLE_SUBMITTERS
    set_up_reps_and_open_round(client, api_token(), reps)
    paths = [f"/r/{invitation_token(invitation)}" for invitation in db.session.scalars(select(Invitation).order_by(Invitation.id))]
    assert len(paths) == reps
    db.session.commit()

    with gunicorn_server(flask_env(app)) as base:
        # Each submission is its own browser: its own cookie and form token.
        sessions = []
        for index in range(SUBMISSIONS):
            path = paths[index % reps]
            browser = requests.Session()
            page = browser.get(base + path, timeout=30)
            assert page.status_code == 200
            sessions.append((browser, path, csrf_token_from(page.text)))

        start = threading.Barrier(SUBMISSIONS)
        statuses: list[int | str] = [0] * SUBMISSIONS

        def submit(index):
            browser, path, token = sessions[index]
            start.wait(timeout=60)
            try:
                response = browser.post(base + path, data={"csrf_token": token, **ANSWERS}, allow_redirects=False, timeout=60)
                statuses[index] = response.status_code
            except requests.RequestException as error:
                statuses[index] = f"error: {type(error).__name__}"

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(SUBMISSIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    assert statuses == [303] * SUBMISSIONS, {status: statuses.count(status) for status in set(statuses)}
    rows = answer_rows_per_response()
    assert len(rows) == reps  # one response per invitation: double taps did not make a second
    assert set(rows.values()) == {ROWS_PER_RESPONSE}  # and no answer twice
    assert count(select(func.count(func.distinct(Response.invitation_id)))) == reps
    assert count(select(func.count(Invitation.id)).where(Invitation.responded_at.is_not(None))) == reps
    # The scorecard's tallies, added to by every racing submission, equal a recount.
    (round_,) = db.session.scalars(select(Round)).all()
    assert tally_drift(round_) == []


# -- Two workers and two cron schedulers through a whole round -------------------------


def run_a_round(app, client, headers, smtp, workers: int, schedulers: int) -> dict:
    """A monthly cadence whose occurrence is this minute: the cron schedulers'
    first ticks (on the real clock) open it, the workers deliver; reps answer;
    ticks as of later instants send the reminders and close the round, and
    the workers finalize the scorecard and mail the leaders' digest."""
    response = client.post("/api/v1/people", json=[
        {"email": email, "name": name, "roles": ["rep"], "team": team, "region": region, "segment": segment,
         "timezone": "UTC"} for email, name, team, region, segment, _ in REPS
    ] + [{"email": "lead@example.com", "name": "Lee Leader", "roles": ["leader"], "team": "Sales", "timezone": "UTC"}],
        headers=headers)
    assert response.status_code == 200, response.text
    set_id = client.post("/api/v1/question-sets", json={"name": "Pulse", "min_group_size": 3, "questions": QUESTIONS},
                         headers=headers).json["id"]
    client.post(f"/api/v1/question-sets/{set_id}/publish", headers=headers)
    now = utcnow()
    cadence = client.post("/api/v1/cadences", headers=headers, json={
        "name": "Monthly pulse", "question_set_id": set_id, "rrule": f"FREQ=MONTHLY;BYMONTHDAY={now.day}",
        "send_time": f"{now:%H:%M}",
        "timezone": "UTC", "open_days": 3, "reminder_days": [1], "starts_on": now.date().isoformat(),
        "audience": {"teams": ["Sales"]}})
    assert cadence.status_code == 201, cadence.text

    env = flask_env(app)
    commands = [FLASK + ["worker"]] * workers + [FLASK + ["cadence", "cron"]] * schedulers
    with running(*commands, env=env):
        smtp.wait_for(len(REPS), timeout=40)
        round_ = wait_until(lambda: count(select(func.count(Round.id)).where(Round.status == "open")) == 1
                            and db.session.scalar(select(Round)), 5, "the round")
        wait_until(lambda: sent("invite") == len(REPS), 10, "the invitations marked sent")
        links = {m["To"].addresses[0].addr_spec: link_path(m) for m in smtp.messages}
        for email in sorted(links)[:4]:
            page = client.get(links[email])
            posted = client.post(links[email], data={"csrf_token": csrf_token_from(page.text), **ANSWERS})
            assert posted.status_code == 303, posted.text

        # Day 2: the reminders (only the two who have not answered get one).
        tick(round_.opens_at + timedelta(days=1, minutes=1))
        smtp.wait_for(len(REPS) + 2, timeout=30)
        # The window ends: the round closes; a worker finalizes it and mails the digest.
        tick(round_.closes_at + timedelta(minutes=1))
        smtp.wait_for(len(REPS) + 3, timeout=30)
        wait_until(lambda: count(select(func.count(ScorecardSnapshot.id))) == 1, 20, "the finalized scorecard")
        time.sleep(2)  # anything sent twice would arrive now
        ticks = count(text("SELECT count(*) FROM tick_runs"))

    kinds = [m["X-Canary-Kind"] for m in smtp.messages]
    return {
        "rounds": count(select(func.count(Round.id))),
        "closed": count(select(func.count(Round.id)).where(Round.status == "closed")),
        "invitations": count(select(func.count(Invitation.id))),
        "deliveries": {(kind, status): number for kind, status, number in db.session.execute(
            select(Delivery.kind, Delivery.status, func.count()).group_by(Delivery.kind, Delivery.status))},
        "messages": {kind: kinds.count(kind) for kind in set(kinds)},
        "recipients": len({(m["X-Canary-Kind"], m["To"].addresses[0].addr_spec) for m in smtp.messages}),
        "responses": count(select(func.count(Response.id))),
        "answers": count(select(func.count(Answer.id))),
        "snapshots": count(select(func.count(ScorecardSnapshot.id))),
    } | {"ticks_ran": ticks}


@pytest.mark.system_clock  # real cron schedulers and workers in other processes read the system clock
def test_two_workers_and_two_cron_schedulers_run_a_whole_round_with_the_same_counts_as_one_of_each(
        app, client, api_token, smtp, redis_conn):
    single = run_a_round(app, client, api_token(roles=("pm", "admin"), email="ops1@example.com"), smtp, workers=1, schedulers=1)
    empty_all_tables()
    redis_conn.flushdb()
    smtp.reset()
    double = run_a_round(app, client, api_token(roles=("pm", "admin"), email="ops2@example.com"), smtp, workers=2, schedulers=2)

    # Two schedulers enqueue more ticks; everything else is the same.
    assert single.pop("ticks_ran") >= 3 and double.pop("ticks_ran") >= 4
    assert double == single
    assert single == {
        "rounds": 1, "closed": 1, "invitations": len(REPS),
        "deliveries": {("invite", "sent"): len(REPS), ("reminder-1", "sent"): 2, ("reminder-1", "cancelled"): 4},
        "messages": {"invite": len(REPS), "reminder-1": 2, "digest": 1}, "recipients": len(REPS) + 3,
        "responses": 4, "answers": 4 * ROWS_PER_RESPONSE, "snapshots": 1,
    }
