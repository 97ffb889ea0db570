"""Validation speaks the API's language: a question is the API object of
docs/api.md, and errors are a flat map of field path to message
("options[1].key", "questions[2].show_if.equals"), which the API returns as
its `errors` and the designer shows next to its fields.

The shapes (types, required fields, lengths, ranges, choices, unknown fields)
are the JSON Schemas declared here, which the OpenAPI document serves; every
payload is checked against them (surveys.payloads), with its text stripped
first, and then for what a schema cannot say: keys the form itself uses,
settings a type does not use, unique keys, a favourable threshold within the
scale, min <= max, a show_if naming an earlier question and one of its
answers, a comment threshold at least the group size."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping

from surveys import payloads
from surveys.direction import DEFAULT_SENTIMENT, OPTION_SENTIMENTS
from surveys.models import CONFIDENTIALITY_LEVELS, MIN_GROUP_SIZE_FLOOR, QUESTION_TYPES, Question
from surveys.payloads import MULTILINE, MULTILINE_TITLE, ONE_LINE, ONE_LINE_TITLE
from surveys.questions.rules import (
    ALL_SETTING_FIELDS,
    DEFAULT_COMMENT_MIN_GROUP_SIZE,
    DEFAULT_CONFIDENTIALITY,
    DEFAULT_MIN_GROUP_SIZE,
    DEFAULT_SCALE_MAX,
    DEFAULT_TEXT_MAX_LENGTH,
    DESCRIPTION_MAX_LENGTH,
    HELP_MAX_LENGTH,
    KEY_PATTERN,
    KEY_RULE,
    LABEL_MAX_LENGTH,
    MAX_GROUP_SIZE,
    MAX_OPTIONS,
    MAX_QUESTIONS,
    NAME_MAX_LENGTH,
    NPS_RANGE,
    NUMBER_LIMIT,
    OPTION_LABEL_MAX_LENGTH,
    OTHER_OPTION_KEY,
    PROMPT_MAX_LENGTH,
    SCALE_MAX_RANGE,
    SETTING_DEFAULTS,
    TEXT_MAX_LENGTH_RANGE,
    TYPE_FIELDS,
    UNIT_MAX_LENGTH,
)

# -- The shapes ------------------------------------------------------------------------


def _text(max_length, *, multiline=False, nullable=False, required=False) -> dict:
    schema = {"type": ["string", "null"] if nullable else "string", "maxLength": max_length,
              "pattern": MULTILINE if multiline else ONE_LINE, "title": MULTILINE_TITLE if multiline else ONE_LINE_TITLE}
    return {**schema, "minLength": 1} if required else schema


def _whole(low, high, **more) -> dict:
    return {"type": ["integer", "null"], "minimum": low, "maximum": high, **more}


_KEY = {"type": "string", "pattern": KEY_PATTERN.pattern,
        "title": "a slug: a lowercase letter, then lowercase letters, digits or underscores (at most 64 characters)"}
_QUESTIONS = {"type": "array", "minItems": 1, "maxItems": MAX_QUESTIONS, "items": payloads.ref("Question"),
              "description": "Keys must be unique within the set."}

payloads.declare("QuestionOption", {
    "type": "object",
    "required": ["key", "label"],
    "additionalProperties": False,
    "properties": {
        "key": _KEY,
        "label": _text(OPTION_LABEL_MAX_LENGTH, required=True),
        "sentiment": {"type": ["string", "null"], "enum": [*OPTION_SENTIMENTS, None], "default": DEFAULT_SENTIMENT,
                      "description": "Whether choosing this option is good, bad or neutral news (\"Lost to Globex\" "
                      "is bad): a rise in its share is then shown as better, worse or neither."},
    },
}, sentences=True)
payloads.declare("Question", {
    "type": "object",
    "description": "One question. Only the fields its type uses may carry a value: scale uses scale_max, "
    "favorable_min, low_label, high_label; nps low_label, high_label; single_choice options; multi_choice "
    "options, allow_other; number min, max, unit, whole_numbers; text max_length. Every type but text also "
    "takes pinned, and scale, nps, yes_no and number take higher_is_better. show_if must name an earlier "
    "question and `equals` must be one of its answers (an option key, \"yes\"/\"no\", or a number in range). "
    "Text is stripped of surrounding white space.",
    "required": ["key", "type", "prompt"],
    "additionalProperties": False,
    "properties": {
        "key": {**_KEY, "description": "Stable across versions."},
        "type": {"type": "string", "enum": list(QUESTION_TYPES)},
        "prompt": _text(PROMPT_MAX_LENGTH, multiline=True, required=True),
        "help": _text(HELP_MAX_LENGTH, multiline=True, nullable=True),
        "required": {"type": ["boolean", "null"], "default": True},
        "scale_max": _whole(*SCALE_MAX_RANGE, default=DEFAULT_SCALE_MAX),
        "favorable_min": {"type": ["integer", "null"], "minimum": 1, "description":
                          "At most scale_max. Answers at or above it are favourable; default scale_max - 1 (top two boxes)."},
        "low_label": _text(LABEL_MAX_LENGTH, nullable=True),
        "high_label": _text(LABEL_MAX_LENGTH, nullable=True),
        "options": {"type": ["array", "null"], "minItems": 2, "maxItems": MAX_OPTIONS,
                    "items": payloads.ref("QuestionOption"), "description": "Keys must be unique within the question."},
        "allow_other": {"type": ["boolean", "null"], "default": False},
        "min": {"type": ["number", "null"], "minimum": -int(NUMBER_LIMIT), "maximum": int(NUMBER_LIMIT)},
        "max": {"type": ["number", "null"], "minimum": -int(NUMBER_LIMIT), "maximum": int(NUMBER_LIMIT),
                "description": "At least min."},
        "unit": _text(UNIT_MAX_LENGTH, nullable=True),
        "whole_numbers": {"type": ["boolean", "null"], "default": False, "description":
                          "Answers must be whole numbers (2.5 is refused); min, max and show_if values too."},
        "higher_is_better": {"type": ["boolean", "null"], "default": True, "description":
                             "Whether a higher value is good news; scorecards colour and word changes by it. "
                             "Not part of the measure: changing it keeps the trend."},
        "pinned": {"type": ["boolean", "null"], "default": False, "description":
                   "Show this question as a key-metric tile at the top of the scorecard."},
        "max_length": _whole(*TEXT_MAX_LENGTH_RANGE, default=DEFAULT_TEXT_MAX_LENGTH),
        "show_if": {
            "type": ["object", "null"],
            "required": ["question", "equals"],
            "additionalProperties": False,
            "properties": {"question": {"type": "string"}, "equals": {"type": ["string", "number"]}},
        },
    },
}, sentences=True)
# The set's own fields; null (or leaving one out) means its default, or, in a
# settings update, "unchanged".
_SET_FIELDS = {
    "name": _text(NAME_MAX_LENGTH, required=True),
    "description": _text(DESCRIPTION_MAX_LENGTH, multiline=True, nullable=True),
    "confidentiality": {"type": ["string", "null"], "enum": [*CONFIDENTIALITY_LEVELS, None], "default": DEFAULT_CONFIDENTIALITY},
    "min_group_size": _whole(MIN_GROUP_SIZE_FLOOR, MAX_GROUP_SIZE, default=DEFAULT_MIN_GROUP_SIZE),
    "comment_min_group_size": _whole(MIN_GROUP_SIZE_FLOOR, MAX_GROUP_SIZE, description=(
        "At least min_group_size; default the larger of 10 and min_group_size.")),
    "hold_until_close": {"type": ["boolean", "null"], "default": False},
}
payloads.declare("QuestionSetInput", {
    "type": "object",
    "required": ["name", "questions"],
    "additionalProperties": False,
    "properties": {**_SET_FIELDS, "questions": _QUESTIONS},
}, sentences=True)
payloads.declare("QuestionSetSettings", {
    "type": "object",
    "description": "A partial update of the set-level fields. Once any answer exists the promises made to "
    "respondents can only become stricter: attributed -> confidential, group sizes only up, a hold until "
    "close cannot be lifted (422 otherwise).",
    "additionalProperties": False,
    "properties": {**_SET_FIELDS, "name": {**_SET_FIELDS["name"], "type": ["string", "null"]}},
}, sentences=True)
payloads.declare("DraftInput", {
    "type": "object",
    "required": ["questions"],
    "additionalProperties": False,
    "properties": {"questions": _QUESTIONS},
}, sentences=True)


# -- What a schema cannot say ---------------------------------------------------------------


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= NUMBER_LIMIT
    )


@functools.cache
def reserved_keys() -> frozenset[str]:
    """Names the rep form itself uses (`meta`, `errors`, `process`, `data`,
    `validate`...): a question with one of them as its key would replace a
    part of the form and break the preview and the rep form (issue 13)."""
    from surveys.answers import RepFormBase

    # Attributes set on each form instance (not visible on the class) too.
    instance_attributes = {"meta", "form_errors", "csrf_token"}
    return frozenset(name for name in dir(RepFormBase) if KEY_PATTERN.match(name)) | instance_attributes


def _reserved_key_problem(key: str) -> str | None:
    if key in reserved_keys():
        return f"{key!r} is a name the form itself uses; choose another key."
    return None


def read_key(value):
    """A key given on its own (a renamed question): (key, error or None)."""
    if not isinstance(value, str) or not value.strip():
        return None, "Required. " + KEY_RULE
    value = value.strip()
    if not KEY_PATTERN.match(value):
        return None, KEY_RULE
    problem = _reserved_key_problem(value)
    return (None, problem) if problem else (value, None)


def _is_empty(value) -> bool:
    """Irrelevant fields are tolerated when they carry nothing."""
    return value is None or value is False or value == "" or value == [] or value == {}


def number_as_api_value(value: float | int):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _definition_of(question) -> dict:
    """The type and settings of an earlier question, given as normalized
    kwargs (what validate_question returns) or as a Question row."""
    if isinstance(question, Question):
        return {"type": question.type, "settings": question.settings or {}}
    return {"type": question.get("type"), "settings": question.get("settings") or {}}


def validate_question(data: dict, earlier_keys: Iterable[str] | Mapping[str, object] = ()) -> tuple[dict, dict]:
    """Validate one API question object.

    `earlier_keys` names the questions before this one (a `show_if` may only
    point backwards). Pass a mapping of key -> earlier question (normalized
    kwargs or a Question row) so `show_if.equals` is also checked against that
    question's possible answers; with bare keys only its shape is checked.

    Returns (kwargs for the Question model, errors {field: message}); the
    kwargs are only meaningful when errors is empty.
    """
    if not isinstance(data, Mapping):
        return {}, {"": "Each question must be an object."}
    data = payloads.stripped(dict(data))
    errors = payloads.shape_errors("Question", data, root="")
    earlier = earlier_keys if isinstance(earlier_keys, Mapping) else dict.fromkeys(earlier_keys)

    def given(field, default=None):
        value = data.get(field) if payloads.fits(errors, field) else None
        return default if value is None else value

    key = given("key")
    if key and (problem := _reserved_key_problem(key)):
        errors["key"] = problem
    qtype = given("type")
    for field, value in data.items():
        if qtype and field in ALL_SETTING_FIELDS and field not in TYPE_FIELDS[qtype] and not _is_empty(value):
            errors[field] = f"Not used by {qtype} questions; leave it out."

    settings = _validate_settings(qtype, data, given, errors) if qtype else {}

    show_if_key = show_if_value = None
    if given("show_if") is not None:
        show_if_key, show_if_value = _validate_show_if(data["show_if"], key, earlier, errors)

    kwargs = {
        "key": key,
        "type": qtype,
        "prompt": given("prompt"),
        "help": given("help", ""),
        "required": given("required", True),
        "settings": settings,
        "show_if_key": show_if_key,
        "show_if_value": show_if_value,
    }
    return kwargs, payloads.in_path_order(errors)


def _validate_settings(qtype: str, data: Mapping, given, errors: dict) -> dict:
    """The type's settings, with the flags it takes (direction, pin) filled in."""
    settings = _type_settings(qtype, data, given, errors)
    for flag in ("whole_numbers", "higher_is_better", "pinned"):
        if flag in TYPE_FIELDS[qtype]:
            settings[flag] = bool(given(flag, SETTING_DEFAULTS[flag]))
    if settings.get("whole_numbers"):
        for bound in ("min", "max"):
            if settings[bound] is not None and not float(settings[bound]).is_integer():
                errors[bound] = "Must be a whole number: this question takes whole numbers only."
    return settings


