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
from types import SimpleNamespace
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import select, update

from cadence.clock import utcnow
from cadence.links import token_for, url_for_token
from cadence import mail
from cadence.mail import PermanentMailError, TransientMailError, mail_backend
from cadence.models import Delivery, Invitation, Round
from surveys.org.models import Person
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


@dataclass
class Outgoing:
    """What one message needs, read for the whole batch in one query."""

    delivery_id: int
    kind: str
    invitation_id: int
    nonce: str
    round_id: int
    timezone: str
    name: str
    email: str
    active: bool
    responded: bool
    round_open: bool


def load_batch(delivery_ids: list[int]) -> list[Outgoing]:
    rows = db.session.execute(
        select(Delivery.id, Delivery.kind, Invitation.id, Invitation.nonce, Invitation.round_id, Invitation.timezone,
               Person.name, Person.email, Person.active, Invitation.responded_at.isnot(None), Round.status == "open")
        .join(Invitation, Invitation.id == Delivery.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
        .join(Round, Round.id == Invitation.round_id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Delivery.id)
    ).all()
    return [Outgoing(*row) for row in rows]


def send_deliveries(delivery_ids: list[int]) -> BatchResult:
    result = BatchResult()
    claimed = claim(delivery_ids)
    if not claimed:
        return result
    batch = load_batch(claimed)
    rounds: dict[int, RoundMessage] = {}
    remaining = [item.delivery_id for item in batch]
    with mail_backend() as backend:
        for item in batch:
            reason = reason_not_to_send(item)
            if reason:
                _finish(item.delivery_id, "cancelled", error=reason)
                result.cancelled += 1
                remaining.remove(item.delivery_id)
                continue
            if item.round_id not in rounds:
                rounds[item.round_id] = RoundMessage.load(item.round_id)
            try:
                message = compose(item, rounds[item.round_id])
            except (ValueError, TypeError, UnicodeError) as error:
                # One poisoned message (a name with a line break stored before
                # names were checked, issue 13) fails alone, with its reason;
                # the rest of the batch still goes out.
                log.warning("delivery %s cannot be composed: %s", item.delivery_id, error)
                _finish(item.delivery_id, "failed", error=f"cannot compose the message: {error}")
                result.failed += 1
                remaining.remove(item.delivery_id)
                continue
            throttle()
            try:
                backend.send(message)
            except (PermanentMailError, ValueError, UnicodeError) as error:
                _finish(item.delivery_id, "failed", error=str(error))
                result.failed += 1
                remaining.remove(item.delivery_id)
                continue
            except TransientMailError as error:
                release(remaining, str(error))
                raise  # RQ's Retry runs the batch again with backoff
            _finish(item.delivery_id, "sent", message_id=message["Message-ID"])
            result.sent += 1
            remaining.remove(item.delivery_id)
    return result


def reason_not_to_send(item: Outgoing) -> str | None:
    if not item.round_open:
        return "the round closed before this message went out"
    if not item.active:
        return "the person is no longer active"
    if item.kind != "invite" and item.responded:
        return "already answered"
    return None


def _finish(delivery_id: int, status: str, error: str | None = None, message_id: str | None = None):
    """Record one outcome and commit at once, so a kill re-sends at most the
    message in flight."""
    values = {"status": status, "attempts": Delivery.attempts + 1}
    if status == "sent":
        values.update(sent_at=utcnow(), message_id=message_id, last_error=None)
    elif error:
        values["last_error"] = error[:2000]
    db.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))
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


@dataclass
class RoundMessage:
    """What every message of one round shares, read once per batch as plain
    values (ORM objects would be re-read after every per-message commit)."""

    question_set: SimpleNamespace  # name, confidentiality, min_group_size
    round: SimpleNamespace  # closes_at
    question_count: int
    minutes: int
    first_question: SimpleNamespace | None  # key, type, prompt, low_label, high_label
    quick_values: list[int]
    replies: list

    @classmethod
    def load(cls, round_id: int) -> RoundMessage:
        round_ = db.session.get(Round, round_id)
        version = round_.version
        questions = list(version.questions)
        first = questions[0] if questions and questions[0].type in ("scale", "nps") else None
        if first is None:
            values = []
        elif first.type == "nps":
            values = list(range(0, 11))
        else:
            values = list(range(1, first.setting("scale_max", 5) + 1))
        question_set = version.question_set
        return cls(
            question_set=SimpleNamespace(name=question_set.name, confidentiality=question_set.confidentiality,
                                         min_group_size=question_set.min_group_size),
            round=SimpleNamespace(closes_at=round_.closes_at),
            question_count=len(questions),
            minutes=estimated_minutes(questions),
            first_question=SimpleNamespace(key=first.key, type=first.type, prompt=first.prompt,
                                           low_label=first.setting("low_label", ""),
                                           high_label=first.setting("high_label", "")) if first else None,
            quick_values=values,
            replies=replies_for_invitation(round_),
        )


def compose(item: Outgoing, shared: RoundMessage) -> EmailMessage:
    token = token_for(item.invitation_id, item.nonce)
    first = shared.first_question
    context = {
        "person_name": item.name,
        "round": shared.round,
        "question_set": shared.question_set,
        "question_count": shared.question_count,
        "minutes": shared.minutes,
        "link": url_for_token(token),
        "is_reminder": item.kind != "invite",
        "first_question": first,
        # For a scale or NPS first question: one link per value that opens the
        # form with that answer filled in.
        "quick_answer_links": [(value, url_for_token(token, **{first.key: value})) for value in shared.quick_values],
        "zone": item.timezone,
        "replies": shared.replies,
    }
    subject = f"{shared.question_set.name}: {shared.question_count} questions, about {shared.minutes} min"
    return mail.compose(to=(item.name, item.email), subject=("Reminder: " if context["is_reminder"] else "") + subject,
                        kind=item.kind, key=f"{item.invitation_id}.{item.kind}", template="email/invitation", **context)


def estimated_minutes(questions) -> int:
    seconds = sum(45 if q.type == "text" else 15 for q in questions)
    return max(1, round(seconds / 60))
