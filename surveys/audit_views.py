"""The audit log's admin page: newest first, filtered, paged by id."""

from flask import Blueprint, render_template, request
from sqlalchemy import select

from surveys import limits
from surveys.audit import AuditEvent
from surveys.audit_text import readable_events
from surveys.auth.access import roles_required
from surveys.extensions import db
from surveys.permissions import ADMINS

audit_bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

PAGE_SIZE = 100


@audit_bp.get("/")
@roles_required(*ADMINS)
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
        events=readable_events(events[:PAGE_SIZE]),
        actions=actions,
        action=action,
        actor=actor,
        next_before=next_before,
    )
