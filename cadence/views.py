"""Staff pages for cadences and the development outbox."""

import re

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, DateField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from cadence import cadences as service
from cadence.clock import parse_instant, utcnow
from cadence.models import Cadence, OutboxMessage, Round
from surveys.org.models import Person, Team
from cadence.recurrence import PRESETS, describe
from surveys.auth.access import roles_required
from surveys.auth.service import safe_next
from surveys.scorecard.detectable import detectable_changes
from surveys.extensions import db
from surveys.formatting import viewer_timezone
from surveys import limits, lifecycle
from surveys.models import QuestionSet
from surveys.permissions import ADMINS, EDITORS

cadences_bp = Blueprint("cadences", __name__, url_prefix="/cadences")

CUSTOM = "custom"


class CadenceForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired("Give the cadence a name."), Length(max=200)],
                       description="e.g. Monthly win/loss pulse")
    question_set_id = SelectField("Question set", coerce=int, validators=[InputRequired()])
    preset = SelectField("Repeats", choices=[(key, label) for key, (label, _) in PRESETS.items()] + [(CUSTOM, "Custom RRULE…")])
    rrule = StringField("Custom RRULE", validators=[Optional(), Length(max=500)], description="Only for “Custom”, e.g. FREQ=WEEKLY;BYDAY=TU")
    send_time = StringField("Send time", default="09:00", validators=[InputRequired(), Length(max=5)], description="HH:MM")
    timezone = StringField("Time zone", default="recipient", validators=[InputRequired(), Length(max=64)],
                           description="An IANA name such as Europe/Berlin, or “recipient” for the send time in each rep's own zone")
    open_days = IntegerField("Open for (days)", default=5, validators=[InputRequired(), NumberRange(1, 90)])
    reminder_days = StringField("Reminders after (days)", default="2, 4", validators=[Optional(), Length(max=50)],
                                description="Comma-separated days after opening; non-responders only")
    grace_days = IntegerField("Late grace period (days)", default=0, validators=[Optional(), NumberRange(0, 30)],
                              description="Answers still accepted this long after the close; no reminders then")
    add_late_joiners = BooleanField("Invite people who join the audience while a round is open")
    teams = SelectMultipleField("Teams (with their sub-teams)", validators=[Optional()])
    regions = SelectMultipleField("Regions", validators=[Optional()])
    segments = SelectMultipleField("Segments", validators=[Optional()])
    starts_on = DateField("Starts on", validators=[Optional()])
    ends_on = DateField("Ends on", validators=[Optional()])


def _fill_choices(form: CadenceForm, keep_set_id: int | None = None):
    """Published sets that are not archived (and, when editing, the cadence's own set whatever it is)."""
    sets = db.session.scalars(
        select(QuestionSet).where(lifecycle.archived_filter(QuestionSet, False) | (QuestionSet.id == keep_set_id))
        .order_by(QuestionSet.name)
    ).all()
    form.question_set_id.choices = [(s.id, s.name) for s in sets if s.latest_published is not None]
    form.teams.choices = [(p, p) for p in db.session.scalars(select(Team.path).order_by(Team.path))]
    form.regions.choices = [(r, r) for r in db.session.scalars(select(Person.region).distinct().where(Person.region.isnot(None)).order_by(Person.region))]
    form.segments.choices = [(s, s) for s in db.session.scalars(select(Person.segment).distinct().where(Person.segment.isnot(None)).order_by(Person.segment))]


def _payload(form: CadenceForm) -> dict:
    """The form as a CadenceInput payload (what the API accepts)."""
    rule = form.rrule.data if form.preset.data == CUSTOM else PRESETS[form.preset.data][1]
    reminders = []
    for part in (form.reminder_days.data or "").split(","):
        part = part.strip()
        if part:
            reminders.append(int(part) if part.isdigit() else part)
    payload = {
        "name": form.name.data,
        "question_set_id": form.question_set_id.data,
        "rrule": rule,
        "send_time": form.send_time.data,
        "timezone": form.timezone.data.strip(),
        "open_days": form.open_days.data,
        "reminder_days": reminders,
        "grace_days": form.grace_days.data or 0,
        "add_late_joiners": bool(form.add_late_joiners.data),
        "audience": {"teams": form.teams.data, "regions": form.regions.data, "segments": form.segments.data},
    }
    if form.starts_on.data:
        payload["starts_on"] = form.starts_on.data.isoformat()
    # Blank means no end (and clears one when editing).
    payload["ends_on"] = form.ends_on.data.isoformat() if form.ends_on.data else None
    return payload


