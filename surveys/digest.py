"""When a round closes: finalize its scorecard and mail leaders a digest.

`on_round_closed(round_id)` runs as an RQ job on the `rollups` queue (the tick
enqueues it after closing a round). It is idempotent: the snapshot is stored
once, and each leader's digest is claimed in `digest_receipts` before it is
sent and marked sent after, so a re-run (or a second worker) sends nothing
twice. A claim left unsent by a crashed worker is retried after
`STALE_CLAIM`. Failures raise, so RQ's retry and failed registry see them.

The digest is built from the finalized overall card, so it shows only what the
set's confidentiality lets through: withheld questions and slices never
appear, and no comment is quoted.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError

from cadence import mail
from cadence.clock import utcnow
from cadence.mail import mail_backend
from cadence.models import Round
from surveys.org.models import Person, PersonRole
from surveys import alert_routing
from surveys.extensions import db
from surveys.feedback import reply_dicts
from surveys.scorecard.finalized import finalize_scorecard
from surveys.scorecard.movers import with_meanings
from surveys.scorecard_text import describe_change
from surveys.snapshots import DigestReceipt

STALE_CLAIM = timedelta(minutes=15)
DIGEST_CHOICE_SHIFTS = 3


def on_round_closed(round_id: int) -> dict:
    """Finalize the round's scorecard and send each active leader the digest once.
    Returns {"sent": n, "already": m}; does nothing for a round that is not closed."""
    round_ = db.session.get(Round, round_id)
    if round_ is None or round_.status != "closed":
        return {"sent": 0, "already": 0}
    snapshot = finalize_scorecard(round_)
    alert_routing.watch_and_notify(round_)
    card = with_meanings(snapshot.overall, round_.version.questions if round_.version else [])
    leaders = db.session.scalars(
        select(Person)
        .join(PersonRole, and_(PersonRole.person_id == Person.id, PersonRole.role == "leader"))
        .where(Person.active.is_(True))
        .order_by(Person.id)
    ).all()
    context = digest_context(round_, card)
    sent = already = 0
    with mail_backend() as backend:
        for leader in leaders:
            if not _claim(round_.id, leader.id):
                already += 1
                continue
            try:
                backend.send(compose_digest(leader, context))
            except Exception:
                _release(round_.id, leader.id)
                raise
            db.session.execute(
                update(DigestReceipt)
                .where(DigestReceipt.round_id == round_.id, DigestReceipt.person_id == leader.id)
                .values(sent_at=utcnow())
            )
            db.session.commit()
            sent += 1
    return {"sent": sent, "already": already}


def _claim(round_id: int, person_id: int) -> bool:
    """True when this run may send this leader's digest: a new claim, or an
    unsent one old enough that its worker must have died."""
    db.session.add(DigestReceipt(round_id=round_id, person_id=person_id))
    try:
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
    now = utcnow()
    taken = db.session.execute(
        update(DigestReceipt)
        .where(
            DigestReceipt.round_id == round_id,
            DigestReceipt.person_id == person_id,
            DigestReceipt.sent_at.is_(None),
            DigestReceipt.claimed_at < now - STALE_CLAIM,
        )
        .values(claimed_at=now)
    )
    db.session.commit()
    return taken.rowcount == 1


def _release(round_id: int, person_id: int) -> None:
    db.session.rollback()
    db.session.execute(
        delete(DigestReceipt).where(
            DigestReceipt.round_id == round_id, DigestReceipt.person_id == person_id, DigestReceipt.sent_at.is_(None)
        )
    )
    db.session.commit()


def digest_context(round_: Round, card: dict) -> dict:
    base_url = current_app.config["BASE_URL"].rstrip("/")
    return {
        "round": round_,
        "cadence": round_.cadence,
        "card": card,
        "rate": card["response_rate"],
        "movers": card["top_movers"],
        "shifts": card["choice_shifts"][:DIGEST_CHOICE_SHIFTS],
        "low_slices": [
            {"kind": kind, **entry}
            for kind, entries in card["participation"]["slices"].items()
            for entry in entries
            if entry["low"]
        ],
        "withheld": sum(1 for question in card["questions"] if question["suppressed"]),
        "replies": reply_dicts(round_),
        "link": f"{base_url}/scorecards/rounds/{round_.id}",
        "describe_change": describe_change,
    }


def compose_digest(leader: Person, context: dict) -> EmailMessage:
    round_ = context["round"]
    return mail.compose(to=(leader.name, leader.email),
                        subject=f"{context['cadence'].name} {round_.period_key}: the round has closed",
                        kind="digest", key=f"digest.{round_.id}.{leader.id}", template="email/digest",
                        leader=leader, **context)
