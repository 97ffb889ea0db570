"""Health checks for load balancers and monitoring (docs/deploy.md).

- `GET /healthz`: this web process can reach the database and Redis. A load
  balancer takes the process out of rotation on 503.
- `GET /healthz/workers`: the background side is alive: at least one RQ
  worker is registered, a cron scheduler has sent a heartbeat recently, and
  the last tick ran not long ago. Meant for monitoring (alert on 503), not
  for a load balancer: a stopped worker is no reason to stop serving pages.

Both are public (a load balancer does not sign in) and say only "ok" or
what is down: no host names, URLs, versions, error texts or worker names.
A healthy answer is 200 JSON; an unhealthy one is a 503 problem document
(RFC 9457) with the same checks listed.
"""

from __future__ import annotations

from datetime import timedelta

import redis
from flask import Blueprint, current_app, jsonify
from rq import Worker
from rq.cron import CronScheduler
from sqlalchemy import select, text

from cadence.clock import isoformat_z, utcnow
from cadence.models import TickRun
from cadence.redis_server import redis_url
from surveys.extensions import db

health_bp = Blueprint("health", __name__)

# The cron scheduler heartbeats at least every 60 s and enqueues a tick every
# minute: three missed minutes mean it (or the workers running ticks) stopped.
HEARTBEAT_LATE_AFTER = timedelta(minutes=3)
TICK_LATE_AFTER = timedelta(minutes=3)
# A health check must answer quickly even when Redis hangs.
REDIS_TIMEOUT_SECONDS = 2.0


def _redis() -> redis.Redis:
    """A Redis client with short timeouts, kept per app, used only here."""
    app = current_app._get_current_object()
    client = app.extensions.get("canary_health_redis")
    if client is None:
        client = redis.Redis.from_url(
            redis_url(app), socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        app.extensions["canary_health_redis"] = client
    return client


def database_reachable() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return True
    except Exception:
        current_app.logger.exception("health check: the database is unreachable")
        db.session.rollback()
        return False


def redis_reachable() -> bool:
    try:
        return bool(_redis().ping())
    except (redis.RedisError, OSError):
        current_app.logger.exception("health check: Redis is unreachable")
        return False


def _answer(checks: dict, unhealthy_detail: str, **facts):
    """200 with the checks when all are ok, else a 503 problem document
    (RFC 9457, as surveys.problems writes them) listing them."""
    if all(value == "ok" for value in checks.values()):
        response = jsonify({"status": "ok", "checks": checks, **facts})
    else:
        response = jsonify({"type": "about:blank", "title": "Service unavailable", "status": 503,
                            "detail": unhealthy_detail, "checks": checks, **facts})
        response.status_code = 503
        response.mimetype = "application/problem+json"
    response.headers["Cache-Control"] = "no-store"
    return response


@health_bp.get("/healthz")
def web():
    checks = {
        "database": "ok" if database_reachable() else "unreachable",
        "redis": "ok" if redis_reachable() else "unreachable",
    }
    return _answer(checks, "This web process cannot reach a service it needs.")


@health_bp.get("/healthz/workers")
def workers():
    now = utcnow()
    facts = {"workers": 0, "schedulers": 0, "last_tick_at": None}
    checks = {"workers": "unknown", "cron_scheduler": "unknown", "tick": "unknown"}
    if redis_reachable():
        connection = _redis()
        facts["workers"] = len(Worker.all(connection=connection))
        checks["workers"] = "ok" if facts["workers"] else "none registered"
        beats = [scheduler.last_heartbeat for scheduler in CronScheduler.all(connection)]
        fresh = [beat for beat in beats if beat is not None and now - beat <= HEARTBEAT_LATE_AFTER]
        facts["schedulers"] = len(fresh)
        checks["cron_scheduler"] = "ok" if fresh else ("heartbeat late" if beats else "none running")
    else:
        checks["workers"] = checks["cron_scheduler"] = "redis unreachable"
    try:
        last_tick = db.session.scalar(select(TickRun.started_at).order_by(TickRun.started_at.desc()).limit(1))
        db.session.rollback()
    except Exception:
        current_app.logger.exception("health check: the database is unreachable")
        db.session.rollback()
        checks["tick"] = "database unreachable"
    else:
        if last_tick is None:
            checks["tick"] = "never ran"
        else:
            facts["last_tick_at"] = isoformat_z(last_tick)
            checks["tick"] = "ok" if now - last_tick <= TICK_LATE_AFTER else "late"
    return _answer(checks, "Background processing is not running as it should: see the checks.", **facts)
