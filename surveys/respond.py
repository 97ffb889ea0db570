"""Rep links: `/r/<token>` shows and stores one invitation's answers.

Reps never sign in; the signed link is the credential. A forged, truncated
or revoked link answers the same 404 as an unknown one. Answers are accepted
while the round's status is open (only the tick opens and closes rounds).
"""

import functools

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from sqlalchemy import bindparam, select
from sqlalchemy.orm import contains_eager

from cadence.clock import utcnow
from cadence.links import link_is_current, signed_reference
from cadence.models import Invitation, Round
from surveys import answers as rep_answers
from surveys.disclosure import effective_policy
from surveys.extensions import csrf, db, login_manager
from surveys.models import QuestionSet, QuestionSetVersion, Response

respond_bp = Blueprint("respond", __name__)


@respond_bp.before_request
def _no_staff_identity():
    """A rep link is a bearer credential for one person's answers: a staff
    session neither opens more nor changes the page (issue 13). The staff
    member is not loaded here, so pages render as for anyone holding the link."""
    g._login_user = login_manager.anonymous_user()


@functools.cache
def _invitation_query():
    """An invitation with its round, if the round was not skipped and its
    version is published; built once, on first use, when every mapper is
    configured."""
    return (
        select(Invitation)
        .join(Invitation.round)
        .join(QuestionSetVersion, QuestionSetVersion.id == Round.question_set_version_id)
        .options(contains_eager(Invitation.round))
        .where(
            Invitation.id == bindparam("invitation_id"),
            Round.status != "skipped",
            QuestionSetVersion.status == "published",
        )
    )


def _invitation_or_404(token: str):
    """The link's invitation (with its round) and the round's published
    version (with its questions), or 404. One query: this runs on every
    submission (B4)."""
    reference = signed_reference(token)
    if reference is None:
        abort(404)
    invitation_id, nonce = reference
    invitation = db.session.scalar(_invitation_query(), {"invitation_id": invitation_id})
    if invitation is None or not link_is_current(invitation, nonce):
        abort(404)
    return invitation, rep_answers.published_version(invitation.round.question_set_version_id)


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
    invitation, version = _invitation_or_404(token)
    round_ = invitation.round
    if not round_.is_open:
        return render_template("respond/closed.html", invitation=invitation, round=round_), (
            410 if request.method == "POST" else 200
        )
    form_class = rep_answers.form_class_for(version)
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
                    **_page(invitation, version, form, _existing_response(invitation), {}),
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
        page = _page(invitation, version, form, _existing_response(invitation), values)
        return render_template("respond/form.html", **page, problem=problem), status
    response = _existing_response(invitation)
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
        "question_set": db.session.get(QuestionSet, version.question_set_id),
        # What this rep was promised when invited (never looser than that).
        "promise": effective_policy(invitation.round),
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
    invitation, version = _invitation_or_404(token)
    response = _existing_response(invitation)
    if response is None:
        return redirect(url_for("respond.respond", token=token))
    from surveys.heard import what_we_heard

    return render_template(
        "respond/thanks.html",
        invitation=invitation,
        round=invitation.round,
        question_set=db.session.get(QuestionSet, version.question_set_id),
        response=response,
        token=token,
        heard=what_we_heard(invitation.round),
    )
