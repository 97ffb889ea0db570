"""The staff home page: what needs attention, by role."""

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from cadence.models import Cadence, Invitation, Round
from surveys.org.models import Person
from surveys.auth.access import staff_required
from surveys.disclosure import round_counts
from surveys.extensions import db
from surveys.models import QuestionSet

staff_bp = Blueprint("staff", __name__)


@staff_bp.get("/")
def root():
    if current_user.is_authenticated:
        return redirect(url_for("staff.home"))
    return redirect(url_for("auth.sign_in"))


@staff_bp.get("/home")
@staff_required
def home():
    rows = db.session.execute(
        select(Round, Cadence.name, func.count(Invitation.id), func.count(Invitation.responded_at))
        .join(Cadence, Cadence.id == Round.cadence_id)
        .outerjoin(Invitation, Invitation.round_id == Round.id)
        .where(Round.status == "open")
        .group_by(Round.id, Cadence.name)
        .order_by(Round.closes_at)
    ).all()
    open_rounds = [(round_, name, round_counts(round_, invited, responded)) for round_, name, invited, responded in rows]
    recent_closed = db.session.execute(
        select(Round, Cadence.name)
        .join(Cadence, Cadence.id == Round.cadence_id)
        .where(Round.status == "closed")
        .order_by(Round.closes_at.desc())
        .limit(5)
    ).all()
    counts = {
        "question_sets": db.session.scalar(select(func.count(QuestionSet.id))),
        "cadences": db.session.scalar(select(func.count(Cadence.id))),
        "people": db.session.scalar(select(func.count(Person.id))),
    }
    return render_template("staff/home.html", open_rounds=open_rounds, recent_closed=recent_closed, counts=counts)