def _form_field(error_key: str, form: CadenceForm) -> str:
    """The form field that shows an error keyed like the API's: "reminder_days[1]"
    is the reminder_days field, "audience.teams" the teams field."""
    parts = re.split(r"[.\[]", error_key)
    if parts[0] == "audience":
        return parts[1] if len(parts) > 1 and parts[1] in form else "teams"
    return parts[0] if parts[0] in form else "name"


def _form_data(cadence: Cadence) -> dict:
    """A cadence as the form's initial data, for editing it."""
    preset = next((key for key, (_, rule) in PRESETS.items() if rule == cadence.rrule), CUSTOM)
    audience = cadence.audience or {}
    return {
        "name": cadence.name, "question_set_id": cadence.question_set_id, "preset": preset,
        "rrule": cadence.rrule if preset == CUSTOM else "", "send_time": cadence.send_time,
        "timezone": cadence.timezone, "open_days": cadence.open_days,
        "reminder_days": ", ".join(str(day) for day in cadence.reminder_days or []),
        "grace_days": cadence.grace_days or 0, "add_late_joiners": bool(cadence.add_late_joiners),
        "teams": audience.get("teams", []), "regions": audience.get("regions", []),
        "segments": audience.get("segments", []), "starts_on": cadence.starts_on, "ends_on": cadence.ends_on,
    }


def checked_payload(form: CadenceForm, keep_set_id: int | None = None) -> dict | None:
    """Check every field in one pass, the form's own checks and the
    service's together, so a PM sees every problem at once; the payload
    when all is well, else None with the errors on the form's fields.
    A field the form already refused gets no second message from the service."""
    form.validate()
    if form.csrf_token.errors:
        return None
    if form.preset.data == CUSTOM and not (form.rrule.data or "").strip():
        form.rrule.errors = list(form.rrule.errors) + ["Write the RRULE, or choose a preset."]
    payload = _payload(form)
    try:
        service.validate_cadence(payload, utcnow().date(), keep_set_id=keep_set_id)
    except service.CadenceInvalid as invalid:
        for field, message in invalid.errors.items():
            target = _form_field(field, form)
            if field == "rrule" and form.preset.data != CUSTOM:
                target = "preset"
            if not form[target].errors:
                form[target].errors = list(form[target].errors) + [message]
    return None if form.errors else payload


@cadences_bp.get("/")
@roles_required(*EDITORS)
def index():
    archived = request.args.get("archived") == "true"
    cadences = db.session.scalars(
        select(Cadence).where(lifecycle.archived_filter(Cadence, archived)).order_by(Cadence.name)
    ).all()
    archived_count = db.session.scalar(
        select(func.count(Cadence.id)).where(lifecycle.archived_filter(Cadence, True))
    )
    return render_template("cadences/index.html", cadences=cadences, describe=describe, archived=archived,
                           archived_count=archived_count)


