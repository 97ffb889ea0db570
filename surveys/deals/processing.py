"""Storing deal events as received, and applying them to deals.

`store_events` keeps each event once per (source, event id), whatever the
sender repeats and however many web processes race (the unique constraint
decides), then hands the new ones to a worker through `cadence.dispatch`.
`process_event` applies one event in one transaction: the deal is created or
updated, or nothing changes and the event is marked failed with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app

from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cadence import dispatch
from surveys.org.models import Person
from surveys.audit import record
from surveys.deals.ingest import DEAL_FIELDS, dumps
from surveys.deals import currency, moments
from surveys.deals.currency import CURRENCIES
from surveys.deals.models import OUTCOMES, Deal, DealEvent, DealProduct
from surveys.extensions import db

REQUIRED_FIELDS = ("owner_email", "account", "amount", "currency", "stage", "outcome")
MAX_TEXT = {"account": 300, "stage": 100, "competitor": 200, "segment": 100, "region": 100, "loss_reason": 200}


@dataclass
class Stored:
    id: int
    event_id: str
    created: bool

    @property
    def event(self) -> DealEvent:
        return db.session.get(DealEvent, self.id)


def store_events(source: str, events: list[dict], raw: str, now: datetime, queue: bool = True) -> list[Stored]:
    """Keep each event, then queue the new ones for a worker (unless the
    caller processes them itself, as the CSV import does)."""
    results = []
    insert = _insert_ignoring_conflicts(DealEvent).returning(DealEvent.id)
    for item in events:
        # One statement: the unique (source, event id) decides, even between
        # processes racing with the same event; a conflict returns no row.
        new_id = db.session.execute(insert.values(
            source=source, event_id=item["event_id"], type=item["type"], occurred_at=item.get("occurred_at"),
            payload=item["deal"], raw=raw, status="received", error=None, attempts=0, received_at=now)).scalar()
        if new_id is None:
            results.append(Stored(_find(source, item["event_id"]).id, item["event_id"], False))
        else:
            results.append(Stored(new_id, item["event_id"], True))
    db.session.commit()
    if queue:
        try:
            dispatch.deal_events([r.id for r in results if r.created])
        except Exception as error:  # Redis away: the events are stored; the tick queues them again
            current_app.logger.warning("deal events stored but not queued (%s); the next tick queues them",
                                       type(error).__name__)
    return results


STALE_AFTER = timedelta(minutes=2)
# A claimed event not finished this long after its claim was abandoned: its
# worker died while applying it (or RQ killed it at the job's timeout, 300 s).
REQUEUE_PROCESSING_AFTER = timedelta(minutes=10)
# An event abandoned this many times is not tried again by itself: it fails,
# for an admin to look at and replay.
MAX_ATTEMPTS = 5


def requeue_stale(now: datetime) -> int:
    """Queue again every event stored but still not applied a while after it
    arrived (Redis lost the job, or was down when it was stored), and every
    event a dead worker left in `processing`. Applying claims the event
    first, and only the latest claim's worker may finish it, so an event
    queued twice, or whose first worker was only slow, is applied once."""
    abandoned = and_(DealEvent.status == "processing", DealEvent.claimed_at < now - REQUEUE_PROCESSING_AFTER)
    db.session.execute(update(DealEvent).where(abandoned, DealEvent.attempts >= MAX_ATTEMPTS).values(
        status="failed", processed_at=now,
        error=f"abandoned by {MAX_ATTEMPTS} workers that stopped while applying it (see the workers' logs)"))
    db.session.execute(update(DealEvent).where(abandoned, DealEvent.attempts < MAX_ATTEMPTS).values(
        status="received", claimed_at=None))
    db.session.commit()
    ids = db.session.scalars(select(DealEvent.id).where(
        DealEvent.status == "received", DealEvent.received_at < now - STALE_AFTER).order_by(DealEvent.id).limit(10_000)).all()
    if ids:
        dispatch.deal_events(list(ids))
    return len(ids)


def _insert_ignoring_conflicts(model):
    module = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing()


def _find(source, event_id):
    return db.session.scalar(select(DealEvent).where(DealEvent.source == source, DealEvent.event_id == event_id))


class DealInvalid(Exception):
    pass


def process_event(event_id: int, now: datetime) -> str:
    """Apply one stored event. Exactly once: the worker that moves it from
    `received` to `processing` applies it; any other finds nothing to do."""
    attempt = claim_event(event_id, now)
    if attempt is None:
        event = db.session.get(DealEvent, event_id)
        return event.status if event is not None else "missing"
    return apply_claimed(event_id, attempt, now)


def claim_event(event_id: int, now: datetime) -> int | None:
    """Move a `received` event to `processing` in one statement, stamping the
    claim; returns the claim's attempt number, or None when another worker
    has it (or had it)."""
    attempt = db.session.execute(
        update(DealEvent).where(DealEvent.id == event_id, DealEvent.status == "received")
        .values(status="processing", attempts=DealEvent.attempts + 1, claimed_at=now)
        .returning(DealEvent.attempts)
    ).scalar()
    db.session.commit()
    return attempt


def apply_claimed(event_id: int, attempt: int, now: datetime) -> str:
    """Apply an event this worker claimed (attempt `attempt`): the deal's
    change, the invitations its moments make and the event's outcome are one
    transaction, so a worker dying anywhere in it leaves the event
    `processing` with nothing applied, for the tick to hand to another worker
    (never an event `processed` whose owner was not asked). The outcome is
    written only while the claim is still this worker's: when the tick has
    handed an abandoned event to another worker meanwhile, everything is
    rolled back ("superseded")."""
    event = db.session.get(DealEvent, event_id)
    try:
        deal, previous = apply_event(event, now)
    except DealInvalid as error:
        db.session.rollback()
        if not _record_outcome(event_id, attempt, status="failed", error=str(error), processed_at=now):
            return "superseded"
        db.session.commit()
        return "failed"
    if not _record_outcome(event_id, attempt, status="processed", error=None, deal_id=deal.id, processed_at=now):
        return "superseded"
    if previous is not False:  # the event changed the deal: the moments decide whom to ask
        moments.on_deal_changed(deal, previous, event.occurred_at or now, now)
    db.session.commit()
    return "processed"


def _record_outcome(event_id: int, attempt: int, **outcome) -> bool:
    """Write the event's outcome in the current transaction if the claim is
    still this worker's; otherwise roll the transaction back (False)."""
    done = db.session.execute(update(DealEvent).where(
        DealEvent.id == event_id, DealEvent.status == "processing", DealEvent.attempts == attempt).values(**outcome)).rowcount
    if not done:
        db.session.rollback()
        return False
    return True


