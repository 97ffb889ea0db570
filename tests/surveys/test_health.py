"""Health endpoints: `/healthz` (web) and `/healthz/workers` (workers, cron
scheduler, tick), with real Redis, a real worker and a real cron scheduler."""

import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from cadence.clock import utcnow
from cadence.models import TickRun
from surveys.app import create_app
from surveys.extensions import db
from tests.conftest import ROOT
from tests.test_processes import flask_env

WEB_KEYS = {"status", "checks"}
WORKER_KEYS = {"status", "checks", "workers", "schedulers", "last_tick_at"}
PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_reveals_nothing(response, app_config):
    """No connection string, socket path, host name or secret in the body."""
    body = response.get_data(as_text=True)
    for secret in (app_config["SQLALCHEMY_DATABASE_URI"], app_config["REDIS_URL"], app_config["SECRET_KEY"], "Traceback"):
        assert secret not in body
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_answers_200_when_database_and_redis_are_reachable(app, client, redis_conn):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert set(response.json) == WEB_KEYS
    assert_reveals_nothing(response, app.config)


def test_healthz_answers_503_problem_naming_redis_when_redis_is_down(app, tmp_path, redis_conn):
    dead_socket = tmp_path / "nobody-listens.sock"
    broken = create_app({**app.config, "REDIS_URL": f"unix://{dead_socket}"})
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["checks"] == {"database": "ok", "redis": "unreachable"}
    assert set(response.json) == PROBLEM_KEYS | {"checks"}
    assert str(dead_socket) not in response.get_data(as_text=True)
    assert_reveals_nothing(response, app.config)


def test_healthz_answers_503_problem_naming_the_database_when_it_is_unreachable(app, redis_conn):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = f"postgresql+psycopg://canary:not-shown@127.0.0.1:{port}/canary"
    broken = create_app({**app.config, "SQLALCHEMY_DATABASE_URI": unreachable})
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "unreachable", "redis": "ok"}
    assert str(port) not in response.get_data(as_text=True) and "not-shown" not in response.get_data(as_text=True)


def test_workers_health_is_503_with_each_reason_when_nothing_runs_and_the_tick_is_late(app, client, redis_conn):
    response = client.get("/healthz/workers")
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert response.json["checks"] == {"workers": "none registered", "cron_scheduler": "none running", "tick": "never ran"}
    assert set(response.json) == PROBLEM_KEYS | WORKER_KEYS

    ran = utcnow() - timedelta(minutes=10)
    db.session.add(TickRun(as_of=ran, started_at=ran, finished_at=ran, summary={}))
    db.session.commit()
    response = client.get("/healthz/workers")
    assert response.status_code == 503
    assert response.json["checks"]["tick"] == "late"
    assert response.json["last_tick_at"] == ran.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_reveals_nothing(response, app.config)


@pytest.mark.slow
@pytest.mark.system_clock  # the real cron scheduler's heartbeat and ticks are stamped by the system clock
def test_workers_health_is_200_with_a_real_worker_and_cron_scheduler_and_503_once_the_worker_stops(app, client, redis_conn):
    env = flask_env(app)
    command = [sys.executable, "-m", "flask", "--app", "wsgi"]
    worker = subprocess.Popen(command + ["worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cron = subprocess.Popen(command + ["cadence", "cron"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The scheduler enqueues a tick as it starts; the worker runs it.
        deadline = time.monotonic() + 40
        while (response := client.get("/healthz/workers")).status_code != 200:
            assert time.monotonic() < deadline, f"never healthy: {response.json}"
            time.sleep(0.5)
        assert response.json["checks"] == {"workers": "ok", "cron_scheduler": "ok", "tick": "ok"}
        assert (response.json["workers"], response.json["schedulers"]) == (1, 1)
        assert set(response.json) == WORKER_KEYS
        assert_reveals_nothing(response, app.config)

        worker.send_signal(signal.SIGTERM)  # a warm shutdown deregisters the worker
        worker.wait(timeout=30)
        response = client.get("/healthz/workers")
        assert response.status_code == 503
        assert response.json["checks"]["workers"] == "none registered"
        assert response.json["checks"]["cron_scheduler"] == "ok"
    finally:
        for process in (worker, cron):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.mark.slow
def test_cadence_status_and_the_operations_page_list_a_running_cron_scheduler(app, signed_in_client, redis_conn):
    """What docs/deploy.md tells operators to watch must work while a cron
    scheduler runs (it registers itself and heartbeats in Redis)."""
    from rq.cron import CronScheduler

    from cadence.redis_server import connect
    from tests.test_processes import flask

    env = flask_env(app)
    cron = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "cadence", "cron"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not CronScheduler.all(connect(app)):
            assert time.monotonic() < deadline, "the cron scheduler did not register"
            time.sleep(0.3)
        status = flask(env, "cadence", "status")
        assert status.returncode == 0, status.stderr
        assert status.stdout.count("cron scheduler ") == 1 and "last heartbeat" in status.stdout
        page = signed_in_client(roles=("admin",)).get("/cadences/operations")
        assert page.status_code == 200
        assert "heartbeat" in page.text
    finally:
        cron.terminate()
        cron.wait(timeout=15)
