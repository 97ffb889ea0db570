"""Staff pages for deals: the list (with events that failed, replayable by an
admin), the CSV import with its row-by-row report, a moment's deal
scorecard (per deal and revenue-weighted side by side, the calibration
table, the CSV download), and the admin's exchange rates."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import select
from wtforms import BooleanField, StringField
from wtforms.validators import InputRequired

from cadence.clock import utcnow
from surveys.tabular import csv_text, download
from surveys.auth.access import roles_required
from surveys.deals import currency
from surveys.deals.csv_import import import_deals
from surveys.deals.models import OUTCOMES, DealEvent, ExchangeRate, Moment
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


class RateForm(FlaskForm):
    currency = StringField("Currency", description="An ISO 4217 code, such as EUR.",
                           validators=[InputRequired("Enter a currency code.")])
    rate = StringField("Rate", description="What one unit of that currency is worth in the reporting currency.",
                       validators=[InputRequired("Enter the rate.")])
    effective_from = StringField("Effective from", description="The first close date the rate applies to (YYYY-MM-DD).",
                                 validators=[InputRequired("Enter the date the rate applies from.")])


class RateImportForm(FlaskForm):
    file = FileField(
        "Exchange rates CSV",
        description="Columns: currency, rate, effective_from (YYYY-MM-DD). At most 2 MB.",
        validators=[FileRequired("Choose a CSV file to import."), FileAllowed(["csv", "txt"], "Choose a .csv file.")],
    )
    dry_run = BooleanField("Dry run: check the file and show the report, change nothing")


def _rates_page(rate_form=None, import_form=None, report=None, status=200):
    return render_template("deals/rates.html", rates=currency.list_rates(), reporting=currency.reporting_currency(),
                           missing=currency.deals_without_rate(), rate_form=rate_form or RateForm(prefix="rate"),
                           import_form=import_form or RateImportForm(prefix="import"), report=report), status


@deal_pages_bp.get("/rates")
@roles_required("admin")
def rates():
    return _rates_page()


@deal_pages_bp.post("/rates")
@roles_required("admin")
def rate_set():
    form = RateForm(prefix="rate")
    if not form.validate_on_submit():
        return _rates_page(rate_form=form, status=422)
    try:
        rate, change = currency.set_rate(current_user._get_current_object(), {
            "currency": form.currency.data, "rate": form.rate.data, "effective_from": form.effective_from.data})
    except currency.RateInvalid as invalid:
        for name, message in invalid.errors.items():
            form[name].errors = [message[:1].upper() + message[1:] + "."]
        return _rates_page(rate_form=form, status=422)
    flash(f"{rate.currency} from {rate.effective_from.isoformat()}: {rate.rate:g} {currency.reporting_currency()} "
          f"({change}). Its deals are converted again.", "success")
    return redirect(url_for("deal_pages.rates"), code=303)


@deal_pages_bp.post("/rates/import")
@roles_required("admin")
def rates_import():
    form = RateImportForm(prefix="import")
    if not form.validate_on_submit():
        return _rates_page(import_form=form, status=422)
    report = currency.import_rates(form.file.data.read(), current_user._get_current_object(), dry_run=form.dry_run.data)
    return _rates_page(import_form=form, report=report, status=422 if report.file_error else 200)


@deal_pages_bp.post("/rates/<int:rate_id>/delete")
@roles_required("admin")
def rate_delete(rate_id):
    rate = db.session.get(ExchangeRate, rate_id) or abort(404)
    label = f"{rate.currency} from {rate.effective_from.isoformat()}"
    currency.delete_rate(current_user._get_current_object(), rate)
    flash(f"The rate of {label} is deleted. Its deals are converted again.", "success")
    return redirect(url_for("deal_pages.rates"), code=303)
