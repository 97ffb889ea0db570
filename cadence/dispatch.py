"""The one place that hands work to the RQ workers.

Services call these after the commit that made the work visible; each names
its job by import path, so this module never imports the jobs (which import
the services): the flow stays one way, cron -> job -> service -> dispatch.
"""

from __future__ import annotations

from flask import current_app
from rq import Retry

from cadence.queues import get_queue, mail_retry

# Seconds RQ keeps results and failures: a day of results for the operations
# page, a week of failures for an admin to retry.
RESULT_TTL = 86400
FAILURE_TTL = 7 * 86400


def deliveries(batches: list[list[int]]) -> None:
    """Each batch of delivery ids is one job on the mail queue, retried with backoff."""
    if not batches:
        return
    queue = get_queue("mail")
    for batch in batches:
        queue.enqueue("cadence.jobs.deliver", batch, retry=mail_retry(), job_timeout=600,
                      result_ttl=3600, failure_ttl=FAILURE_TTL)


def rounds_closed(round_ids: list[int]) -> None:
    """Finalize each closed round's scorecard and send its digest."""
    queue = get_queue("rollups")
    for round_id in round_ids:
        queue.enqueue("cadence.jobs.round_closed", round_id, job_timeout=600,
                      result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)


def password_reset_request(email: str, address: str | None) -> None:
    """Every reset request queues the same job, known email or not, so the
    answer's timing tells nobody who is staff."""
    get_queue("mail").enqueue("cadence.jobs.password_reset_request", email, address, retry=mail_retry(),
                              result_ttl=3600, failure_ttl=FAILURE_TTL)


def alert_notification(notification_id: int) -> None:
    """One alert email or webhook call, retried with backoff."""
    intervals = current_app.config.get("ALERT_RETRY_INTERVALS", [10, 60, 300, 900])
    get_queue("mail").enqueue("cadence.jobs.send_alert_notification", notification_id,
                              retry=Retry(max=len(intervals), interval=list(intervals)),
                              result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)


def need_notices(notice_ids: list[int]) -> None:
    """The messages telling reps a need they raised is planned or shipped, retried with backoff."""
    get_queue("mail").enqueue("cadence.jobs.send_need_notices", notice_ids, retry=mail_retry(),
                              result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)


def deal_events(event_ids: list[int]) -> None:
    """Apply each newly stored deal event to its deal (surveys.deals.processing)."""
    queue = get_queue("cadence")
    for event_id in event_ids:
        queue.enqueue("cadence.jobs.process_deal_event", event_id, job_timeout=300,
                      result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)


def deal_amounts(currencies: list[str]) -> None:
    """Convert again the amounts of the deals in these currencies, after their exchange rates changed."""
    get_queue("cadence").enqueue("cadence.jobs.convert_deal_amounts", currencies, job_timeout=600,
                                 result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
