"""Taking access away (issue 13): revoking rep links and ending sessions.

A rep link is valid while its invitation keeps the nonce the link was signed
with (cadence.links), so revoking replaces the nonce of each of the person's
invitations in open rounds: every link already sent for them answers 404.
Re-sending revokes first, then owes each such invitation a new message, which
the next tick hands to the workers (like a nudge) with the new link.

Deactivating a person (people import or API) does both things at once for
good: their open links are revoked and, for staff, every session ends on the
server and the session version moves on, so reactivation brings nothing back.
Every change is in the audit log.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from cadence.clock import utcnow
from cadence.models import Delivery, Invitation, Round
from surveys.org.models import Person
from surveys.extensions import db


def open_invitations(person: Person) -> list[Invitation]:
    return list(
        db.session.scalars(
            select(Invitation)
            .join(Round, Round.id == Invitation.round_id)
            .where(Invitation.person_id == person.id, Round.status == "open")
            .order_by(Invitation.id)
        )
    )


def _rotate(invitations) -> None:
    for invitation in invitations:
        invitation.nonce = secrets.token_urlsafe(12)


def revoke_rep_links(person: Person, actor: Person | None) -> int:
    """Revoke every open link of `person`; audited. The caller commits."""
    from surveys import audit

    invitations = open_invitations(person)
    _rotate(invitations)
    audit.record(actor, "rep_links.revoked", person, {"invitations": [i.id for i in invitations]})
    return len(invitations)


def resend_rep_links(person: Person, actor: Person | None) -> int:
    """Revoke `person`'s open links and owe each open invitation a message
    with its new link (sent with the next tick); audited. The caller commits."""
    from cadence.planner import insert_ignoring_conflicts
    from surveys import audit

    invitations = open_invitations(person)
    _rotate(invitations)
    now = utcnow()
    rows = []
    for invitation in invitations:
        earlier = db.session.scalar(
            select(func.count()).where(Delivery.invitation_id == invitation.id, Delivery.kind.like("resend-%"))
        )
        rows.append({"invitation_id": invitation.id, "kind": f"resend-{earlier + 1}", "status": "pending",
                     "due_at": now})
    if rows:
        db.session.execute(insert_ignoring_conflicts(Delivery), rows)
    audit.record(actor, "rep_links.resent", person, {"invitations": [i.id for i in invitations]})
    return len(invitations)


def deactivated(person: Person, actor: Person | None) -> None:
    """What deactivating `person` takes away, for good; audited. The caller commits."""
    from surveys import audit
    from surveys.auth.service import end_sessions_of

    invitations = open_invitations(person)
    _rotate(invitations)
    person.session_version = (person.session_version or 0) + 1
    ended = end_sessions_of(person)
    audit.record(actor, "person.deactivated", person,
                 {"rep_links_revoked": [i.id for i in invitations], "sessions_ended": ended})