def apply_event(event: DealEvent, now: datetime) -> tuple[Deal, dict | None | bool]:
    """The deal after the event, and its fields before (None for a new deal,
    False when the event was older than the deal's state and changed nothing)."""
    payload = dict(event.payload or {})
    external_id = str(payload.get("id") or "").strip()
    if not external_id:
        raise DealInvalid("The deal has no id.")
    deal = db.session.scalar(select(Deal).where(Deal.source == event.source, Deal.external_id == external_id))
    if deal is not None and deal.state_at and event.occurred_at and event.occurred_at < deal.state_at:
        return deal, False  # an older state arriving late: kept, not applied over a newer one
    current = _fields_of(deal) if deal is not None else {}
    merged = {**current, **{k: v for k, v in payload.items() if k in DEAL_FIELDS}}
    if "outcome" not in payload and event.type in ("deal.closed_won", "deal.closed_lost", "deal.no_decision"):
        merged["outcome"] = {"deal.closed_won": "won", "deal.closed_lost": "lost", "deal.no_decision": "no_decision"}[event.type]
    values = validate_deal(merged)
    if deal is None:
        deal = Deal(source=event.source, external_id=external_id, created_at=now)
        db.session.add(deal)
    for name, value in values.items():
        setattr(deal, name, value)
    deal.raw = payload
    deal.state_at = event.occurred_at or now
    deal.updated_at = now
    db.session.flush()
    currency.convert_deals(Deal.id == deal.id)
    db.session.expire(deal, ["amount_reporting"])
    set_products(deal)
    return deal, (current or None)


