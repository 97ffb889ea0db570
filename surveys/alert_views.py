"""The alerts page for staff: open alerts by severity and recency, each with
its chart, and the forms that move an alert on. Thin: the work is in
`surveys.alerts`."""

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from surveys.alert_chart import chart_svg
from surveys.alert_models import Alert
from surveys.alert_routing import alert_title, failed_notifications, scorecard_link
from surveys.alerts import AlertStateError, alert_marks, change_state, chart_history, list_alerts, published
from surveys.auth.access import roles_required
from surveys.extensions import db
from surveys.permissions import STAFF

alerts_bp = Blueprint("alerts", __name__, url_prefix="/alerts")
VIEWS = {"open": "Open", "explained": "Explained", "false_alarm": "False alarms"}


def _cards(alerts, errors=None, kept=None):
    return [{"alert": a, "title": alert_title(a), "link": scorecard_link(a), "chart": chart_svg(chart_history(a), alert_title(a)),
             "errors": (errors or {}) if kept and kept.get("id") == a.id else {},
             "note": (kept or {}).get("note", "") if kept and kept.get("id") == a.id else ""} for a in alerts]


@alerts_bp.app_template_global("round_alert_marks")
def round_alert_marks(round_id: int) -> dict:
    """For the scorecard: {question key: ["region EMEA: favourable % down", ...]} of the round's alerts
    (read once per request: the page asks for every question)."""
    cache = g.setdefault("alert_marks", {})
    if round_id not in cache:
        cache[round_id] = alert_marks(round_id)
    return cache[round_id]


@alerts_bp.app_template_global("failed_alert_messages")
def failed_alert_messages() -> list:
    """For the operations page: alert emails and webhooks that failed after their last try."""
    return failed_notifications()


@alerts_bp.get("/")
@roles_required(*STAFF)
def index():
    view = request.args.get("view", "open")
    if view not in VIEWS:
        view = "open"
    return render_template("alerts/index.html", cards=_cards(list_alerts(state=view)), view=view, views=VIEWS,
                           failed=failed_notifications() if current_user.has_role("admin") else [])


@alerts_bp.post("/<int:alert_id>/state")
@roles_required(*STAFF)
def change(alert_id):
    alert = db.session.get(Alert, alert_id)
    if alert is None or not published([alert]):
        abort(404)
    state, note = request.form.get("state", ""), request.form.get("note", "")
    try:
        change_state(alert, current_user, state, note)
    except AlertStateError as error:
        db.session.rollback()
        cards = _cards(list_alerts(state="open"), error.errors, {"id": alert_id, "note": note})
        if not any(card["alert"].id == alert_id for card in cards):
            cards = _cards([alert], error.errors, {"id": alert_id, "note": note}) + cards
        return render_template("alerts/index.html", cards=cards, view="open", views=VIEWS, failed=[]), 422
    db.session.commit()
    flash(f"Alert marked {state.replace('_', ' ')}.", "success")
    return redirect(url_for("alerts.index"))