def _type_settings(qtype: str, data: Mapping, given, errors: dict) -> dict:
    labels = {"low_label": given("low_label") or None, "high_label": given("high_label") or None}
    if qtype == "scale":
        scale_max = int(given("scale_max", DEFAULT_SCALE_MAX))
        favorable_min = int(given("favorable_min", scale_max - 1))  # "top two boxes"
        if favorable_min > scale_max and payloads.fits(errors, "scale_max"):
            errors["favorable_min"] = f"Must be from 1 to {scale_max}."
        return {"scale_max": scale_max, "favorable_min": favorable_min, **labels}
    if qtype == "nps":
        return labels
    if qtype in ("single_choice", "multi_choice"):
        # A list of options goes on even when some are bad: each is checked below.
        settings = {"options": _options(data.get("options") if "options" not in errors else [], errors)}
        if qtype == "multi_choice":
            settings["allow_other"] = given("allow_other", False)
            if settings["allow_other"] and any(o["key"] == OTHER_OPTION_KEY for o in settings["options"]):
                errors["options"] = (
                    f"The key '{OTHER_OPTION_KEY}' is reserved for the free-text answer when allow_other is on."
                )
        return settings
    if qtype == "number":
        bounds = {"min": given("min"), "max": given("max")}
        if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
            errors["max"] = "Must be at least the minimum."
        return {**bounds, "unit": given("unit") or None}
    if qtype == "text":
        return {"max_length": int(given("max_length", DEFAULT_TEXT_MAX_LENGTH))}
    return {}  # yes_no has no settings


