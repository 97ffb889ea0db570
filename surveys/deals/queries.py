"""Reading deals and their events for the API and the pages."""

from __future__ import annotations

from sqlalchemy import select

from surveys.org.models import Person
from surveys.deals.currency import reporting_currency
from surveys.deals.models import Deal, DealEvent, MomentInvitation
from surveys.extensions import db

PAGE_SIZE = 100


def list_deals(outcome=None, owner=None, page=1):
    query = select(Deal).order_by(Deal.close_date.desc().nullslast(), Deal.id.desc())
    if outcome:
        query = query.where(Deal.outcome == outcome)
    if owner:
        query = query.join(Person, Person.id == Deal.owner_id).where(Person.email == owner.strip().lower())
    return db.session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()


def list_events(status=None, limit=200):
    query = select(DealEvent).order_by(DealEvent.id.desc())
    if status:
        query = query.where(DealEvent.status == status)
    return db.session.scalars(query.limit(limit)).all()


def deal_dict(deal: Deal) -> dict:
    return {
        "id": deal.id, "source": deal.source, "external_id": deal.external_id,
        "owner_email": deal.owner.email if deal.owner else None, "account": deal.account,
        "amount": deal.amount, "currency": deal.currency, "amount_reporting": deal.amount_reporting,
        "reporting_currency": reporting_currency(), "stage": deal.stage, "outcome": deal.outcome,
        "close_date": deal.close_date.isoformat() if deal.close_date else None, "competitor": deal.competitor,
        "segment": deal.segment, "region": deal.region, "products": list(deal.products or []),
        "loss_reason": deal.loss_reason,
        "updated_at": deal.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ") if deal.updated_at else None,
        "invitations": [
            {"id": i.id, "moment_id": i.moment_id, "trigger": i.trigger, "status": i.status,
             "send_at": _iso(i.send_at), "sent_at": _iso(i.sent_at), "expires_at": _iso(i.expires_at),
             "responded_at": _iso(i.responded_at)}
            for i in db.session.scalars(select(MomentInvitation).where(MomentInvitation.deal_id == deal.id)
                                        .order_by(MomentInvitation.id))
        ],
    }


def _iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
