"""The audit log: which staff member did what, to what, from where.

Every module that performs a staff action calls `record(...)` inside the same
transaction as the action, so the event is stored exactly when the action is
(and rolled back with it). The application only ever appends: a flush that
would change or delete an event, and an ORM bulk UPDATE or DELETE aimed at the
table, raise `AuditLogIsAppendOnly`. Admins read the log at /admin/audit/.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from flask import Blueprint, has_request_context, render_template, request
from sqlalchemy import JSON, ForeignKey, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cadence.clock import utcnow
from surveys import limits
from surveys.auth import roles_required
from surveys.extensions import UTCDateTime, db

audit_bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

# Actions are short dotted slugs ("sign_in", "token.created"): easy to filter
# on, impossible to smuggle markup or a newline into.
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
PAGE_SIZE = 100


class AuditLogIsAppendOnly(RuntimeError):
    pass


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The actor's row may be deleted later; the email snapshot keeps who it was.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    actor_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    address: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self):
        return f"<AuditEvent {self.action} by {self.actor_email or 'system'}>"


def describe_target(target) -> str | None:
    """A model instance becomes "<table>:<id>"; a string is kept as it is."""
    if target is None or isinstance(target, str):
        return target
    table = getattr(target, "__tablename__", None)
    identity = getattr(target, "id", None)
    if table is None or identity is None:
        raise TypeError(f"cannot describe {target!r} as an audit target: pass a string or a flushed model")
    return f"{table}:{identity}"


def record(actor, action: str, target=None, details: dict | None = None) -> AuditEvent:
    """Add an audit event to the current transaction; the caller commits.

    `actor` is the Person who acted, or None for the system and the command
    line. `target` is a string or a flushed model instance. `details` must be
    JSON-friendly (dates and other values are stored as their text).
    """
    if not ACTION_PATTERN.match(action or "") or len(action) > 64:
        raise ValueError(f"audit action must be a short dotted slug, got {action!r}")
    target_text = describe_target(target)
    if target_text is not None:
        target_text = target_text[:300]
    clean_details = json.loads(json.dumps(details or {}, default=str))
    audit_event = AuditEvent(
        occurred_at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_email=getattr(actor, "email", None),
        action=action,
        target=target_text,
        details=clean_details,
        address=request.remote_addr if has_request_context() else None,
    )
    db.session.add(audit_event)
    return audit_event


def record_role_change(actor, person, before, after) -> AuditEvent | None:
    """Record "roles.changed" when a person's roles differ; the caller commits."""
    before, after = set(before), set(after)
    if before == after:
        return None
    return record(
        actor,
        "roles.changed",
        f"people:{person.id}" if person.id is not None else f"email:{person.email}",
        {"email": person.email, "added": sorted(after - before), "removed": sorted(before - after)},
    )


# -- Append-only --------------------------------------------------------------


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_audit_events(session, flush_context, instances):
    for obj in session.deleted:
        if isinstance(obj, AuditEvent):
            raise AuditLogIsAppendOnly("audit events cannot be deleted")
    for obj in session.dirty:
        if isinstance(obj, AuditEvent) and session.is_modified(obj):
            raise AuditLogIsAppendOnly("audit events cannot be changed")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes_to_audit_events(orm_execute_state):
    if not (orm_execute_state.is_update or orm_execute_state.is_delete):
        return
    if any(mapper.class_ is AuditEvent for mapper in orm_execute_state.all_mappers):
        raise AuditLogIsAppendOnly("audit events cannot be changed or deleted")


# -- The admin page -----------------------------------------------------------


@audit_bp.get("/")
@roles_required("admin")
def index():
    """Newest first, filtered by action and actor, paged by id."""
    action = request.args.get("action", "").strip()
    actor = request.args.get("actor", "").strip().lower()
    before = limits.whole_number(request.args.get("before"), minimum=1)
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(PAGE_SIZE + 1)
    if action:
        # "token" matches token.created and token.revoked as well as "token".
        query = query.where((AuditEvent.action == action) | AuditEvent.action.startswith(action + "."))
    if actor:
        query = query.where(AuditEvent.actor_email == actor)
    if before:
        query = query.where(AuditEvent.id < before)
    events = list(db.session.scalars(query))
    next_before = events[PAGE_SIZE - 1].id if len(events) > PAGE_SIZE else None
    actions = list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    return render_template(
        "admin/audit.html",
        events=events[:PAGE_SIZE],
        actions=actions,
        action=action,
        actor=actor,
        next_before=next_before,
    )