def _options(options, errors) -> list[dict]:
    if options is None:
        errors.setdefault("options", "Give a list of at least 2 options, each {\"key\", \"label\"}.")
        return []
    normalized, seen = [], {}
    for index, option in enumerate(options):
        if not isinstance(option, Mapping):
            continue  # reported with the shape
        where = f"options[{index}]"
        key = option.get("key") if payloads.fits(errors, f"{where}.key") else None
        if key is not None:
            if problem := _reserved_key_problem(key):
                errors[f"{where}.key"] = problem
            elif key in seen:
                errors[f"{where}.key"] = f"Duplicate option key '{key}' (also option {seen[key] + 1})."
            seen.setdefault(key, index)
        sentiment = option.get("sentiment") if payloads.fits(errors, f"{where}.sentiment") else None
        normalized.append({"key": key, "label": option.get("label"), "sentiment": sentiment or DEFAULT_SENTIMENT})
    return normalized


def _validate_show_if(show_if, own_key, earlier: Mapping, errors) -> tuple[str | None, str | None]:
    target = show_if["question"]
    if own_key is not None and target == own_key:
        errors["show_if.question"] = "A question cannot depend on itself."
        return None, None
    if target not in earlier:
        errors["show_if.question"] = "Must be the key of an earlier question."
        return None, None
    definition = earlier[target]
    if definition is None:
        # Only keys were given: the value's shape is all that can be checked.
        value = show_if["equals"]
        if value == "" or (not isinstance(value, str) and not _is_number(value)):
            errors["show_if.equals"] = "Must be an option key, yes or no, or a number."
            return None, None
        return target, str(number_as_api_value(value)) if _is_number(value) else value
    stored, message = show_if_value_for(_definition_of(definition), show_if["equals"])
    if message:
        errors["show_if.equals"] = message
        return None, None
    return target, stored


