"""The staff question-set designer: sets, their draft's questions, preview,
versions and their diffs, publishing, confidentiality settings, starter
templates, and JSON import/export.

Plain server-rendered forms that work without JavaScript; `static/designer.js`
only adds conveniences (drag to reorder, key suggestions, showing the
settings of the chosen type). All rules live in `surveys.questions`; this
module turns form posts into the API's question object and the service's
errors back into field errors (the forms and that translation are in
`surveys/designer_forms.py`).
"""

import json
import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms import SelectChoice

from cadence.clock import utcnow
from surveys import answers as rep_answers
from surveys import audit, lifecycle, limits
from surveys.auth.access import roles_required
from surveys.designer_forms import (
    FIELDSET_TYPES,
    TYPE_LABELS,
    QuestionForm,
    QuestionSetForm,
    SettingsForm,
    attach_errors,
    describe_question,
    form_data_for,
    form_field_for,
    question_data_from_form,
)
from surveys.disclosure import policy_record
from surveys.extensions import db
from surveys.models import QuestionSet, QuestionSetVersion
from surveys.permissions import EDITORS
from surveys.questions.drafts import (
    KEY_FIXED_REASON,
    add_question,
    create_question_set,
    duplicate_question,
    has_answers,
    has_been_published,
    has_invitations,
    move_question,
    pending_changes,
    previous_version,
    publish,
    remove_question,
    reorder_questions,
    suggest_key,
    update_question,
    update_settings,
    version_by_number,
)
from surveys.questions.rules import BreakingChangesNotConfirmed, NothingToPublish, QuestionSetInvalid
from surveys.questions.shapes import export_question_set, question_counts_by_version
from surveys.starter_templates import TEMPLATES, create_from_template, template_by_slug
from surveys.tabular import download
from surveys.version_diff import CHANGE_KINDS, KIND_LABELS, breaking_changes, diff_versions

designer_bp = Blueprint("designer", __name__, url_prefix="/question-sets")

IMPORT_MAX_BYTES = 1024 * 1024

# -- The list, new sets, templates, import --------------------------------------------


@designer_bp.get("/")
@roles_required(*EDITORS)
def index():
    return _render_index()


def _render_index(import_errors=(), status=200):
    archived = request.args.get("archived") == "true"
    question_sets = db.session.scalars(
        select(QuestionSet).where(lifecycle.archived_filter(QuestionSet, archived))
        .options(selectinload(QuestionSet.versions)).order_by(QuestionSet.name, QuestionSet.id)
    ).all()
    counts = question_counts_by_version([v.id for qs in question_sets for v in qs.versions])
    return (
        render_template(
            "designer/index.html",
            question_sets=question_sets,
            question_counts=counts,
            templates=TEMPLATES,
            import_errors=list(import_errors),
            archived=archived,
            archived_count=db.session.scalar(
                select(func.count(QuestionSet.id)).where(lifecycle.archived_filter(QuestionSet, True))),
        ),
        status,
    )