@cadences_bp.route("/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new():
    form = CadenceForm()
    _fill_choices(form)
    if not form.question_set_id.choices:
        return render_template("cadences/new.html", form=None)
    if form.is_submitted() and (payload := checked_payload(form)) is not None:
        try:
            cadence = service.create_cadence(payload, current_user._get_current_object(), utcnow())
        except service.CadenceInvalid as invalid:  # only if the data changed since the check
            db.session.rollback()
            flash("Not created: " + "; ".join(invalid.errors.values()), "error")
        else:
            flash(f"Cadence “{cadence.name}” created.", "success")
            return redirect(url_for("cadences.show", cadence_id=cadence.id))
    return render_template("cadences/new.html", form=form), (422 if form.errors else 200)


@cadences_bp.route("/<int:cadence_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def edit(cadence_id):
    """Change a cadence's settings; rounds already recorded keep theirs."""
    cadence = db.session.get(Cadence, cadence_id) or abort(404)
    form = CadenceForm() if request.method == "POST" else CadenceForm(data=_form_data(cadence))
    _fill_choices(form, keep_set_id=cadence.question_set_id)
    if form.is_submitted() and (payload := checked_payload(form, cadence.question_set_id)) is not None:
        try:
            service.update_cadence(cadence, payload, current_user._get_current_object(), utcnow())
        except service.CadenceInvalid as invalid:  # only if the data changed since the check
            db.session.rollback()
            flash("Not saved: " + "; ".join(invalid.errors.values()), "error")
        else:
            flash(f"Saved “{cadence.name}”. Rounds already opened keep the settings they were sent with.", "success")
            return redirect(url_for("cadences.show", cadence_id=cadence.id))
    return render_template("cadences/new.html", form=form, cadence=cadence), (422 if form.errors else 200)


@cadences_bp.get("/<int:cadence_id>")
@roles_required(*EDITORS)
def show(cadence_id):
    cadence = db.session.get(Cadence, cadence_id) or abort(404)
    return render_template(
        "cadences/show.html",
        cadence=cadence,
        rule_label=describe(cadence.rrule),
        upcoming=service.preview(cadence, utcnow(), 5),
        # Times read in the viewer's zone; a cadence sent in a fixed zone of
        # its own also shows that zone's time, since its rule is written in it.
        cadence_zone=None if cadence.uses_recipient_timezone or cadence.timezone == viewer_timezone()
        else cadence.timezone,
        parse=parse_instant,
        rounds=service.round_summaries(cadence),
        detectable=detectable_changes(cadence),
    )


class OccurrenceForm(FlaskForm):
    opens_on = DateField("New opening date", validators=[Optional()])


@cadences_bp.post("/<int:cadence_id>/occurrences/<period_key>")
@roles_required(*EDITORS)
def change_occurrence(cadence_id, period_key):
    """Skip, move or restore one upcoming round (buttons on the cadence page)."""
    cadence = db.session.get(Cadence, cadence_id) or abort(404)
    form = OccurrenceForm()
    action = request.form.get("action")
    if not form.validate_on_submit():
        flash("That form expired; please try again.", "error")
    elif action == "restore":
        service.restore_occurrence(cadence, period_key, current_user._get_current_object())
        flash(f"{period_key} is back on its usual date.", "success")
    else:
        try:
            service.change_occurrence(cadence, period_key, action, form.opens_on.data,
                                      current_user._get_current_object(), utcnow())
        except service.CadenceInvalid as invalid:
            db.session.rollback()
            flash(f"{period_key}: " + "; ".join(invalid.errors.values()), "error")
        else:
            flash(f"{period_key} will be skipped." if action == "skip" else f"{period_key} now opens on {form.opens_on.data}.", "success")
    return redirect(url_for("cadences.show", cadence_id=cadence.id))


@cadences_bp.post("/rounds/<int:round_id>/nudge")
@roles_required(*EDITORS)
def nudge(round_id):
    from cadence.planner import NudgeRefused

    round_ = db.session.get(Round, round_id) or abort(404)
    if not FlaskForm().validate_on_submit():
        flash("That form expired; please try again.", "error")
        return redirect(url_for("cadences.show", cadence_id=round_.cadence_id))
    try:
        count = service.nudge(round_, current_user._get_current_object(), utcnow())
    except NudgeRefused as refused:
        flash(f"No nudge sent: {refused}.", "error")
    else:
        if count is None:
            flash("Nudged everyone who has not answered yet.", "success")
        else:
            flash(f"Nudged {count} {'person' if count == 1 else 'people'} who have not answered yet.", "success")
    return redirect(url_for("cadences.show", cadence_id=round_.cadence_id))


@cadences_bp.post("/<int:cadence_id>/pause")
@roles_required(*EDITORS)
def pause(cadence_id):
    cadence = db.session.get(Cadence, cadence_id) or abort(404)
    service.pause(cadence, current_user._get_current_object())
    flash("Paused: no new rounds open until you resume.", "info")
    return redirect(url_for("cadences.show", cadence_id=cadence.id))


@cadences_bp.post("/<int:cadence_id>/resume")
@roles_required(*EDITORS)
def resume(cadence_id):
    cadence = db.session.get(Cadence, cadence_id) or abort(404)
    service.resume(cadence, current_user._get_current_object())
    flash("Resumed: the next tick plans the next round.", "info")
    return redirect(url_for("cadences.show", cadence_id=cadence.id))


@cadences_bp.post("/<int:cadence_id>/archive")
@roles_required(*EDITORS)
def archive(cadence_id):
    cadence = db.session.get(Cadence, cadence_id) or abort(404)
    try:
        lifecycle.archive_cadence(cadence, current_user._get_current_object(), utcnow())
    except lifecycle.LifecycleRefused as refused:
        flash(str(refused), "error")
    else:
        flash(f"Archived “{cadence.name}”: it has left the lists and opens no new rounds; "
              "a round already open runs to its close. Its rounds and scorecards stay here.", "success")
    return redirect(url_for("cadences.show", cadence_id=cadence.id))


@cadences_bp.post("/<int:cadence_id>/restore")
@roles_required(*EDITORS)
def restore(cadence_id):
    cadence = db.session.get(Cadence, cadence_id) or abort(404)
    try:
        lifecycle.restore_cadence(cadence, current_user._get_current_object())
    except lifecycle.LifecycleRefused as refused:
        flash(str(refused), "error")
    else:
        flash(f"Restored “{cadence.name}”: the next tick plans its next round; "
              "periods missed while it was archived are not sent.", "success")
    # A Restore button on a scorecard sends the reader back there.
    return redirect(safe_next(request.form.get("next")) or url_for("cadences.show", cadence_id=cadence.id))


# -- Operations ------------------------------------------------------------------------


@cadences_bp.get("/operations")
@roles_required(*ADMINS)
def operations():
    from cadence.operations import status

    return render_template("cadences/operations.html", report=status(utcnow()))


@cadences_bp.post("/operations/deliveries/<int:delivery_id>/retry")
@roles_required(*ADMINS)
def retry_delivery(delivery_id):
    from cadence.operations import retry_failed_delivery
    from cadence.planner import hand_out_due_deliveries

    if FlaskForm().validate_on_submit() and retry_failed_delivery(delivery_id, utcnow()):
        hand_out_due_deliveries(utcnow())
        flash("Queued again.", "success")
    else:
        flash("That delivery is no longer failed (or the form expired).", "error")
    return redirect(url_for("cadences.operations"))


@cadences_bp.post("/operations/jobs/<job_id>/retry")
@roles_required(*ADMINS)
def retry_job(job_id):
    from cadence.operations import retry_failed_job

    if FlaskForm().validate_on_submit() and retry_failed_job(job_id):
        flash("Job queued again.", "success")
    else:
        flash("That job is no longer in the failed list (or the form expired).", "error")
    return redirect(url_for("cadences.operations"))


# -- Development outbox ---------------------------------------------------------------
#
# An admin page (issue 13): a PM reading a reset link here could take over the
# admin account. Secret links are hidden from everyone but the addressee:
# password-reset links always, rep links in production (a newcomer trying the
# loop locally may follow a rep's link, as the README describes).

RESET_LINK = re.compile(r"(/password/reset/)[^/\s?#\"'<>\\]+")
REP_LINK = re.compile(r"(/r/)[^/\s?#\"'<>\\]+")
HIDDEN = "[hidden: only its addressee sees this link]"


def shown_body(message: OutboxMessage, body: str | None) -> str | None:
    """`body` as the signed-in admin may see it."""
    if body is None or message.to_address.lower() == current_user.email.lower():
        return body
    body = RESET_LINK.sub(r"\1" + HIDDEN, body)
    if current_app.config["CANARY_ENV"] == "production":
        body = REP_LINK.sub(r"\1" + HIDDEN, body)
    return body


@cadences_bp.get("/outbox")
@roles_required(*ADMINS)
def outbox():
    page = limits.whole_number(request.args.get("page"), minimum=1, maximum=1_000_000) or 1
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    to = (request.args.get("to") or "").strip().lower()
    if to:
        query = query.where(OutboxMessage.to_address.contains(to, autoescape=True))
    messages = db.paginate(query, page=page, per_page=50, error_out=False)
    return render_template("cadences/outbox.html", messages=messages, to=to)


@cadences_bp.get("/outbox/<int:message_id>")
@roles_required(*ADMINS)
def outbox_message(message_id):
    message = db.session.get(OutboxMessage, message_id) or abort(404)
    return render_template("cadences/outbox_message.html", message=message, text_body=shown_body(message, message.text_body))


@cadences_bp.get("/outbox/<int:message_id>/html")
@roles_required(*ADMINS)
def outbox_message_html(message_id):
    """The HTML part as the rep's mail client would render it, sandboxed:
    its inline styles are allowed here and nowhere else, and no script runs."""
    message = db.session.get(OutboxMessage, message_id) or abort(404)
    if not message.html_body:
        abort(404)
    response = make_response(shown_body(message, message.html_body))
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox allow-popups allow-top-navigation-by-user-activation"
    return response