def show_if_value_for(definition: dict, value) -> tuple[str | None, str | None]:
    """The stored (string) form of `value` as an answer to the question
    `definition` ({"type", "settings"}), or an error message."""
    qtype, settings = definition["type"], definition["settings"]
    if qtype in ("single_choice", "multi_choice"):
        keys = [option["key"] for option in settings.get("options", [])]
        if value not in keys:
            return None, f"Must be one of that question's option keys: {', '.join(keys)}."
        return value, None
    if qtype == "yes_no":
        if value not in ("yes", "no"):
            return None, 'Must be "yes" or "no".'
        return value, None
    if qtype == "text":
        return None, "A question cannot depend on a free-text answer."
    number = _coerce_number(value)
    if qtype == "scale":
        low, high = 1, settings.get("scale_max", DEFAULT_SCALE_MAX)
    elif qtype == "nps":
        low, high = NPS_RANGE
    else:  # number
        low, high = settings.get("min"), settings.get("max")
    whole = qtype in ("scale", "nps") or bool(settings.get("whole_numbers"))
    if number is None or (whole and not float(number).is_integer()):
        kind = "a whole number" if whole else "a number"
        return None, f"Must be {kind}" + (f" from {low} to {high}." if low is not None and high is not None else ".")
    if (low is not None and number < low) or (high is not None and number > high):
        return None, f"Must be within that question's range ({_range_text(low, high)})."
    return str(number_as_api_value(number)), None


