"""The staff question-set designer: list sets, create one, add and remove the
draft's questions, publish. Plain server-rendered forms, no JavaScript needed.

All rules live in `surveys.questions`; this module only turns form posts into
the API's question object and the service's errors back into field errors.
"""

import re

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Optional

from surveys.auth import roles_required
from surveys.extensions import db
from surveys.models import CONFIDENTIALITY_LEVELS, QUESTION_TYPES, QuestionSet, QuestionSetVersion
from surveys.questions import (
    DEFAULT_MIN_GROUP_SIZE,
    TYPE_FIELDS,
    NothingToPublish,
    QuestionSetInvalid,
    add_question,
    create_question_set,
    publish,
    question_counts_by_version,
    remove_question,
)

designer_bp = Blueprint("designer", __name__, url_prefix="/question-sets")

DESIGNER_ROLES = ("pm", "admin")

TYPE_LABELS = {
    "scale": "Scale (1 to N)",
    "nps": "NPS (0 to 10)",
    "single_choice": "Single choice",
    "multi_choice": "Multiple choice",
    "number": "Number",
    "yes_no": "Yes / no",
    "text": "Free text",
}
CONFIDENTIALITY_LABELS = {
    "confidential": "Confidential: answers never shown with names; small groups withheld",
    "attributed": "Attributed: PMs can see who answered what",
}


class QuestionSetForm(FlaskForm):
    name = StringField("Name")
    description = TextAreaField("Description", description="What this set is for; shown to staff only.")
    confidentiality = SelectField(
        "Confidentiality", choices=[SelectChoice(level, CONFIDENTIALITY_LABELS[level]) for level in CONFIDENTIALITY_LEVELS],
        default="confidential",
    )
    min_group_size = IntegerField(
        "Minimum group size",
        default=DEFAULT_MIN_GROUP_SIZE,
        validators=[InputRequired("Enter a whole number.")],
        description="Results for fewer respondents than this are withheld (at least 3).",
    )


class QuestionForm(FlaskForm):
    """Every field of every type: the chosen type decides which are read."""

    key = StringField("Key", description="A stable slug such as win_confidence; scorecards line up answers by it.")
    question_type = SelectField("Type", choices=[SelectChoice(t, TYPE_LABELS[t]) for t in QUESTION_TYPES])
    prompt = TextAreaField("Question")
    help = StringField("Help text", description="Optional, shown under the question.")
    required = BooleanField("Answer required", default=True)
    scale_max = StringField("Scale points", description="Scale: from 3 to 10 (default 5).")
    favorable_min = StringField(
        "Favourable from", description="Scale: answers at or above count as favourable (default: the top two)."
    )
    low_label = StringField("Low end label", description="Scale and NPS, e.g. Not at all.")
    high_label = StringField("High end label", description="Scale and NPS, e.g. Completely.")
    options = TextAreaField(
        "Options",
        description="Single and multiple choice: one per line, as key: Label (a line without a key gets one "
        "made from its label).",
    )
    allow_other = BooleanField("Offer an “Other” free-text answer (multiple choice)")
    min_value = StringField("Minimum", description="Number: optional lowest allowed answer.")
    max_value = StringField("Maximum", description="Number: optional highest allowed answer.")
    unit = StringField("Unit", description="Number: e.g. deals.")
    max_length = StringField("Maximum length", description="Free text: characters allowed (default 2000).")
    show_if_question = SelectField("Show only if question", choices=[], validate_choice=False, validators=[Optional()])
    show_if_equals = StringField(
        "…has the answer", description="An option key, yes or no, or a number (leave the question empty to always show)."
    )


# API field -> form field, where their names differ.
FORM_FIELD_FOR = {"type": "question_type", "min": "min_value", "max": "max_value"}
NUMERIC_FIELDS = {"scale_max": int, "favorable_min": int, "max_length": int, "min": float, "max": float}
TEXT_FIELDS = ("low_label", "high_label", "unit")


# -- Pages --------------------------------------------------------------------------


@designer_bp.get("/")
@roles_required(*DESIGNER_ROLES)
def index():
    question_sets = db.session.scalars(
        select(QuestionSet).options(selectinload(QuestionSet.versions)).order_by(QuestionSet.name, QuestionSet.id)
    ).all()
    counts = question_counts_by_version([v.id for qs in question_sets for v in qs.versions])
    return render_template("designer/index.html", question_sets=question_sets, question_counts=counts)


@designer_bp.route("/new", methods=["GET", "POST"])
@roles_required(*DESIGNER_ROLES)
def new():
    form = QuestionSetForm()
    if form.validate_on_submit():
        data = {
            "name": form.name.data,
            "description": form.description.data,
            "confidentiality": form.confidentiality.data,
            "min_group_size": form.min_group_size.data,
        }
        try:
            question_set = create_question_set(current_user, data, require_questions=False)
        except QuestionSetInvalid as invalid:
            db.session.rollback()
            _attach_errors(form, invalid.errors, lambda field: field)
        else:
            db.session.commit()
            flash(f"Created “{question_set.name}”. Add its questions, then publish it.", "success")
            return redirect(url_for("designer.show", question_set_id=question_set.id))
    status = 422 if form.errors else 200
    return render_template("designer/new.html", form=form), status


@designer_bp.get("/<int:question_set_id>")
@roles_required(*DESIGNER_ROLES)
def show(question_set_id):
    question_set = _load(question_set_id)
    return _render_show(question_set, _question_form(question_set))