def set_products(deal: Deal) -> None:
    db.session.execute(delete(DealProduct).where(DealProduct.deal_id == deal.id))
    if deal.products:
        db.session.execute(DealProduct.__table__.insert(),
                           [{"deal_id": deal.id, "product": p} for p in dict.fromkeys(deal.products)])


def _fields_of(deal: Deal) -> dict:
    return {
        "owner_email": deal.owner.email if deal.owner else None, "account": deal.account, "amount": deal.amount,
        "currency": deal.currency, "stage": deal.stage, "outcome": deal.outcome,
        "close_date": deal.close_date.isoformat() if deal.close_date else None, "competitor": deal.competitor,
        "segment": deal.segment, "region": deal.region, "products": list(deal.products or []),
        "loss_reason": deal.loss_reason,
    }


def validate_deal(fields: dict) -> dict:
    """The deal's columns from its fields, or DealInvalid naming every problem."""
    problems = []
    missing = [name for name in REQUIRED_FIELDS if fields.get(name) in (None, "")]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    values = {}
    email = str(fields.get("owner_email") or "").strip().lower()
    if email:
        owner = db.session.scalar(select(Person).where(Person.email == email))
        if owner is None:
            problems.append(f"unknown owner email {email!r} (not among Canary's people)")
        else:
            values["owner_id"] = owner.id
    amount = fields.get("amount")
    if amount not in (None, ""):
        try:
            number = float(str(amount).replace(",", "")) if not isinstance(amount, bool) else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            problems.append(f"amount {amount!r} is not a non-negative number")
        else:
            values["amount"] = number
    currency = str(fields.get("currency") or "").strip().upper()
    if currency:
        if currency not in CURRENCIES:
            problems.append(f"unknown currency {fields.get('currency')!r} (an ISO 4217 code)")
        else:
            values["currency"] = currency
    outcome = str(fields.get("outcome") or "").strip().lower()
    if outcome:
        if outcome not in OUTCOMES:
            problems.append(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        else:
            values["outcome"] = outcome
    close_date = fields.get("close_date")
    if close_date not in (None, ""):
        try:
            values["close_date"] = date.fromisoformat(str(close_date)[:10])
        except ValueError:
            problems.append(f"close_date {close_date!r} is not a date (YYYY-MM-DD)")
    elif outcome in ("won", "lost", "no_decision"):
        problems.append("missing close_date (a closed deal has one)")
    for name, limit in MAX_TEXT.items():
        value = fields.get(name)
        if value in (None, ""):
            values[name] = None  # account and stage are reported missing above
            continue
        text = str(value).strip()
        if len(text) > limit:
            problems.append(f"{name} is longer than {limit} characters")
        values[name] = text
    products = fields.get("products") or []
    if isinstance(products, str):
        products = [p.strip() for p in products.split(";") if p.strip()]
    if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
        problems.append("products must be a list of names")
    else:
        values["products"] = products
    if problems:
        raise DealInvalid("; ".join(problems))
    return values


def replay(event: DealEvent, actor, now: datetime) -> DealEvent:
    """Process a stored event again (after fixing the reason it failed, say). Audited."""
    record(actor, "deal_event.replayed", event, {"source": event.source, "event_id": event.event_id,
                                                  "was": event.status, "error": event.error})
    event.status, event.error, event.processed_at = "received", None, None
    db.session.commit()
    dispatch.deal_events([event.id])
    return event


def event_dict(event: DealEvent) -> dict:
    return {
        "id": event.id, "source": event.source, "event_id": event.event_id, "type": event.type,
        "occurred_at": _iso(event.occurred_at), "received_at": _iso(event.received_at),
        "processed_at": _iso(event.processed_at), "status": event.status, "error": event.error,
        "deal_id": event.deal_id, "attempts": event.attempts, "payload": event.payload,
    }


def _iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def raw_text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else dumps(value)