def _coerce_number(value):
    """Numbers, or their text (form posts), for a numeric show_if value."""
    if _is_number(value):
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if _is_number(number) else None
    return None


def _range_text(low, high) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}"
    return f"at least {low}" if low is not None else f"at most {high}"




def validate_question_set(data, *, require_questions: bool = True) -> tuple[dict, dict]:
    """Validate the create payload of POST /api/v1/question-sets.

    Errors are keyed by field path (`questions[2].options`). The designer
    creates a set before it has questions: it passes require_questions=False.
    """
    if not isinstance(data, Mapping):
        return {}, {"": "The question set must be an object."}
    data = payloads.stripped(dict(data))
    errors, questions = _with_questions("QuestionSetInput", data, require_questions)
    settings = validate_set_settings(data, errors, partial=False)
    return {**settings, "questions": questions}, errors


def _with_questions(name: str, data: Mapping, require_questions: bool) -> tuple[dict, list[dict]]:
    """The errors of a payload holding "questions" (the list checked by
    validate_questions, the rest against the schema `name`), and its questions."""
    errors = payloads.shape_errors(name, data, root="", skip="questions")
    questions, question_errors = validate_questions(data.get("questions"), require_questions=require_questions)
    return {**errors, **question_errors}, questions


def validate_questions(items, *, require_questions: bool = True) -> tuple[list[dict], dict]:
    """Validate an ordered list of questions (errors keyed `questions[i]...`)."""
    if items is None or (not require_questions and items == []):
        return [], ({"questions": "Required: a list of at least one question."} if require_questions else {})
    # The list itself (a list, 1 to MAX_QUESTIONS long); each question below.
    errors = {field: message for field, message in payloads.shape_errors("DraftInput", {"questions": items}).items()
              if field == "questions"}
    if not isinstance(items, list):
        return [], errors
    normalized: list[dict] = []
    earlier: dict[str, dict] = {}
    first_use: dict[str, int] = {}
    for index, item in enumerate(items):
        kwargs, question_errors = validate_question(item, earlier)
        for field, message in question_errors.items():
            errors[f"questions[{index}].{field}" if field else f"questions[{index}]"] = message
        key = kwargs.get("key")
        if key is not None:
            if key in first_use:
                errors[f"questions[{index}].key"] = f"Duplicate key '{key}' (also question {first_use[key] + 1})."
            else:
                first_use[key] = index
                if not question_errors:
                    earlier[key] = kwargs
        normalized.append(kwargs)
    return normalized, errors


def validate_set_settings(data: Mapping, errors: dict, *, partial: bool, current=None) -> dict:
    """The set-level fields, their shape already checked into `errors`. A full
    validation fills defaults; a `partial` one (an update of `current`) only
    reads the fields given with a value."""
    given = {field: value for field, value in data.items()
             if field in _SET_FIELDS and value is not None and payloads.fits(errors, field)}
    settings = given if partial else {
        "name": None, "description": "", "confidentiality": DEFAULT_CONFIDENTIALITY,
        "min_group_size": DEFAULT_MIN_GROUP_SIZE, "hold_until_close": False, **given,
    }
    if not partial:
        # Comments need the larger group: follow a raised minimum rather than fail on the default.
        settings.setdefault("comment_min_group_size", max(DEFAULT_COMMENT_MIN_GROUP_SIZE, settings["min_group_size"]))
    min_group = settings.get("min_group_size", current.min_group_size if current else None)
    comment_min = settings.get("comment_min_group_size", current.comment_min_group_size if current else None)
    if (min_group is not None and comment_min is not None and comment_min < min_group
            and payloads.fits(errors, "min_group_size") and payloads.fits(errors, "comment_min_group_size")):
        errors["comment_min_group_size"] = f"Must be at least the minimum group size ({min_group})."
    return {field: int(value) if field.endswith("group_size") else value for field, value in settings.items()}