@designer_bp.route("/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new():
    form = QuestionSetForm()
    if form.is_submitted() and _checked(form):
        data = _accepted_fields(form, ("name", "description", "confidentiality", "min_group_size"))
        try:
            question_set = create_question_set(current_user, data, require_questions=False)
        except QuestionSetInvalid as invalid:
            db.session.rollback()
            attach_errors(form, _unreported(form, invalid.errors), lambda field: field)
        else:
            if not form.errors:
                db.session.commit()
                flash(f"Created “{question_set.name}”. Add its questions, then publish it.", "success")
                return redirect(url_for("designer.show", question_set_id=question_set.id))
            db.session.rollback()
    status = 422 if form.errors else 200
    return render_template("designer/new.html", form=form), status


@designer_bp.post("/templates/<slug>")
@roles_required(*EDITORS)
def copy_template(slug):
    template = template_by_slug(slug)
    if template is None:
        abort(404)
    question_set = create_from_template(current_user, template)
    db.session.commit()
    flash(
        f"Copied the “{template.name}” template into a new draft. Adapt its questions and settings, then publish it.",
        "success",
    )
    return redirect(url_for("designer.show", question_set_id=question_set.id))


@designer_bp.post("/import")
@roles_required(*EDITORS)
def import_set():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _render_index(["Choose a JSON file exported from Canary to import."], status=422)
    raw = upload.stream.read(IMPORT_MAX_BYTES + 1)
    if len(raw) > IMPORT_MAX_BYTES:
        return _render_index([f"The file is larger than {IMPORT_MAX_BYTES // 1024} KB; nothing was imported."], 422)
    try:
        data = limits.loads(raw)
    except limits.HostileInput as refused:
        return _render_index([f"{refused} Nothing was imported."], status=422)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return _render_index([f"The file is not valid JSON ({error}); nothing was imported."], status=422)
    try:
        question_set = create_question_set(current_user, data)
    except QuestionSetInvalid as invalid:
        db.session.rollback()
        messages = [f"{path or 'file'}: {message}" for path, message in invalid.errors.items()]
        return _render_index(["Nothing was imported:"] + messages, status=422)
    db.session.commit()
    flash(f"Imported “{question_set.name}” as a new draft with {len(question_set.draft.questions)} questions.", "success")
    return redirect(url_for("designer.show", question_set_id=question_set.id))


# -- One set ---------------------------------------------------------------------------


@designer_bp.get("/<int:question_set_id>")
@roles_required(*EDITORS)
def show(question_set_id):
    question_set = _load(question_set_id)
    return _render_show(question_set, _question_form(question_set))


@designer_bp.get("/<int:question_set_id>/export.json")
@roles_required(*EDITORS)
def export(question_set_id):
    question_set = _load(question_set_id)
    body = json.dumps(export_question_set(question_set), indent=2, ensure_ascii=False)
    audit.record(current_user._get_current_object(), "question_set.exported", question_set)
    db.session.commit()
    return download(body, "application/json", (_slug(question_set.name) or "question-set") + ".json")


@designer_bp.route("/<int:question_set_id>/settings", methods=["GET", "POST"])
@roles_required(*EDITORS)
def settings(question_set_id):
    question_set = _load(question_set_id)
    answered = has_answers(question_set)
    invited = has_invitations(question_set)
    form = SettingsForm(obj=question_set)
    if form.is_submitted() and _checked(form):
        data = _accepted_fields(form, ("name", "description", "confidentiality", "min_group_size",
                                       "comment_min_group_size", "hold_until_close"))
        try:
            update_settings(question_set, data)
        except QuestionSetInvalid as invalid:
            db.session.rollback()
            attach_errors(form, _unreported(form, invalid.errors), lambda field: field)
        else:
            if not form.errors:
                db.session.commit()
                flash("Saved the settings.", "success")
                return redirect(url_for("designer.show", question_set_id=question_set_id))
            db.session.rollback()
    status = 422 if form.errors else 200
    return (
        render_template("designer/settings.html", question_set=_load(question_set_id), form=form, answered=answered,
                        invited=invited),
        status,
    )


@designer_bp.post("/<int:question_set_id>/archive")
@roles_required(*EDITORS)
def archive(question_set_id):
    question_set = _load(question_set_id)
    try:
        lifecycle.archive_question_set(question_set, current_user._get_current_object(), utcnow())
    except lifecycle.LifecycleRefused as refused:
        flash(f"Not archived: {refused}", "error")
    else:
        flash(f"Archived “{question_set.name}”: it has left the lists; its versions and the rounds that sent it stay.",
              "success")
    return redirect(url_for("designer.show", question_set_id=question_set_id))


@designer_bp.post("/<int:question_set_id>/restore")
@roles_required(*EDITORS)
def restore(question_set_id):
    question_set = _load(question_set_id)
    try:
        lifecycle.restore_question_set(question_set, current_user._get_current_object())
    except lifecycle.LifecycleRefused as refused:
        flash(str(refused), "error")
    else:
        flash(f"Restored “{question_set.name}”: it is back on the lists and cadences may send it.", "success")
    return redirect(url_for("designer.show", question_set_id=question_set_id))


# -- Questions of the draft ---------------------------------------------------------------


@designer_bp.post("/<int:question_set_id>/questions")
@roles_required(*EDITORS)
def add(question_set_id):
    question_set = _load(question_set_id)
    form = _question_form(question_set)
    general_errors: list[str] = []
    if form.validate():
        data, errors = question_data_from_form(form)
        if not data["key"]:
            data["key"] = suggest_key(data["prompt"], [q.key for q in _working_questions(question_set)])
        try:
            question = add_question(question_set, data)
        except QuestionSetInvalid as invalid:
            # Text that is not a number at all was left out of `data`; report it
            # together with everything else wrong.
            errors = {**invalid.errors, **errors}
        if not errors:
            db.session.commit()
            flash(f"Added “{question.key}” to draft version {question.version.number}.", "success")
            return redirect(url_for("designer.show", question_set_id=question_set.id) + "#add-question")
        db.session.rollback()
        general_errors = attach_errors(form, errors, form_field_for)
    return _render_show(_load(question_set_id), form, general_errors, status=422)


@designer_bp.route("/<int:question_set_id>/questions/<key>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def edit(question_set_id, key):
    question_set = _load(question_set_id)
    question = _question_or_404(question_set, key)
    key_fixed = has_been_published(question_set)
    if request.method == "GET":
        form = _question_form(question_set, before=key, data=form_data_for(question))
        return _render_edit(question_set, question, form, key_fixed)
    form = _question_form(question_set, before=key)
    general_errors: list[str] = []
    if form.validate():
        data, errors = question_data_from_form(form)
        if key_fixed or not data["key"]:
            # A published key never changes; an emptied one keeps the old key.
            data["key"] = key
        try:
            draft = update_question(question_set, key, data)
        except QuestionSetInvalid as invalid:
            errors = {**invalid.errors, **errors}
        if not errors:
            db.session.commit()
            flash(f"Saved “{data['key']}” in draft version {draft.number}.", "success")
            return redirect(url_for("designer.show", question_set_id=question_set_id) + f"#q-{data['key']}")
        db.session.rollback()
        general_errors = attach_errors(form, errors, form_field_for)
    question_set = _load(question_set_id)
    return _render_edit(question_set, _question_or_404(question_set, key), form, key_fixed, general_errors, 422)


@designer_bp.post("/<int:question_set_id>/questions/<key>/move")
@roles_required(*EDITORS)
def move(question_set_id, key):
    question_set = _load(question_set_id)
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        abort(400)
    _question_or_404(question_set, key)
    try:
        move_question(question_set, key, -1 if direction == "up" else 1)
    except QuestionSetInvalid as invalid:
        db.session.rollback()
        flash("Not moved: " + " ".join(invalid.errors.values()), "error")
    else:
        db.session.commit()
        flash(f"Moved “{key}” {direction}.", "success")
    return redirect(url_for("designer.show", question_set_id=question_set_id) + f"#q-{key}")


@designer_bp.post("/<int:question_set_id>/questions/order")
@roles_required(*EDITORS)
def reorder(question_set_id):
    """The whole order at once (what drag and drop in designer.js sends)."""
    question_set = _load(question_set_id)
    try:
        reorder_questions(question_set, request.form.getlist("order"))
    except QuestionSetInvalid as invalid:
        db.session.rollback()
        flash("Not reordered: " + " ".join(invalid.errors.values()), "error")
    else:
        db.session.commit()
        flash("Saved the new order.", "success")
    return redirect(url_for("designer.show", question_set_id=question_set_id))


@designer_bp.post("/<int:question_set_id>/questions/<key>/duplicate")
@roles_required(*EDITORS)
def duplicate(question_set_id, key):
    question_set = _load(question_set_id)
    _question_or_404(question_set, key)
    try:
        copy = duplicate_question(question_set, key)
    except QuestionSetInvalid as invalid:
        db.session.rollback()
        flash("Not duplicated: " + " ".join(invalid.errors.values()), "error")
        return redirect(url_for("designer.show", question_set_id=question_set_id))
    db.session.commit()
    flash(f"Duplicated “{key}” as “{copy.key}”. Edit the copy's key and wording.", "success")
    return redirect(url_for("designer.edit", question_set_id=question_set_id, key=copy.key))


@designer_bp.post("/<int:question_set_id>/questions/<key>/remove")
@roles_required(*EDITORS)
def remove(question_set_id, key):
    # The CSRF token of these button forms is checked app-wide by CSRFProtect.
    question_set = _load(question_set_id)
    try:
        draft = remove_question(question_set, key)
    except QuestionSetInvalid as invalid:
        db.session.rollback()
        flash(" ".join(invalid.errors.values()), "error")
    else:
        db.session.commit()
        flash(f"Removed “{key}” from draft version {draft.number}.", "success")
    return redirect(url_for("designer.show", question_set_id=question_set_id))


# -- Preview, versions, publishing ---------------------------------------------------------


@designer_bp.route("/<int:question_set_id>/preview", methods=["GET", "POST"])
@roles_required(*EDITORS)
def preview(question_set_id):
    """The rep form exactly as a rep sees it, at phone width. Posting it runs
    the rep form's own validation and show-if, and stores nothing."""
    question_set = _load(question_set_id)
    version = _version_from_args(question_set)
    if version is None or not version.questions:
        flash("Add a question first: there is nothing to preview yet.", "info")
        return redirect(url_for("designer.show", question_set_id=question_set_id))
    form_class = rep_answers.form_class_for(version)
    checked = None
    problem = None
    status = 200
    if request.method == "POST":
        form = form_class()
        try:
            cleaned = rep_answers.validate_submission(form, version, request.form.keys())
        except rep_answers.UnexpectedFields as unexpected:
            form, cleaned = form_class(formdata=None), None
            problem = f"The form was sent with fields it does not have ({unexpected})."
            status = 400
        else:
            status = 200 if cleaned is not None else 422
        checked = cleaned
        values = {name: form[name].data for name in form._fields} if problem is None else {}
    else:
        form = form_class(formdata=None)
        values = {}
    return (
        render_template(
            "designer/preview.html",
            question_set=question_set,
            promise=policy_record(question_set),  # what a rep invited now would be told
            version=version,
            form=form,
            visible={q.key for q in rep_answers.visible_questions(version, rep_answers.typed_values(version, values))},
            minutes=rep_answers.estimated_minutes(version),
            other_suffix=rep_answers.OTHER_SUFFIX,
            checked=checked,
            problem=problem,
        ),
        status,
    )


@designer_bp.get("/<int:question_set_id>/versions/<int:number>/diff")
@roles_required(*EDITORS)
def diff(question_set_id, number):
    question_set = _load(question_set_id)
    version = version_by_number(question_set, number)
    if version is None:
        abort(404)
    before = previous_version(question_set, version)
    changes = diff_versions(before, version)
    return render_template(
        "designer/diff.html",
        question_set=question_set,
        version=version,
        before=before,
        changes=changes,
        breaking=breaking_changes(changes),
        unchanged=sum(1 for question in version.questions if question.key not in {c.key for c in changes}),
        counts={kind: sum(1 for change in changes if change.kind == kind) for kind in CHANGE_KINDS},
        kind_labels=KIND_LABELS,
        kinds=CHANGE_KINDS,
    )


@designer_bp.post("/<int:question_set_id>/publish")
@roles_required(*EDITORS)
def publish_draft(question_set_id):
    question_set = _load(question_set_id)
    confirmed = request.form.get("confirm_breaking") == "yes"
    try:
        version = publish(question_set, confirm_breaking=confirmed)
    except NothingToPublish as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
    except BreakingChangesNotConfirmed as refusal:
        db.session.rollback()
        question_set = _load(question_set_id)
        return (
            render_template(
                "designer/confirm_publish.html",
                question_set=question_set,
                draft=question_set.draft,
                published=question_set.latest_published,
                breaking=refusal.changes,
            ),
            409,
        )
    else:
        audit.record(current_user._get_current_object(), "question_set.published", question_set, {"version": version.number})
        db.session.commit()
        flash(f"Published version {version.number}. New rounds will send it; it can no longer change.", "success")
    return redirect(url_for("designer.show", question_set_id=question_set_id))


# -- Helpers ------------------------------------------------------------------------


def _checked(form) -> bool:
    """Run the form's own checks; False only when the form itself cannot be
    trusted (an expired CSRF token). Field errors do not stop the service's
    checks: every field is checked in one pass."""
    form.validate()
    return not form.csrf_token.errors


def _accepted_fields(form, names) -> dict:
    """The fields the form accepted, as the service's data (a refused field is
    left out, so the service checks the rest and does not report it twice)."""
    data = {}
    for name in names:
        if form[name].errors:
            continue
        value = form[name].data
        if name == "description":
            value = value or ""
        elif name == "hold_until_close":
            value = bool(value)
        data[name] = value
    return data


def _unreported(form, errors: dict) -> dict:
    """Service errors for fields the form has not already refused."""
    return {path: message for path, message in errors.items() if not (path in form and form[path].errors)}


def _load(question_set_id) -> QuestionSet:
    question_set = db.session.scalar(
        select(QuestionSet)
        .where(QuestionSet.id == question_set_id)
        .options(selectinload(QuestionSet.versions).selectinload(QuestionSetVersion.questions))
    )
    if question_set is None:
        abort(404)
    return question_set


def working_version(question_set: QuestionSet) -> QuestionSetVersion | None:
    """What the page edits: the draft, else the latest version (an edit then starts draft N+1)."""
    return question_set.draft or (question_set.versions[-1] if question_set.versions else None)


def _working_questions(question_set: QuestionSet) -> list:
    version = working_version(question_set)
    return list(version.questions) if version else []


def _question_or_404(question_set: QuestionSet, key: str):
    question = next((q for q in _working_questions(question_set) if q.key == key), None)
    if question is None:
        abort(404)
    return question


def _version_from_args(question_set: QuestionSet) -> QuestionSetVersion | None:
    raw = request.args.get("version")
    if raw is None:
        return working_version(question_set)
    number = limits.whole_number(raw, minimum=1)
    if number is None:
        abort(404)
    version = version_by_number(question_set, number)
    if version is None:
        abort(404)
    return version


def _question_form(question_set: QuestionSet, before: str | None = None, data=None) -> QuestionForm:
    """The question form; show-if may name any question above `before`
    (all of them for a new question)."""
    form = QuestionForm(data=data) if data is not None else QuestionForm()
    earlier = []
    for question in _working_questions(question_set):
        if question.key == before:
            break
        if question.type != "text":
            earlier.append(question.key)
    form.show_if_question.choices = [SelectChoice("", "Always show")] + [SelectChoice(key) for key in earlier]
    return form


def _render_show(question_set, question_form, general_errors=(), status=200):
    version = working_version(question_set)
    questions = version.questions if version else []
    changes = pending_changes(question_set)
    return (
        render_template(
            "designer/show.html",
            question_set=question_set,
            version=version,
            questions=[(question, describe_question(question)) for question in questions],
            form=question_form,
            general_errors=list(general_errors),
            type_labels=TYPE_LABELS,
            fieldset_types=FIELDSET_TYPES,
            pending=changes,
            pending_breaking=breaking_changes(changes),
            key_fixed=has_been_published(question_set),
        ),
        status,
    )


def _render_edit(question_set, question, form, key_fixed, general_errors=(), status=200):
    return (
        render_template(
            "designer/edit.html",
            question_set=question_set,
            question=question,
            form=form,
            key_fixed=key_fixed,
            key_fixed_reason=KEY_FIXED_REASON,
            general_errors=list(general_errors),
            fieldset_types=FIELDSET_TYPES,
            draft_number=question_set.draft.number if question_set.draft else question.version.number + 1,
        ),
        status,
    )


def _slug(text: str) -> str:
    """A set's name as an export file name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]
