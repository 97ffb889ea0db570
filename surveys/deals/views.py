"""The rep's deal form, `/d/<token>`: the deal's context at the top, then the
moment's questions (the same form and checks as `/r/<token>`). The signed
link is the credential; anything forged, revoked or not yet sent is a 404."""

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from cadence.clock import utcnow
from surveys import answers as rep_answers
from surveys.deals import moments
from surveys.extensions import csrf, db, login_manager
from surveys.models import QuestionSet

deals_bp = Blueprint("deals", __name__)

PROMISE = {"confidentiality": "attributed", "hold_until_close": False}


@deals_bp.before_request
def _no_staff_identity():
    g._login_user = login_manager.anonymous_user()


def _invitation_or_404(token):
    invitation = moments.invitation_for_token(token)
    if invitation is None:
        abort(404)
    return invitation, rep_answers.published_version(invitation.version_id)


@deals_bp.route("/d/<token>", methods=["GET", "POST"])
@csrf.exempt
def respond(token):
    invitation, version = _invitation_or_404(token)
    now = utcnow()
    if not moments.accepts_answers(invitation, now):
        return render_template("deals/closed.html", invitation=invitation, deal=invitation.deal), (
            410 if request.method == "POST" else 200)
    form_class = rep_answers.form_class_for(version)
    if request.method == "POST":
        form = form_class()
        try:
            cleaned = rep_answers.validate_submission(form, version, request.form.keys())
        except rep_answers.UnexpectedFields as unexpected:
            return render_template("deals/form.html", **_page(invitation, version, form_class(), {}),
                                   problem=f"This form was sent with fields it does not have ({unexpected}). "
                                   "Nothing was saved; please answer again."), 400
        if cleaned is not None:
            moments.store_answers(invitation, cleaned, now)
            return redirect(url_for("deals.thanks", token=token), code=303)
        csrf_failed = bool(form.meta.csrf and form.csrf_token.errors)
        values = {key: form[key].data for key in form._fields}
        problem = ("Your form had expired, so nothing was saved yet. Your answers are still here: please send them again."
                   if csrf_failed else None)
        return render_template("deals/form.html", **_page(invitation, version, form, values), problem=problem), (
            400 if csrf_failed else 422)
    values = moments.stored_values(invitation)
    return render_template("deals/form.html", **_page(invitation, version, form_class(data=values), values))


def _page(invitation, version, form, values):
    visible = {q.key for q in rep_answers.visible_questions(version, rep_answers.typed_values(version, values))}
    return {
        "invitation": invitation, "deal": invitation.deal, "version": version,
        "question_set": db.session.get(QuestionSet, version.question_set_id), "promise": PROMISE,
        "form": form, "response": {"updated_at": invitation.responded_at} if invitation.responded_at else None, "visible": visible,
        "minutes": rep_answers.estimated_minutes(version), "other_suffix": rep_answers.OTHER_SUFFIX,
        "closes_at": invitation.expires_at, "timezone": invitation.person.timezone or "UTC",
    }


@deals_bp.get("/d/<token>/thanks")
def thanks(token):
    invitation, _version = _invitation_or_404(token)
    if invitation.responded_at is None:
        return redirect(url_for("deals.respond", token=token))
    return render_template("deals/thanks.html", invitation=invitation, deal=invitation.deal, token=token)
