"""Real processes: the CLI of docs/api.md, a forking `worker --burst`, migrations."""

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from cadence.models import Delivery
from surveys.org.models import Person
from cadence.planner import tick
from surveys.extensions import db
from tests.conftest import ROOT, free_port
from tests.builders.loop import REPS, first_opening

pytestmark = pytest.mark.slow


def flask_env(app, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DATABASE_URL", "REDIS_URL"))}
    env.update(
        CANARY_ENV="development",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        DATABASE_POOLER=app.config["DATABASE_POOLER"],
        REDIS_URL=app.config["REDIS_URL"],
        SECRET_KEY=app.config["SECRET_KEY"],
        BASE_URL=app.config["BASE_URL"],
        MAIL_BACKEND="smtp",
        MAIL_SERVER=app.config["MAIL_SERVER"],
        MAIL_PORT=str(app.config["MAIL_PORT"]),
        MAIL_FROM=app.config["MAIL_FROM"],
        RQ_QUEUE_PREFIX=app.config["RQ_QUEUE_PREFIX"],
        CANARY_INSTANCE_DIR=app.config["INSTANCE_DIR"],
    )
    env.update(extra)
    return env


def flask(env, *args, input=None):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, input=input,
    )


def test_forking_worker_subprocess_delivers_every_invitation(app, client, api_token, smtp, redis_conn):
    tick(first_opening(client, api_token()))
    db.session.commit()
    result = flask(flask_env(app), "worker", "--burst")
    assert result.returncode == 0, result.stderr
    assert smtp.wait_for(len(REPS)) == len(REPS)
    db.session.expire_all()
    sent = db.session.scalar(select(func.count(Delivery.id)).where(Delivery.kind == "invite", Delivery.status == "sent"))
    assert sent == len(REPS)


def test_cli_users_tick_and_preview(app, client, api_token, smtp, redis_conn, clock):
    env = flask_env(app)
    created = flask(env, "users", "create", "--email", "New.PM@Example.com", "--name", "New PM", "--roles", "pm;leader",
                    "--password", "a long enough password")
    assert created.returncode == 0, created.stderr
    db.session.expire_all()
    person = db.session.scalar(select(Person).where(Person.email == "new.pm@example.com"))
    assert person.roles == {"pm", "leader"} and person.password_hash.startswith("$argon2id$")
    bad_role = flask(env, "users", "create", "--email", "x@example.com", "--name", "X", "--roles", "root", "--password", "0123456789ab")
    assert bad_role.returncode != 0 and "unknown role" in bad_role.stderr

    token = flask(env, "users", "token", "--email", "new.pm@example.com")
    assert token.returncode == 0, token.stderr
    headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
    assert client.get("/api/v1/cadences", headers=headers).status_code == 200

    opens = first_opening(client, api_token())
    cadence_id = client.get("/api/v1/cadences", headers=headers).json[0]["id"]
    # The command runs in another process, on the system clock unless told the suite's instant.
    preview = flask(env, "cadence", "preview", str(cadence_id), "--count", "2", "--now", clock().isoformat())
    assert preview.returncode == 0, preview.stderr
    assert opens.strftime("%Y-%m-%dT%H:%M:%SZ") in preview.stdout

    ticked = flask(env, "cadence", "tick", "--now", opens.isoformat())
    assert ticked.returncode == 0, ticked.stderr
    assert "opened Monthly pulse" in ticked.stdout and f"invites enqueued: {len(REPS)}" in ticked.stdout
    again = flask(env, "cadence", "tick", "--now", opens.isoformat())
    assert "opened" not in again.stdout and "invites enqueued: 0" in again.stdout
    wrong = flask(env, "cadence", "tick", "--now", "next tuesday")
    assert wrong.returncode == 2 and "ISO 8601" in wrong.stderr


def _empty_database_url(app, tmp_path):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgresql"):
        name = f"canary_migration_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return url.rsplit("/", 1)[0] + "/" + name, lambda: _drop(url, name)
    return f"sqlite:///{tmp_path / 'migrated.sqlite3'}", lambda: None


