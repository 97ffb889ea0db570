"""The designer's forms and their translation: the WTForms classes, a
question as form data and back to the API's question object, the options
text, service errors put next to their fields, and a question's one-line
description. `surveys/designer.py` holds the pages."""

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Optional

from surveys import answers as rep_answers
from surveys.direction import OPTION_SENTIMENTS
from surveys.models import CONFIDENTIALITY_LEVELS, QUESTION_TYPES
from surveys.questions.rules import DEFAULT_MIN_GROUP_SIZE, TYPE_FIELDS
from surveys.questions.shapes import question_to_dict

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


class SettingsForm(FlaskForm):
    name = StringField("Name")
    description = TextAreaField("Description", description="What this set is for; shown to staff only.")
    confidentiality = SelectField(
        "Confidentiality", choices=[SelectChoice(level, CONFIDENTIALITY_LABELS[level]) for level in CONFIDENTIALITY_LEVELS]
    )
    min_group_size = IntegerField(
        "Minimum group size",
        validators=[InputRequired("Enter a whole number.")],
        description="Confidential sets: any result for fewer respondents than this is withheld (never below 3).",
    )
    comment_min_group_size = IntegerField(
        "Comments shown from",
        validators=[InputRequired("Enter a whole number.")],
        description="Confidential sets: comments appear, without names, only for groups at least this large.",
    )
    hold_until_close = BooleanField("Hold results until the round closes (counts moving during the window reveal nothing)")


class QuestionForm(FlaskForm):
    """Every field of every type: the chosen type decides which are read."""

    key = StringField(
        "Key",
        description="A stable slug such as win_confidence; scorecards line up answers by it. Leave it empty to "
        "have one made from the question. It can change until the set is first published.",
    )
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
        "made from its label). Keep a key to relabel an option; changing keys breaks the trend. End a line with "
        "| bad or | good when choosing it is bad or good news (lost_globex: Lost to Globex | bad); "
        "other options are neutral.",
    )
    allow_other = BooleanField("Offer an “Other” free-text answer (multiple choice)")
    min_value = StringField("Minimum", description="Number: optional lowest allowed answer.")
    max_value = StringField("Maximum", description="Number: optional highest allowed answer.")
    unit = StringField("Unit", description="Number: e.g. deals.")
    whole_numbers = BooleanField("Whole numbers only (2.5 is refused; shown without decimals)")
    higher_is_better = SelectField(
        "Good news is", choices=[SelectChoice("higher", "Higher is better"), SelectChoice("lower", "Lower is better")],
        default="higher",
        description="Scorecards colour and word changes by it (a rising loss count is worse). It keeps the trend.",
    )
    pinned = BooleanField("Pin as a key metric at the top of the scorecard")
    max_length = StringField("Maximum length", description="Free text: characters allowed (default 2000).")
    show_if_question = SelectField("Show only if question", choices=[], validate_choice=False, validators=[Optional()])
    show_if_equals = StringField(
        "…has the answer", description="An option key, yes or no, or a number (leave the question empty to always show)."
    )


# API field -> form field, where their names differ.
FORM_FIELD_FOR = {"type": "question_type", "min": "min_value", "max": "max_value"}
NUMERIC_FIELDS = {"scale_max": int, "favorable_min": int, "max_length": int, "min": float, "max": float}
TEXT_FIELDS = ("low_label", "high_label", "unit")
# Which fieldset of the question form each type uses (designer.js shows only those).
FIELDSET_TYPES = {
    "scale": ("scale",),
    "labels": ("scale", "nps"),
    "choice": ("single_choice", "multi_choice"),
    "number": ("number",),
    "text": ("text",),
    "direction": ("scale", "nps", "yes_no", "number"),
    "pinned": ("scale", "nps", "single_choice", "multi_choice", "number", "yes_no"),
}
SENTIMENT_SEPARATOR = "|"


def form_data_for(question) -> dict:
    """A question as the designer form's data, to edit it."""
    api = question_to_dict(question)
    data = {
        "key": api["key"],
        "question_type": api["type"],
        "prompt": api["prompt"],
        "help": api["help"],
        "required": api["required"],
        "allow_other": bool(api.get("allow_other")),
        "options": "\n".join(_option_line(option) for option in api.get("options") or []),
        "whole_numbers": bool(api.get("whole_numbers")),
        "higher_is_better": "lower" if api.get("higher_is_better") is False else "higher",
        "pinned": bool(api.get("pinned")),
    }
    for field in ("scale_max", "favorable_min", "max_length", "min", "max"):
        if api.get(field) is not None:
            data[FORM_FIELD_FOR.get(field, field)] = str(rep_answers.plain_number(api[field]))
    for field in TEXT_FIELDS:
        data[field] = api.get(field) or ""
    if api["show_if"]:
        data["show_if_question"] = api["show_if"]["question"]
        data["show_if_equals"] = str(api["show_if"]["equals"])
    return data


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
        elif field in ("allow_other", "whole_numbers", "pinned"):
            data[field] = bool(form[field].data)
        elif field == "higher_is_better":
            data[field] = form.higher_is_better.data != "lower"
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


def _option_line(option: dict) -> str:
    line = f"{option['key']}: {option['label']}"
    sentiment = option.get("sentiment") or "neutral"
    return line if sentiment == "neutral" else f"{line} {SENTIMENT_SEPARATOR} {sentiment}"


def parse_options(text: str) -> list[dict]:
    """Lines of `key: Label` (or just `Label`), each optionally ending in
    `| good`, `| bad` or `| neutral`, into the API's option objects."""
    options = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        sentiment = "neutral"
        rest, separator, last = line.rpartition(SENTIMENT_SEPARATOR)
        if separator and last.strip().lower() in OPTION_SENTIMENTS:
            line, sentiment = rest.strip(), last.strip().lower()
        key, separator, label = line.partition(":")
        if not separator:
            key, label = slug_for(line), line
        options.append({"key": key.strip(), "label": label.strip(), "sentiment": sentiment})
    return options


def slug_for(label: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = "option_" + slug
    return slug[:64].rstrip("_")


def form_field_for(error_path: str) -> str | None:
    """`options[2].key` -> the `options` field; `show_if.equals` -> `show_if_equals`."""
    if error_path.startswith("show_if"):
        return "show_if_equals" if error_path == "show_if.equals" else "show_if_question"
    base = error_path.split("[", 1)[0].split(".", 1)[0]
    return FORM_FIELD_FOR.get(base, base) or None


def attach_errors(form, errors: dict, field_for) -> list[str]:
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
        parts.append(", ".join(
            f"{o['label']} ({o['key']}{'' if (o.get('sentiment') or 'neutral') == 'neutral' else ', ' + o['sentiment'] + ' news'})"
            for o in settings.get("options", [])))
        if settings.get("allow_other"):
            parts.append("plus Other")
    elif question.type == "number":
        low, high, unit = settings.get("min"), settings.get("max"), settings.get("unit")
        if low is not None or high is not None:
            parts.append(f"from {'any' if low is None else low} to {'any' if high is None else high}")
        if unit:
            parts.append(unit)
        if settings.get("whole_numbers"):
            parts.append("whole numbers")
    elif question.type == "text":
        parts.append(f"up to {settings.get('max_length')} characters")
    if question.type in ("scale", "nps", "yes_no", "number") and settings.get("higher_is_better") is False:
        parts.append("lower is better")
    if settings.get("pinned"):
        parts.append("pinned")
    if question.show_if_key:
        parts.append(f"shown if {question.show_if_key} = {question.show_if_value}")
    if not question.required:
        parts.append("optional")
    return "; ".join(part for part in parts if part)
