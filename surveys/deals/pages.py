"""Staff pages for deals: the list (with events that failed, replayable by an
admin), the CSV import with its row-by-row report, and a moment's deal
scorecard (per deal and revenue-weighted side by side, the calibration
table, the CSV download)."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import select
from wtforms import BooleanField

from cadence.clock import utcnow
from surveys.tabular import csv_text, download
from surveys.auth.access import roles_required
from surveys.deals.csv_import import import_deals
from surveys.deals.models import OUTCOMES, DealEvent, Moment
from surveys.deals.processing import replay
from surveys.deals.queries import list_deals, list_events
from surveys.deals.scorecard import (
    CSV_COLUMNS, DEFAULT_CAP, PERIODS, SLICES, Options, ScorecardQueryInvalid, csv_rows, deal_scorecard,
)
from surveys.extensions import db
from surveys.permissions import STAFF

deal_pages_bp = Blueprint("deal_pages", __name__, url_prefix="/deals")


class DealImportForm(FlaskForm):
    file = FileField(
        "Closed deals CSV",
        description="Columns: id, owner_email, account, amount, currency, stage, outcome, close_date, and optionally "
        "competitor, segment, region, products (separated by ';'), loss_reason. At most 2 MB.",
        validators=[FileRequired("Choose a CSV file to import."), FileAllowed(["csv", "txt"], "Choose a .csv file.")],
    )
    dry_run = BooleanField("Dry run: check the file and show the report, change nothing")


@deal_pages_bp.get("/")
@roles_required(*STAFF)
def index():
    outcome = request.args.get("outcome") or None
    if outcome not in (None, *OUTCOMES):
        abort(400)
    return render_template("deals/index.html", deals=list_deals(outcome=outcome), outcome=outcome, outcomes=OUTCOMES,
                           failed=list_events(status="failed", limit=50),
                           moments=db.session.scalars(select(Moment).order_by(Moment.id)).all(), form=DealImportForm())


@deal_pages_bp.post("/import")
@roles_required("admin")
def import_csv():
    form = DealImportForm()
    if not form.validate_on_submit():
        return _index_with(form, None, 422)
    report = import_deals(form.file.data.read(), utcnow(), dry_run=form.dry_run.data)
    return _index_with(form, report, 422 if report.file_error else 200)


def _index_with(form, report, status):
    return render_template("deals/index.html", deals=list_deals(), outcome=None, outcomes=OUTCOMES,
                           failed=list_events(status="failed", limit=50), report=report,
                           moments=db.session.scalars(select(Moment).order_by(Moment.id)).all(), form=form), status


@deal_pages_bp.post("/events/<int:event_id>/replay")
@roles_required("admin")
def replay_event(event_id):
    event = db.session.get(DealEvent, event_id) or abort(404)
    if event.status == "processing":
        flash("That event is being processed; replay it once that is done.", "error")
    else:
        replay(event, current_user._get_current_object(), utcnow())
        flash(f"Event {event.event_id} is queued to be processed again.", "success")
    return redirect(url_for("deal_pages.index"))


def _options():
    try:
        cap = float(request.args.get("cap", current_app.config.get("DEAL_WEIGHT_CAP", DEFAULT_CAP)))
    except ValueError:
        abort(400)
    return Options(period=request.args.get("period", "quarter"), by=request.args.get("by") or None,
                   weight="revenue", cap=cap)


@deal_pages_bp.get("/moments/<int:moment_id>/scorecard")
@roles_required(*STAFF)
def scorecard(moment_id):
    moment = db.session.get(Moment, moment_id) or abort(404)
    options = _options()
    try:
        card = deal_scorecard(moment, options)
    except ScorecardQueryInvalid:
        abort(400)
    return render_template("deals/scorecard.html", moment=moment, card=card, options=options, periods=PERIODS, slices=SLICES)


@deal_pages_bp.get("/moments/<int:moment_id>/scorecard.csv")
@roles_required(*STAFF)
def scorecard_csv(moment_id):
    moment = db.session.get(Moment, moment_id) or abort(404)
    try:
        card = deal_scorecard(moment, _options())
    except ScorecardQueryInvalid:
        abort(400)
    return download(csv_text(CSV_COLUMNS, csv_rows(card)), "text/csv", f"deal-scorecard-{moment.id}.csv")