def _drop(url, name):
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def test_migrations_build_the_schema_without_drift(app, tmp_path):
    url, cleanup = _empty_database_url(app, tmp_path)
    try:
        env = flask_env(app, DATABASE_URL=url)
        upgraded = flask(env, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        checked = flask(env, "db", "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "No new upgrade operations detected" in checked.stdout + checked.stderr
    finally:
        cleanup()


def test_upgrading_copies_each_invitations_slice_onto_its_stored_answers(app, tmp_path):
    """Revision 8d4b6c2e1f07 fills the slice copy of answers stored before it."""
    url, cleanup = _empty_database_url(app, tmp_path)
    try:
        env = flask_env(app, DATABASE_URL=url, MAIL_BACKEND="outbox", CANARY_INSTANCE_DIR=str(tmp_path))
        for step in (("db", "upgrade"), ("demo", "seed"), ("db", "downgrade", "5f1e2a7c9b31"), ("db", "upgrade")):
            done = flask(env, *step)
            assert done.returncode == 0, (step, done.stderr)
        engine = create_engine(url)
        with engine.connect() as connection:
            answers, with_team, differing = connection.execute(text(
                "SELECT count(*), count(answers.team_id), sum(CASE WHEN answers.team_id = invitations.team_id"
                " AND answers.region = invitations.region AND answers.segment = invitations.segment THEN 0 ELSE 1 END)"
                " FROM answers JOIN responses ON responses.id = answers.response_id"
                " JOIN invitations ON invitations.id = responses.invitation_id"
            )).one()
        engine.dispose()
        assert answers > 2000 and with_team == answers and differing == 0
    finally:
        cleanup()


def test_upgrading_tallies_the_answers_already_stored(app, tmp_path):
    """Revision c5a1d7e3f9b2 tallies the answers stored before it, exactly as a recount does."""
    url, cleanup = _empty_database_url(app, tmp_path)
    try:
        env = flask_env(app, DATABASE_URL=url, MAIL_BACKEND="outbox", CANARY_INSTANCE_DIR=str(tmp_path))
        for step in (("db", "upgrade"), ("demo", "seed"), ("db", "downgrade", "b7d2f4a6c8e1"), ("db", "upgrade")):
            done = flask(env, *step)
            assert done.returncode == 0, (step, done.stderr)
        engine = create_engine(url)
        with engine.connect() as connection:
            tallied = connection.execute(text("SELECT sum(answers) FROM answer_tallies")).scalar()
            counted = connection.execute(text(
                "SELECT count(*) FROM answers JOIN questions ON questions.key = answers.question_key"
                " JOIN rounds ON rounds.id = answers.round_id AND questions.version_id = rounds.question_set_version_id"
                " WHERE questions.type <> 'text'")).scalar()
        engine.dispose()
        assert counted > 2000 and tallied == counted
        checked = flask(env, "scorecard", "check-tallies")
        assert checked.returncode == 0 and "0 differed" in checked.stdout, checked.stdout + checked.stderr
    finally:
        cleanup()


def test_demo_seed_builds_a_year_of_history_once(app, tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    env = flask_env(app, DATABASE_URL=url, MAIL_BACKEND="outbox", CANARY_INSTANCE_DIR=str(tmp_path))
    assert flask(env, "db", "upgrade").returncode == 0
    seeded = flask(env, "demo", "seed")
    assert seeded.returncode == 0, seeded.stderr
    assert "people: 79 imported" in seeded.stdout
    engine = create_engine(url)
    with engine.connect() as connection:
        closed = connection.execute(text("SELECT count(*) FROM rounds WHERE status = 'closed'")).scalar()
        open_rounds = connection.execute(text("SELECT count(*) FROM rounds WHERE status = 'open'")).scalar()
        answers = connection.execute(text("SELECT count(*) FROM answers")).scalar()
        deals = connection.execute(text("SELECT count(*), min(close_date), max(close_date) FROM deals WHERE outcome <> 'open'")).one()
        deal_answers = connection.execute(text("SELECT count(DISTINCT invitation_id) FROM deal_answers")).scalar()
    engine.dispose()
    assert (closed, open_rounds) == (12, 1) and answers > 2000
    assert deals[0] == 360 and deal_answers > 250  # a year of closed deals, most of them answered
    again = flask(env, "demo", "seed")
    assert again.returncode == 0 and "left it as it is" in again.stdout


def _start_dev(env, port):
    """`flask dev` in a session of its own, as a terminal runs a foreground
    command, once its web server answers."""
    import time
    import urllib.request

    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "dev", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/sign-in", timeout=2) as response:
                assert response.status == 200
                return process
        except OSError:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the web server did not come up"
            time.sleep(0.3)


def _ctrl_c(process) -> str:
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground process
    group. Returns everything `dev` and its children printed."""
    import signal

    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return output


def _scheduler_pids(redis_client) -> tuple[dict, list]:
    """({queue: pid of the worker scheduler holding its lock}, [pids of the
    registered cron schedulers]), read from RQ's own keys."""
    locks = {}
    for key in redis_client.keys("rq:scheduler-lock:*"):
        owner = redis_client.get(key)
        pid = redis_client.hget(f"rq:scheduler:{owner.decode()}", "pid") if owner else None
        locks[key.decode().split(":", 2)[2]] = int(pid) if pid else None
    crons = []
    for name in redis_client.zrange("rq:cron_schedulers", 0, -1):
        pid = redis_client.hget(f"rq:cron_scheduler:{name.decode()}", "pid")
        crons.append(int(pid) if pid else None)
    return locks, crons


def test_dev_starts_web_worker_cron_and_redis_and_ctrl_c_stops_them_all_cleanly(app, tmp_path):
    import time

    import psutil
    import redis

    from cadence.queues import PURPOSES, queue_name
    from cadence.redis_server import start_redis_server

    port = free_port()
    prefix = "canary-dev-test"
    env = flask_env(app, DATABASE_URL=f"sqlite:///{tmp_path / 'dev.sqlite3'}", MAIL_BACKEND="outbox",
                    CANARY_INSTANCE_DIR=str(tmp_path), RQ_QUEUE_PREFIX=prefix)
    del env["REDIS_URL"]  # dev starts the embedded Redis itself
    assert flask(env, "db", "upgrade").returncode == 0
    socket_path = str(tmp_path / "redis.sock")
    queues = {queue_name(purpose, prefix) for purpose in PURPOSES}
    process = _start_dev(env, port)
    try:
        children = psutil.Process(process.pid).children(recursive=True)
        commands = " ".join(" ".join(child.cmdline()) for child in children)
        for part in ("redis-server", " run ", " worker", "cadence cron"):
            assert part in commands, f"{part!r} not started: {commands}"
        # The cron scheduler enqueues a tick at once and the worker runs it;
        # the worker's scheduler holds the lock of each of its queues.
        redis_client = redis.Redis(unix_socket_path=socket_path)
        deadline = time.monotonic() + 20
        while not (redis_client.keys("rq:results:*") or redis_client.keys("rq:job:*")) \
                or set(_scheduler_pids(redis_client)[0]) != queues:
            assert time.monotonic() < deadline, f"no tick job or no scheduler locks: {_scheduler_pids(redis_client)}"
            time.sleep(0.3)
        redis_client.close()
        output = _ctrl_c(process)
        assert "Canary is running at" in output
        assert "Traceback" not in output, output
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert alive == [], f"still running after Ctrl-C: {[c.cmdline() for c in alive]}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)

    # What the append-only file kept: no lock, no live worker, no cron scheduler.
    inspector = start_redis_server(socket_path)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis_client = redis.Redis(unix_socket_path=socket_path)
                redis_client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                assert time.monotonic() < deadline, "the inspecting Redis did not start"
                time.sleep(0.05)
        assert redis_client.dbsize() > 0  # the file was written: the tick's job and result are there
        assert redis_client.keys("rq:scheduler-lock:*") == []
        assert redis_client.zrange("rq:cron_schedulers", 0, -1) == []
        assert redis_client.smembers("rq:workers") == set()
        redis_client.close()
    finally:
        inspector.terminate()
        inspector.wait(timeout=10)

    # A restart schedules at once: the new worker's scheduler holds every lock
    # and the one registered cron scheduler is the new one.
    process = _start_dev(env, port)
    try:
        started = {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
        redis_client = redis.Redis(unix_socket_path=socket_path)
        deadline = time.monotonic() + 15
        while True:
            locks, crons = _scheduler_pids(redis_client)
            pids = {child.pid for child in psutil.Process(process.pid).children(recursive=True)} | started
            if set(locks) == queues and set(locks.values()) <= pids and crons and set(crons) <= pids:
                break
            assert time.monotonic() < deadline, f"stale locks after a restart: {locks}, cron {crons}"
            time.sleep(0.3)
        redis_client.close()
        output = _ctrl_c(process)
        assert "Traceback" not in output, output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
