"""RQ jobs: thin wrappers over the planner and delivery functions.

Each job runs inside a Flask app context: the one `flask --app wsgi worker`
pushed, or a new one when run by a plain `rq worker`. Exceptions are never
swallowed, so RQ's Retry and failed-job registry see them.
"""

from functools import wraps

from flask import current_app, has_app_context

from cadence import delivery, planner
from cadence.clock import parse_instant, utcnow


def with_app_context(function):
    @wraps(function)
    def wrapped(*args, **kwargs):
        if has_app_context():
            return function(*args, **kwargs)
        from surveys import create_app

        with create_app().app_context():
            return function(*args, **kwargs)

    return wrapped


@with_app_context
def tick(now: str | None = None) -> dict:
    """The scheduler pass; RQ's cron scheduler enqueues this every minute."""
    report = planner.tick(parse_instant(now) if now else utcnow())
    current_app.logger.info("; ".join(report.lines()))
    return report.as_dict()


@with_app_context
def deliver(delivery_ids: list[int]) -> dict:
    result = delivery.send_deliveries(delivery_ids)
    return {"sent": result.sent, "failed": result.failed, "cancelled": result.cancelled}


@with_app_context
def round_closed(round_id: int) -> None:
    """After a round closes: finalize its scorecard and send the digest."""
    from surveys.digest import on_round_closed

    on_round_closed(round_id)
