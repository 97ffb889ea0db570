"""RQ jobs: thin wrappers over the services, named by `cadence.dispatch`
(and by `cadence.cron` for the tick).

A job runs in the app context that `flask --app wsgi worker` pushed before
the worker started: jobs never build an app. Exceptions are never
swallowed, so RQ's Retry and failed-job registry see them.
"""

from flask import current_app

from cadence import delivery, planner
from cadence.clock import parse_instant, utcnow


def tick(now: str | None = None) -> dict:
    """The scheduler pass; RQ's cron scheduler enqueues this every minute.
    Deal moments' sending, daily digests and expiry run in the same pass."""
    from surveys.deals.moments import run_moments
    from surveys.deals.processing import requeue_stale

    instant = parse_instant(now) if now else utcnow()
    report = planner.tick(instant)
    current_app.logger.info("; ".join(report.lines()))
    return {**report.as_dict(), "deal_moments": run_moments(instant), "deal_events_requeued": requeue_stale(instant)}


def deliver(delivery_ids: list[int]) -> dict:
    result = delivery.send_deliveries(delivery_ids)
    return {"sent": result.sent, "failed": result.failed, "cancelled": result.cancelled}


def round_closed(round_id: int) -> None:
    """After a round closes: finalize its scorecard and send the digest."""
    from surveys.digest import on_round_closed

    on_round_closed(round_id)


def password_reset_request(email: str, address: str | None = None) -> None:
    from surveys.auth.service import handle_password_reset_request

    handle_password_reset_request(email, address)


def send_alert_notification(notification_id: int) -> str:
    from surveys.alert_routing import send_notification

    return send_notification(notification_id)


def send_need_notices(notice_ids: list[int]) -> dict:
    from surveys.triage.notify import send_notices

    return send_notices(notice_ids, utcnow())


def process_deal_event(event_id: int) -> str:
    """Apply one stored deal event to its deal."""
    from surveys.deals.processing import process_event

    return process_event(event_id, utcnow())


def convert_deal_amounts(currencies: list[str] | None) -> int:
    """Deal amounts in the reporting currency again, after rates changed."""
    from surveys.deals.currency import reconvert

    return reconvert(currencies)
