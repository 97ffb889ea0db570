"""Shared set-up for the benchmarks: a fresh database per benchmark (a SQLite
file, or a new PostgreSQL database next to BENCH_DATABASE_URL), a private
Redis, bulk-inserted people, and a free port and a wait for the gunicorn the
HTTP benchmarks (B4, B7) start."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import tempfile
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert, text

UTC = timezone.utc


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    """Until the gunicorn at `base` answers /healthz (raises if it exits or never does)."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited before answering")
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or its workers still loading the app on a busy machine
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not answer /healthz")
        time.sleep(0.3)


def fresh_database_url(database: str, name: str, workdir: Path) -> str:
    if database == "sqlite":
        return f"sqlite:///{workdir / (name + '.sqlite3')}"
    from config import database_url

    base = database_url(os.environ["BENCH_DATABASE_URL"])
    # Named after BENCH_DATABASE_URL's database too, so benchmarks run from
    # several checkouts against one server do not drop each other's.
    name = f"{base.rsplit('/', 1)[1].split('?')[0]}_{name}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


@contextmanager
def bench_app(database: str, name: str, **config):
    """An app on a fresh database with the schema, and a private Redis."""
    from cadence.redis_server import start_redis_server, stop_embedded_redis
    from surveys.app import create_app
    from surveys.caches import forget_all as forget_cached_rows
    from surveys.extensions import db

    with tempfile.TemporaryDirectory(prefix=f"canary-{name}-") as work:
        workdir = Path(work)
        socket_path = str(workdir / "redis.sock")
        redis_process = start_redis_server(socket_path)
        _wait_for(lambda: Path(socket_path).exists())
        url = fresh_database_url(database, name, workdir)
        settings = {
            "CANARY_ENV": "testing", "TESTING": False, "SECRET_KEY": "bench-" + "x" * 40,
            "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": f"unix://{socket_path}", "RQ_QUEUE_PREFIX": f"bench-{name}",
            "INSTANCE_DIR": str(workdir), "MAIL_BACKEND": "outbox", "BASE_URL": "http://bench.local", **config,
        }
        app = create_app(settings)
        with app.app_context():
            db.create_all()
            forget_cached_rows()  # a new database: ids start again
            try:
                yield app, workdir, settings
            finally:
                db.session.remove()
                db.engine.dispose()
        stop_embedded_redis(socket_path)
        redis_process.wait(timeout=10)


def _wait_for(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.02)


def add_reps(count: int, teams: int = 40) -> None:
    """`count` active reps in `teams` teams under "Sales", in bulk."""
    from surveys.org.models import Person, Team
    from surveys.extensions import db

    db.session.add(Team(name="Sales", path="Sales"))
    db.session.flush()
    parent_id = db.session.scalar(text("SELECT id FROM teams WHERE path = 'Sales'"))
    db.session.execute(insert(Team), [{"name": f"Team {t}", "path": f"Sales / Team {t}", "parent_id": parent_id} for t in range(teams)])
    team_ids = [row[0] for row in db.session.execute(text("SELECT id FROM teams WHERE parent_id IS NOT NULL ORDER BY id"))]
    zones = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney", "America/Los_Angeles", "UTC"]
    now = datetime.now(UTC)
    for start in range(0, count, 5000):
        rows = [
            {"email": f"rep{i:06d}@bench.local", "name": f"Rep {i}", "team_id": team_ids[i % len(team_ids)],
             "region": f"R{i % 6}", "segment": f"S{i % 3}", "timezone": zones[i % len(zones)], "active": True,
             "session_version": 0, "created_at": now, "updated_at": now}
            for i in range(start, min(count, start + 5000))
        ]
        db.session.execute(insert(Person), rows)
    db.session.execute(text("INSERT INTO person_roles (person_id, role) SELECT id, 'rep' FROM people"))
    db.session.commit()


def published_set(owner=None):
    from surveys.extensions import db
    from surveys.questions.drafts import create_question_set, publish

    question_set = create_question_set(owner, {"name": "Bench pulse", "questions": [
        {"key": "confidence", "type": "scale", "prompt": "How confident are you?"},
        {"key": "recommend", "type": "nps", "prompt": "Would you recommend us?"},
        {"key": "lost_deal", "type": "yes_no", "prompt": "Did you lose a deal?"},
    ]})
    publish(question_set)
    db.session.commit()
    return question_set


def monthly_cadence(question_set, name="Bench cadence", **fields):
    from cadence.cadences import create_cadence
    from surveys.extensions import db

    cadence = create_cadence({"name": name, "question_set_id": question_set.id, "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
                              "timezone": "UTC", "reminder_days": [2, 4], "starts_on": date(2024, 1, 1).isoformat(),
                              **fields}, None, datetime(2024, 1, 1, tzinfo=UTC))
    db.session.commit()
    return cadence


def median_seconds(function, repeat: int = 5) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)
