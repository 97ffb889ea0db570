"""RQ queues, named by purpose, and the worker that runs them.

- `cadence`: planning (the tick);
- `mail`: delivery batches, always enqueued with `Retry`;
- `rollups`: work after a round closes (finalized scorecard, leaders' digest).

Queue names carry a prefix (RQ_QUEUE_PREFIX) so several installations or test
runs can share one Redis. Connections are always passed explicitly.
"""

from flask import current_app
from rq import Queue, Retry, SimpleWorker, Worker

from cadence.redis_server import connect

PURPOSES = ("cadence", "mail", "rollups")


def queue_name(purpose: str, prefix: str) -> str:
    return f"{prefix}-{purpose}"


def get_queue(purpose: str, app=None) -> Queue:
    app = app or current_app._get_current_object()
    return Queue(queue_name(purpose, app.config["RQ_QUEUE_PREFIX"]), connection=connect(app))


def mail_retry(app=None) -> Retry:
    """Transient failures are retried with backoff (seconds between tries)."""
    app = app or current_app._get_current_object()
    intervals = app.config.get("MAIL_RETRY_INTERVALS", [10, 60, 300, 900])
    return Retry(max=len(intervals), interval=list(intervals))


def run_jobs_in_this_process(app, purposes=None) -> None:
    """Run every queued job in this process, without forking, until the
    queues are empty: what the tests use to see a job's effects in their own
    app. Jobs scheduled for a retry interval of zero run in the same pass."""
    queues = [get_queue(purpose, app) for purpose in (purposes or PURPOSES)]
    worker = SimpleWorker(queues, connection=connect(app))
    worker.work(burst=True, with_scheduler=True)


def run_worker(app, burst: bool = False, purposes=None) -> bool:
    """A forking worker, as production runs it. The SQLAlchemy pool is emptied
    before forking so no connection crosses fork()."""
    from surveys.extensions import db

    queues = [get_queue(purpose, app) for purpose in (purposes or PURPOSES)]
    db.engine.dispose()
    worker = Worker(queues, connection=connect(app))
    return worker.work(burst=burst, with_scheduler=True)
