"""What admins need to see to trust the schedule: the last tick, the cron
scheduler's heartbeat, workers, queue depths, failed jobs and deliveries,
skipped rounds. Shared by the operations page and `flask cadence status`."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from rq import Worker
from rq.cron import CronScheduler
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import select, update

from cadence.models import Cadence, Delivery, Invitation, Round, TickRun
from surveys.org.models import Person
from cadence.queues import PURPOSES, get_queue
from cadence.redis_server import connect
from surveys.extensions import db

# The cron scheduler enqueues a tick every minute: older than this is late.
TICK_LATE_AFTER = timedelta(minutes=3)


def status(now: datetime) -> dict:
    redis = connect(current_app)
    last_tick = db.session.scalar(select(TickRun).order_by(TickRun.started_at.desc()).limit(1))
    queues = []
    failed_jobs = []
    for purpose in PURPOSES:
        queue = get_queue(purpose)
        registry = FailedJobRegistry(queue=queue)
        queues.append({"name": queue.name, "waiting": queue.count, "failed": registry.count})
        for job_id in registry.get_job_ids(0, 19, desc=True):
            job = Job.fetch(job_id, connection=redis) if redis.exists(f"rq:job:{job_id}") else None
            failed_jobs.append(
                {
                    "id": job_id,
                    "queue": queue.name,
                    "function": job.func_name if job else "?",
                    "ended_at": job.ended_at if job else None,
                    "error": (job.latest_result().exc_string.strip().splitlines()[-1]
                              if job and job.latest_result() and job.latest_result().exc_string else ""),
                }
            )
    schedulers = [
        {"name": s.name, "last_heartbeat": s.last_heartbeat} for s in CronScheduler.all(redis)
    ]
    failed_deliveries = db.session.execute(
        select(Delivery.id, Delivery.kind, Delivery.last_error, Delivery.attempts, Person.email, Round.period_key, Cadence.name)
        .join(Invitation, Invitation.id == Delivery.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
        .join(Round, Round.id == Invitation.round_id)
        .join(Cadence, Cadence.id == Round.cadence_id)
        .where(Delivery.status == "failed")
        .order_by(Delivery.id.desc())
        .limit(50)
    ).all()
    skipped = db.session.execute(
        select(Round.period_key, Round.scheduled_at, Round.note, Cadence.name)
        .join(Cadence, Cadence.id == Round.cadence_id)
        .where(Round.status == "skipped")
        .order_by(Round.scheduled_at.desc())
        .limit(20)
    ).all()
    return {
        "now": now,
        "last_tick": last_tick,
        "tick_late": last_tick is None or now - last_tick.started_at > TICK_LATE_AFTER,
        "schedulers": schedulers,
        "workers": len(Worker.all(connection=redis)),
        "queues": queues,
        "failed_jobs": failed_jobs,
        "failed_deliveries": [row._asdict() for row in failed_deliveries],
        "skipped_rounds": [row._asdict() for row in skipped],
    }


def retry_failed_delivery(delivery_id: int, now: datetime) -> bool:
    """Give a failed delivery another go (an admin fixed the address, or the
    provider recovered); the next enqueue sends it while its round is open."""
    changed = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "failed")
        .values(status="pending", due_at=now, attempts=0, last_error=None)
    ).rowcount
    db.session.commit()
    return bool(changed)


def retry_failed_job(job_id: str) -> bool:
    for purpose in PURPOSES:
        registry = FailedJobRegistry(queue=get_queue(purpose))
        if job_id in registry.get_job_ids():
            registry.requeue(job_id)
            return True
    return False


def status_lines(report: dict) -> list[str]:
    tick = report["last_tick"]
    lines = [
        f"last tick: {tick.started_at:%Y-%m-%d %H:%M:%S} UTC (as of {tick.as_of:%Y-%m-%d %H:%M:%S})"
        + (" LATE" if report["tick_late"] else "")
        if tick else "last tick: never (is `flask --app wsgi cadence cron` running?)"
    ]
    if report["schedulers"]:
        for scheduler in report["schedulers"]:
            beat = scheduler["last_heartbeat"]
            lines.append(f"cron scheduler {scheduler['name']}: last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC" if beat else
                         f"cron scheduler {scheduler['name']}: no heartbeat")
    else:
        lines.append("cron scheduler: none running")
    lines.append(f"workers: {report['workers']}")
    for queue in report["queues"]:
        lines.append(f"queue {queue['name']}: {queue['waiting']} waiting, {queue['failed']} failed")
    for job in report["failed_jobs"]:
        lines.append(f"failed job {job['id']} ({job['function']}): {job['error']}")
    for delivery in report["failed_deliveries"]:
        lines.append(f"failed delivery {delivery['id']} {delivery['kind']} to {delivery['email']} "
                     f"({delivery['name']} {delivery['period_key']}): {delivery['last_error']}")
    for round_ in report["skipped_rounds"]:
        lines.append(f"skipped {round_['name']} {round_['period_key']}: {round_['note'] or ''}")
    return lines
