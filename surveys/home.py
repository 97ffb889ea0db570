"""The staff home page, by role: a leader sees what moved, participation by
team and new replies; a PM sees their sets, the rounds that need attention
and what waits for them. The numbers come from `surveys.dashboard`."""

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from cadence.clock import utcnow
from cadence.models import Cadence
from surveys import dashboard
from surveys.auth.access import staff_required
from surveys.extensions import db
from surveys.lifecycle import archived_filter
from surveys.models import QuestionSet
from surveys.scorecard_text import describe_change
from surveys.org.models import Person
from surveys.permissions import EDITORS

staff_bp = Blueprint("staff", __name__)


@staff_bp.get("/")
def root():
    if current_user.is_authenticated:
        return redirect(url_for("staff.home"))
    return redirect(url_for("auth.sign_in"))


@staff_bp.get("/home")
@staff_required
def home():
    now = utcnow()
    open_rounds = dashboard.open_rounds()
    page = {
        "open_rounds": open_rounds,
        "refresh_seconds": current_app.config["HOME_REFRESH_SECONDS"],
        "counts": {
            "question_sets": db.session.scalar(
                select(func.count(QuestionSet.id)).where(archived_filter(QuestionSet, False))),
            "cadences": db.session.scalar(select(func.count(Cadence.id)).where(archived_filter(Cadence, False))),
            "people": db.session.scalar(select(func.count(Person.id))),
        },
    }
    if current_user.has_role("leader"):
        page["leader"] = {
            "moved": dashboard.what_moved(),
            "teams": [(row, dashboard.team_participation(row["round"])) for row in open_rounds
                      if not row["counts"]["withheld"]],
            "replies": dashboard.recent_replies(now),
            "alerts": dashboard.leader_alerts(),
        }
    if current_user.has_role(*EDITORS):
        page["attention"] = dashboard.rounds_needing_attention(open_rounds, now)
    if current_user.has_role("pm"):
        page["pm"] = {"sets": dashboard.owned_sets(current_user), "waiting": dashboard.waiting_for(current_user)}
    return render_template("staff/home.html", describe_change=describe_change, **page)


@staff_bp.get("/home/live")
@staff_required
def live():
    """The open rounds' counts, for the home page to refresh without a reload."""
    return {"rounds": dashboard.live_counts()}