@designer_bp.post("/<int:question_set_id>/questions")
@roles_required(*DESIGNER_ROLES)
def add(question_set_id):
    question_set = _load(question_set_id)
    form = _question_form(question_set)
    general_errors: list[str] = []
    if form.validate():
        data, errors = question_data_from_form(form)
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
        general_errors = _attach_errors(form, errors, _form_field_for)
    return _render_show(_load(question_set_id), form, general_errors, status=422)


@designer_bp.post("/<int:question_set_id>/questions/<key>/remove")
@roles_required(*DESIGNER_ROLES)
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


@designer_bp.post("/<int:question_set_id>/publish")
@roles_required(*DESIGNER_ROLES)
def publish_draft(question_set_id):
    question_set = _load(question_set_id)
    try:
        version = publish(question_set)
    except NothingToPublish as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
    else:
        db.session.commit()
        flash(f"Published version {version.number}. New rounds will send it; it can no longer change.", "success")
    return redirect(url_for("designer.show", question_set_id=question_set_id))


# -- Helpers ------------------------------------------------------------------------


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


def _question_form(question_set: QuestionSet) -> QuestionForm:
    form = QuestionForm()
    version = working_version(question_set)
    earlier = [q.key for q in version.questions] if version else []
    form.show_if_question.choices = [SelectChoice("", "Always show")] + [SelectChoice(key) for key in earlier]
    return form


def _render_show(question_set, question_form, general_errors=(), status=200):
    version = working_version(question_set)
    questions = version.questions if version else []
    return (
        render_template(
            "designer/show.html",
            question_set=question_set,
            version=version,
            questions=[(question, describe_question(question)) for question in questions],
            form=question_form,
            general_errors=list(general_errors),
            type_labels=TYPE_LABELS,
        ),
        status,
    )


def question_data_from_form(form: QuestionForm) -> tuple[dict, dict]:
    """The API question object a designer post means, with only the fields of
    the chosen type, and errors for values that are not numbers at all."""
    qtype = form.question_type.data
    data = {
        "key": (form.key.data or "").strip(),
        "type": qtype,
        "prompt": form.prompt.data,
        "help": form.help.data,
        "required": bool(form.required.data),
    }
    errors = {}
    for field in TYPE_FIELDS.get(qtype, ()):
        if field == "options":
            data["options"] = parse_options(form.options.data or "")
        elif field == "allow_other":
            data["allow_other"] = bool(form.allow_other.data)
        elif field in TEXT_FIELDS:
            data[field] = form[field].data
        else:
            raw = (form[FORM_FIELD_FOR.get(field, field)].data or "").strip()
            if raw:
                try:
                    data[field] = NUMERIC_FIELDS[field](raw)
                except ValueError:
                    kind = "a whole number" if NUMERIC_FIELDS[field] is int else "a number"
                    errors[field] = f"Enter {kind}."
    if form.show_if_question.data:
        data["show_if"] = {"question": form.show_if_question.data, "equals": (form.show_if_equals.data or "").strip()}
    elif (form.show_if_equals.data or "").strip():
        errors["show_if.question"] = "Choose the question this answer belongs to."
    return data, errors


def parse_options(text: str) -> list[dict]:
    """Lines of `key: Label` (or just `Label`) into the API's option objects."""
    options = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, separator, label = line.partition(":")
        if not separator:
            key, label = slug_for(line), line
        options.append({"key": key.strip(), "label": label.strip()})
    return options


def slug_for(label: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = "option_" + slug
    return slug[:64].rstrip("_")


def _form_field_for(error_path: str) -> str | None:
    """`options[2].key` -> the `options` field; `show_if.equals` -> `show_if_equals`."""
    if error_path.startswith("show_if"):
        return "show_if_equals" if error_path == "show_if.equals" else "show_if_question"
    base = error_path.split("[", 1)[0].split(".", 1)[0]
    return FORM_FIELD_FOR.get(base, base) or None


def _attach_errors(form, errors: dict, field_for) -> list[str]:
    """Put service errors next to their fields; return those with no field."""
    general = []
    for path, message in errors.items():
        name = field_for(path)
        match = re.match(r"options\[(\d+)\]", path)
        if match:
            message = f"Line {int(match.group(1)) + 1}: {message}"
        if name and name in form:
            form[name].errors.append(message)
        else:
            general.append(message)
    return general


def describe_question(question) -> str:
    """One line on what a question measures, for the designer's list."""
    settings = question.settings or {}
    parts = []
    if question.type == "scale":
        parts.append(f"1 to {settings.get('scale_max')}, favourable from {settings.get('favorable_min')}")
    elif question.type == "nps":
        parts.append("0 to 10, promoters 9 to 10")
    elif question.type in ("single_choice", "multi_choice"):
        parts.append(", ".join(f"{o['label']} ({o['key']})" for o in settings.get("options", [])))
        if settings.get("allow_other"):
            parts.append("plus Other")
    elif question.type == "number":
        low, high, unit = settings.get("min"), settings.get("max"), settings.get("unit")
        if low is not None or high is not None:
            parts.append(f"from {'any' if low is None else low} to {'any' if high is None else high}")
        if unit:
            parts.append(unit)
    elif question.type == "text":
        parts.append(f"up to {settings.get('max_length')} characters")
    if question.show_if_key:
        parts.append(f"shown if {question.show_if_key} = {question.show_if_value}")
    if not question.required:
        parts.append("optional")
    return "; ".join(part for part in parts if part)
