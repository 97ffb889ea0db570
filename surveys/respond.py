"""Rep links: `/r/<token>` shows and stores one invitation's answers.

Reps never sign in; the signed link is the credential. A forged, truncated
or revoked link answers the same 404 as an unknown one. Answers are accepted
while the round's status is open (only the tick opens and closes rounds).
"""

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import select

from cadence.clock import utcnow
from cadence.links import invitation_for_token
from surveys import answers as rep_answers
from surveys.extensions import csrf, db
from surveys.models import Response

respond_bp = Blueprint("respond", __name__)


def _invitation_or_404(token: str):
    invitation = invitation_for_token(token)
    if invitation is None or invitation.round.status == "skipped" or invitation.round.version is None:
        abort(404)
    return invitation


def _existing_response(invitation):
    return db.session.scalar(select(Response).where(Response.invitation_id == invitation.id))


def _quick_answer(version, args) -> dict:
    """A one-click answer from the email (`?<first question key>=<value>`),
    used only when it is a valid value of the first scale/NPS question."""
    if not version.questions:
        return {}
    first = version.questions[0]
    if first.type not in ("scale", "nps") or first.key not in args:
        return {}
    low, high = (0, 10) if first.type == "nps" else (1, first.setting("scale_max", 5))
    value = args.get(first.key, "")
    if value.isdigit() and low <= int(value) <= high:
        return {first.key: value}
    return {}


# The rep form carries its own CSRF token (validated by the form itself, with
# a time limit that outlasts an answering session); see surveys.answers.
@respond_bp.route("/r/<token>", methods=["GET", "POST"])
@csrf.exempt
def respond(token):
    invitation = _invitation_or_404(token)
    round_ = invitation.round
    version = round_.version
    if not round_.is_open:
        return render_template("respond/closed.html", invitation=invitation, round=round_), (
            410 if request.method == "POST" else 200
        )
    form_class = rep_answers.form_class_for(version)
    response = _existing_response(invitation)
    status = 200
    if request.method == "POST":
        form = form_class()
        try:
            cleaned = rep_answers.validate_submission(form, version, request.form.keys())
        except rep_answers.UnexpectedFields as unexpected:
            form = form_class()
            return (
                render_template(
                    "respond/form.html",
                    **_page(invitation, version, form, response, {}),
                    problem=f"This form was sent with fields it does not have ({unexpected}). Nothing was saved; please answer again.",
                ),
                400,
            )
        if cleaned is not None:
            rep_answers.store_response(invitation, version, cleaned, utcnow())
            return redirect(url_for("respond.thanks", token=token), code=303)
        csrf_failed = bool(form.meta.csrf and form.csrf_token.errors)
        status = 400 if csrf_failed else 422
        values = {key: form[key].data for key in form._fields}
        problem = (
            "Your form had expired, so nothing was saved yet. Your answers are still here: please send them again."
            if csrf_failed
            else None
        )
        return render_template("respond/form.html", **_page(invitation, version, form, response, values), problem=problem), status
    values = rep_answers.stored_values(response, version)
    values.update(_quick_answer(version, request.args))
    form = form_class(data=values)
    return render_template("respond/form.html", **_page(invitation, version, form, response, values)), status


def _page(invitation, version, form, response, values):
    visible = {q.key for q in rep_answers.visible_questions(version, rep_answers.typed_values(version, values))}
    return {
        "invitation": invitation,
        "round": invitation.round,
        "version": version,
        "question_set": version.question_set,
        "form": form,
        "response": response,
        "visible": visible,
        "minutes": rep_answers.estimated_minutes(version),
        "other_suffix": rep_answers.OTHER_SUFFIX,
        "closes_at": invitation.round.closes_at,
        "timezone": invitation.timezone,
    }


@respond_bp.get("/r/<token>/thanks")
def thanks(token):
    invitation = _invitation_or_404(token)
    response = _existing_response(invitation)
    if response is None:
        return redirect(url_for("respond.respond", token=token))
    from surveys.heard import what_we_heard

    return render_template(
        "respond/thanks.html",
        invitation=invitation,
        round=invitation.round,
        question_set=invitation.round.version.question_set,
        response=response,
        token=token,
        heard=what_we_heard(invitation.round),
    )
