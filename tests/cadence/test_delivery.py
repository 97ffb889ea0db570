"""Delivery faults with a real SMTP server that refuses on purpose, and a
Redis that loses its jobs."""

from datetime import timedelta

from sqlalchemy import func, select

from cadence.models import Delivery, OutboxMessage
from cadence.planner import REQUEUE_QUEUED_AFTER, tick
from surveys.extensions import db
from tests.conftest import run_worker
from tests.builders.loop import REPS, first_opening


def statuses():
    return dict(db.session.execute(select(Delivery.status, func.count()).where(Delivery.kind == "invite").group_by(Delivery.status)).all())


def test_transient_smtp_refusal_is_retried_until_delivered(app, client, api_token, smtp, redis_conn):
    app.config["MAIL_RETRY_INTERVALS"] = [0, 0, 0]
    opens = first_opening(client, api_token())
    smtp.refuse_code, smtp.refuse_times = 451, 2
    tick(opens)
    run_worker(app)
    assert smtp.wait_for(len(REPS)) == len(REPS)
    assert statuses() == {"sent": len(REPS)}
    retried = db.session.scalars(select(Delivery).where(Delivery.kind == "invite", Delivery.attempts > 1)).all()
    assert retried, "the refused messages were sent on a later attempt"
    assert len({m["Message-ID"] for m in smtp.messages}) == len(REPS)


def test_dropped_connection_is_retried(app, client, api_token, smtp, redis_conn):
    app.config["MAIL_RETRY_INTERVALS"] = [0, 0]
    opens = first_opening(client, api_token())
    smtp.drop_connection_times = 1
    tick(opens)
    run_worker(app)
    assert smtp.wait_for(len(REPS)) == len(REPS)
    assert statuses() == {"sent": len(REPS)}


def test_permanent_refusal_marks_the_delivery_failed_without_retry(app, client, api_token, smtp, redis_conn):
    app.config["MAIL_RETRY_INTERVALS"] = [0, 0, 0]
    opens = first_opening(client, api_token())
    smtp.refuse_addresses = {"cai.rep@example.com"}
    tick(opens)
    run_worker(app)
    smtp.wait_for(len(REPS) - 1)
    failed = db.session.scalars(select(Delivery).where(Delivery.status == "failed")).all()
    assert [d.invitation.person.email for d in failed] == ["cai.rep@example.com"]
    assert failed[0].attempts == 1
    assert "550" in failed[0].last_error
    assert len(smtp.messages) == len(REPS) - 1


def test_redis_flushed_mid_round_loses_nothing(app, client, api_token, smtp, redis_conn):
    opens = first_opening(client, api_token())
    tick(opens)
    redis_conn.flushdb()  # every queued job is gone
    run_worker(app)
    assert smtp.messages == []
    # A tick soon after does not duplicate work that may still be queued...
    assert tick(opens + timedelta(minutes=1)).requeued == 0
    # ...but once the queued deliveries are overdue, it hands them out again.
    report = tick(opens + REQUEUE_QUEUED_AFTER + timedelta(minutes=1))
    assert report.requeued == len(REPS)
    run_worker(app)
    assert smtp.wait_for(len(REPS)) == len(REPS)
    assert statuses() == {"sent": len(REPS)}


def test_duplicated_job_sends_each_message_once(app, client, api_token, smtp, redis_conn):
    from cadence.jobs import deliver
    from cadence.queues import get_queue

    opens = first_opening(client, api_token())
    tick(opens)
    ids = list(db.session.scalars(select(Delivery.id).where(Delivery.kind == "invite")))
    get_queue("mail").enqueue(deliver, ids)  # the same batch a second time
    run_worker(app)
    smtp.wait_for(len(REPS))
    assert len(smtp.messages) == len(REPS)


def test_outbox_backend_keeps_both_parts(app, client, api_token, redis_conn, signed_in_client):
    app.config["MAIL_BACKEND"] = "outbox"
    try:
        opens = first_opening(client, api_token())
        tick(opens)
        run_worker(app)
    finally:
        app.config["MAIL_BACKEND"] = "smtp"
    messages = db.session.scalars(select(OutboxMessage)).all()
    assert len(messages) == len(REPS)
    assert all("/r/" in m.text_body and m.html_body and "/r/" in m.html_body for m in messages)
    admin = signed_in_client(roles=("admin",))
    page = admin.get("/cadences/outbox")
    assert page.status_code == 200 and messages[0].subject in page.text
    html = admin.get(f"/cadences/outbox/{messages[0].id}/html")
    assert html.status_code == 200 and "sandbox" in html.headers["Content-Security-Policy"]
