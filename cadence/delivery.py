"""Sending what the planner queued: claim a batch, compose, send, record.

A batch job claims its deliveries atomically (pending/queued -> sending), so
a duplicated RQ job or a second worker finds nothing left to send. Each
message's outcome is committed as soon as it is known, so a worker killed
mid-batch re-sends at most the one message it was on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from urllib.parse import urlparse

from flask import current_app, render_template
from sqlalchemy import select, update

from cadence.clock import utcnow
from cadence.links import invitation_url
from cadence.mail import PermanentMailError, TransientMailError, mail_backend
from cadence.models import Delivery, Invitation
from surveys.extensions import db
from surveys.feedback import replies_for_invitation

log = logging.getLogger(__name__)

# After this many transient failures a delivery is marked failed.
MAX_ATTEMPTS = 8


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    cancelled: int = 0


def claim(delivery_ids: list[int]) -> list[int]:
    """Atomically take the deliveries no one else has taken."""
    claimed = db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(delivery_ids), Delivery.status.in_(("pending", "queued")))
        .values(status="sending", claimed_at=utcnow())
        .returning(Delivery.id)
    ).scalars().all()
    db.session.commit()
    return sorted(claimed)


def send_deliveries(delivery_ids: list[int]) -> BatchResult:
    result = BatchResult()
    claimed = claim(delivery_ids)
    if not claimed:
        return result
    remaining = list(claimed)
    with mail_backend() as backend:
        while remaining:
            delivery = db.session.get(Delivery, remaining[0])
            reason = reason_not_to_send(delivery)
            if reason:
                _finish(delivery, "cancelled", error=reason)
                result.cancelled += 1
                remaining.pop(0)
                continue
            throttle()
            message = compose(delivery)
            try:
                backend.send(message)
            except PermanentMailError as error:
                _finish(delivery, "failed", error=str(error))
                result.failed += 1
                remaining.pop(0)
                continue
            except TransientMailError as error:
                release(remaining, str(error))
                raise  # RQ's Retry runs the batch again with backoff
            _finish(delivery, "sent", message_id=message["Message-ID"])
            result.sent += 1
            remaining.pop(0)
    return result


def reason_not_to_send(delivery: Delivery) -> str | None:
    invitation = delivery.invitation
    if not invitation.round.is_open:
        return "the round closed before this message went out"
    if not invitation.person.active:
        return "the person is no longer active"
    if delivery.kind != "invite" and invitation.responded_at is not None:
        return "already answered"
    return None


def _finish(delivery: Delivery, status: str, error: str | None = None, message_id: str | None = None):
    delivery.status = status
    delivery.attempts += 1
    if status == "sent":
        delivery.sent_at = utcnow()
        delivery.message_id = message_id
        delivery.last_error = None
    elif error:
        delivery.last_error = error[:2000]
    db.session.commit()


def release(delivery_ids: list[int], error: str) -> None:
    """Hand unsent deliveries back after a transient failure; give up on the
    ones that have failed too often."""
    db.session.rollback()
    deliveries = db.session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids))).all()
    for delivery in deliveries:
        if delivery.status != "sending":
            continue
        delivery.attempts += 1
        delivery.last_error = error[:2000]
        delivery.status = "failed" if delivery.attempts >= MAX_ATTEMPTS else "queued"
    db.session.commit()


# Reserves the next send slot, spaced 1/rate seconds after the last one, on
# Redis's own clock so workers on several machines agree.
_RESERVE_SLOT = """
local now = redis.call('TIME')
local now_s = tonumber(now[1]) + tonumber(now[2]) / 1000000
local interval = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now_s, last + interval)
redis.call('SET', KEYS[1], tostring(slot), 'EX', 60)
return {tostring(slot), tostring(now_s)}
"""


def throttle() -> None:
    """A send rate shared by every worker: messages are spaced at least
    1/MAIL_RATE_PER_SECOND seconds apart, so no second ever carries more than
    the rate (a smooth leaky bucket rather than bursts at window edges)."""
    rate = current_app.config.get("MAIL_RATE_PER_SECOND") or 0
    if rate <= 0:
        return
    from cadence.redis_server import connect

    redis = connect(current_app)
    key = f"{current_app.config['RQ_QUEUE_PREFIX']}:mail-rate"
    slot, now = redis.eval(_RESERVE_SLOT, 1, key, repr(1.0 / rate))
    wait = float(slot) - float(now)
    if wait > 0:
        time.sleep(wait)


# -- Composition ----------------------------------------------------------------------


def message_id_for(delivery: Delivery) -> str:
    """Stable per invitation and kind, so a re-send is recognisably the same
    message."""
    domain = urlparse(current_app.config["BASE_URL"]).hostname or "canary.local"
    return f"<canary.{delivery.invitation_id}.{delivery.kind}@{domain}>"


def compose(delivery: Delivery) -> EmailMessage:
    invitation: Invitation = delivery.invitation
    round_ = invitation.round
    version = round_.version
    question_set = version.question_set
    questions = version.questions
    first = questions[0] if questions else None
    context = {
        "person": invitation.person,
        "invitation": invitation,
        "round": round_,
        "question_set": question_set,
        "question_count": len(questions),
        "minutes": estimated_minutes(questions),
        "link": invitation_url(invitation),
        "is_reminder": delivery.kind != "invite",
        "first_question": first if first is not None and first.type in ("scale", "nps") else None,
        "quick_answer_links": quick_answer_links(invitation, first),
        "zone": invitation.timezone,
        "replies": replies_for_invitation(round_),
    }
    message = EmailMessage()
    subject = f"{question_set.name}: {len(questions)} questions, about {context['minutes']} min"
    message["Subject"] = ("Reminder: " if context["is_reminder"] else "") + subject
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = formataddr((invitation.person.name, invitation.person.email))
    message["Message-ID"] = message_id_for(delivery)
    message["X-Canary-Kind"] = delivery.kind
    message.set_content(render_template("email/invitation.txt", **context))
    message.add_alternative(render_template("email/invitation.html", **context), subtype="html")
    return message


def estimated_minutes(questions) -> int:
    seconds = sum(45 if q.type == "text" else 15 for q in questions)
    return max(1, round(seconds / 60))


def quick_answer_links(invitation: Invitation, first) -> list[tuple[int, str]]:
    """For a scale or NPS first question, one link per value that opens the
    form with that answer filled in."""
    if first is None or first.type not in ("scale", "nps"):
        return []
    low, high = (0, 10) if first.type == "nps" else (1, first.setting("scale_max", 5))
    return [(value, invitation_url(invitation, **{first.key: value})) for value in range(low, high + 1)]
