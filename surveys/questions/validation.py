"""Validation speaks the API's language: a question is the API object of
docs/api.md, and errors are a flat map of field path to message
("options[1].key", "questions[2].show_if.equals"), which the API returns as
its `errors` and the designer shows next to its fields."""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Iterable, Mapping

from surveys.models import CONFIDENTIALITY_LEVELS, MIN_GROUP_SIZE_FLOOR, QUESTION_TYPES, Question, QuestionSet
from surveys.questions.rules import (
    ALL_SETTING_FIELDS,
    COMMON_FIELDS,
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
    SET_FIELDS,
    TEXT_MAX_LENGTH_RANGE,
    TYPE_FIELDS,
    UNIT_MAX_LENGTH,
)


# Each returns (value, error message or None). JSON booleans are not integers here.


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= NUMBER_LIMIT
    )


def _read_int(value, low, high, what="a whole number"):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return None, f"Must be {what} from {low} to {high}."
    if not low <= value <= high:
        return None, f"Must be from {low} to {high}."
    return value, None


# Control characters (a line break in a name breaks every email subject it
# reaches: issue 13). Longer texts may hold line breaks and tabs, no others.
_MULTILINE_ALLOWED = frozenset("\n\r\t")


def control_character_problem(value: str, *, multiline: bool = False) -> str | None:
    allowed = _MULTILINE_ALLOWED if multiline else frozenset()
    if any(unicodedata.category(char) == "Cc" and char not in allowed for char in value):
        if multiline:
            return "Contains a control character: remove it."
        return "Contains a line break or another control character: keep it to one line."
    return None


def _read_text(value, max_length, *, required=False, multiline=False):
    if value is None:
        value = ""
    if not isinstance(value, str):
        return None, "Must be text."
    value = value.strip()
    problem = control_character_problem(value, multiline=multiline)
    if problem:
        return None, problem
    if required and not value:
        return None, "Required."
    if len(value) > max_length:
        return None, f"At most {max_length} characters (this has {len(value)})."
    return value, None


def _read_bool(value, default):
    if value is None:
        return default, None
    if not isinstance(value, bool):
        return None, "Must be true or false."
    return value, None


@functools.cache
def reserved_keys() -> frozenset[str]:
    """Names the rep form itself uses (`meta`, `errors`, `process`, `data`,
    `validate`...): a question with one of them as its key would replace a
    part of the form and break the preview and the rep form (issue 13)."""
    from surveys.answers import RepFormBase

    # Attributes set on each form instance (not visible on the class) too.
    instance_attributes = {"meta", "form_errors", "csrf_token"}
    return frozenset(name for name in dir(RepFormBase) if KEY_PATTERN.match(name)) | instance_attributes


def read_key(value):
    if not isinstance(value, str) or not value.strip():
        return None, "Required. " + KEY_RULE
    value = value.strip()
    if not KEY_PATTERN.match(value):
        return None, KEY_RULE
    if value in reserved_keys():
        return None, f"{value!r} is a name the form itself uses; choose another key."
    return value, None


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
    errors: dict[str, str] = {}
    earlier = earlier_keys if isinstance(earlier_keys, Mapping) else dict.fromkeys(earlier_keys)

    key, errors["key"] = read_key(data.get("key"))
    qtype = data.get("type")
    if qtype not in QUESTION_TYPES:
        errors["type"] = f"Must be one of: {', '.join(QUESTION_TYPES)}."
        qtype = None
    prompt, errors["prompt"] = _read_text(data.get("prompt"), PROMPT_MAX_LENGTH, required=True, multiline=True)
    help_text, errors["help"] = _read_text(data.get("help"), HELP_MAX_LENGTH, multiline=True)
    required, errors["required"] = _read_bool(data.get("required"), True)

    for field, value in data.items():
        if field in COMMON_FIELDS:
            continue
        if field not in ALL_SETTING_FIELDS:
            errors[field] = "Unknown field."
        elif qtype and field not in TYPE_FIELDS[qtype] and not _is_empty(value):
            errors[field] = f"Not used by {qtype} questions; leave it out."

    settings = _validate_settings(qtype, data, errors) if qtype else {}

    show_if_key = show_if_value = None
    show_if = data.get("show_if")
    if show_if is not None:
        show_if_key, show_if_value = _validate_show_if(show_if, key, earlier, errors)

    errors = {field: message for field, message in errors.items() if message}
    kwargs = {
        "key": key,
        "type": qtype,
        "prompt": prompt,
        "help": help_text,
        "required": required,
        "settings": settings,
        "show_if_key": show_if_key,
        "show_if_value": show_if_value,
    }
    return kwargs, errors


def _validate_settings(qtype: str, data: Mapping, errors: dict) -> dict:
    if qtype == "scale":
        return _scale_settings(data, errors)
    if qtype == "nps":
        return _labels(data, errors)
    if qtype in ("single_choice", "multi_choice"):
        settings = {"options": _options(data.get("options"), errors)}
        if qtype == "multi_choice":
            settings["allow_other"], errors["allow_other"] = _read_bool(data.get("allow_other"), False)
            if settings["allow_other"] and any(o["key"] == OTHER_OPTION_KEY for o in settings["options"]):
                errors["options"] = (
                    f"The key '{OTHER_OPTION_KEY}' is reserved for the free-text answer when allow_other is on."
                )
        return settings
    if qtype == "number":
        return _number_settings(data, errors)
    if qtype == "text":
        max_length = data.get("max_length")
        if max_length is None:
            return {"max_length": DEFAULT_TEXT_MAX_LENGTH}
        value, errors["max_length"] = _read_int(max_length, *TEXT_MAX_LENGTH_RANGE)
        return {"max_length": value}
    return {}  # yes_no has no settings


def _labels(data, errors) -> dict:
    labels = {}
    for field in ("low_label", "high_label"):
        value, errors[field] = _read_text(data.get(field), LABEL_MAX_LENGTH)
        labels[field] = value or None
    return labels


def _scale_settings(data, errors) -> dict:
    scale_max = DEFAULT_SCALE_MAX
    if data.get("scale_max") is not None:
        scale_max, errors["scale_max"] = _read_int(data["scale_max"], *SCALE_MAX_RANGE)
    favorable_min = None
    if scale_max is not None:
        # The default favourable threshold is "top two boxes".
        favorable_min = scale_max - 1
        if data.get("favorable_min") is not None:
            favorable_min, errors["favorable_min"] = _read_int(data["favorable_min"], 1, scale_max)
    return {"scale_max": scale_max, "favorable_min": favorable_min, **_labels(data, errors)}


def _options(options, errors) -> list[dict]:
    if not isinstance(options, list):
        errors["options"] = "Give a list of at least 2 options, each {\"key\", \"label\"}."
        return []
    if not 2 <= len(options) <= MAX_OPTIONS:
        errors["options"] = f"Give from 2 to {MAX_OPTIONS} options (this has {len(options)})."
    normalized, seen = [], {}
    for index, option in enumerate(options):
        where = f"options[{index}]"
        if not isinstance(option, Mapping):
            errors[where] = "Each option must be an object {\"key\", \"label\"}."
            continue
        unknown = sorted(set(option) - {"key", "label"})
        if unknown:
            errors[where] = f"Unknown field: {', '.join(unknown)}."
        key, errors[f"{where}.key"] = read_key(option.get("key"))
        label, errors[f"{where}.label"] = _read_text(option.get("label"), OPTION_LABEL_MAX_LENGTH, required=True)
        if key is not None:
            if key in seen:
                errors[f"{where}.key"] = f"Duplicate option key '{key}' (also option {seen[key] + 1})."
            seen.setdefault(key, index)
        normalized.append({"key": key, "label": label})
    return normalized


def _number_settings(data, errors) -> dict:
    bounds = {}
    for field in ("min", "max"):
        value = data.get(field)
        if value is not None and not _is_number(value):
            errors[field] = f"Must be a number from {-NUMBER_LIMIT:,.0f} to {NUMBER_LIMIT:,.0f}."
            value = None
        bounds[field] = value
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        errors["max"] = "Must be at least the minimum."
    unit, errors["unit"] = _read_text(data.get("unit"), UNIT_MAX_LENGTH)
    return {**bounds, "unit": unit or None}


def _validate_show_if(show_if, own_key, earlier: Mapping, errors) -> tuple[str | None, str | None]:
    if not isinstance(show_if, Mapping) or set(show_if) != {"question", "equals"}:
        errors["show_if"] = 'Must be {"question": KEY, "equals": VALUE} (or null).'
        return None, None
    target = show_if["question"]
    if not isinstance(target, str):
        errors["show_if.question"] = "Must be the key of an earlier question."
        return None, None
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
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
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
    if number is None or (qtype in ("scale", "nps") and not float(number).is_integer()):
        kind = "a whole number" if qtype in ("scale", "nps") else "a number"
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
    errors: dict[str, str] = {}
    for field in data:
        if field not in SET_FIELDS:
            errors[field] = "Unknown field."
    settings = validate_set_settings(data, errors, partial=False)
    questions, question_errors = validate_questions(data.get("questions"), require_questions=require_questions)
    errors.update(question_errors)
    errors = {field: message for field, message in errors.items() if message}
    return {**settings, "questions": questions}, errors


def validate_questions(items, *, require_questions: bool = True) -> tuple[list[dict], dict]:
    """Validate an ordered list of questions (errors keyed `questions[i]...`)."""
    if items is None:
        return [], ({"questions": "Required: a list of at least one question."} if require_questions else {})
    if not isinstance(items, list):
        return [], {"questions": "Must be a list of questions."}
    errors: dict[str, str] = {}
    if require_questions and not items:
        errors["questions"] = "Add at least one question."
    if len(items) > MAX_QUESTIONS:
        errors["questions"] = f"At most {MAX_QUESTIONS} questions (this has {len(items)})."
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


def validate_set_settings(data: Mapping, errors: dict, *, partial: bool, current: QuestionSet | None = None) -> dict:
    """The set-level fields. A full validation fills defaults; a `partial` one
    (an update of `current`) only reads the fields given with a value."""

    def wanted(field):
        return not partial or data.get(field) is not None

    settings: dict = {}
    if wanted("name"):
        settings["name"], errors["name"] = _read_text(data.get("name"), NAME_MAX_LENGTH, required=True)
    if wanted("description"):
        settings["description"], errors["description"] = _read_text(data.get("description"), DESCRIPTION_MAX_LENGTH, multiline=True)
    if wanted("confidentiality"):
        value = data.get("confidentiality")
        if value is None:
            value = DEFAULT_CONFIDENTIALITY
        elif value not in CONFIDENTIALITY_LEVELS:
            errors["confidentiality"] = f"Must be one of: {', '.join(CONFIDENTIALITY_LEVELS)}."
        settings["confidentiality"] = value
    if wanted("hold_until_close"):
        settings["hold_until_close"], errors["hold_until_close"] = _read_bool(data.get("hold_until_close"), False)
    if wanted("min_group_size"):
        value = data.get("min_group_size")
        if value is None:
            value = DEFAULT_MIN_GROUP_SIZE
        settings["min_group_size"], errors["min_group_size"] = _read_int(value, MIN_GROUP_SIZE_FLOOR, MAX_GROUP_SIZE)
    if wanted("comment_min_group_size"):
        value = data.get("comment_min_group_size")
        if value is None:
            # Comments need the larger group: follow a raised minimum rather than fail on the default.
            value = max(DEFAULT_COMMENT_MIN_GROUP_SIZE, settings.get("min_group_size") or DEFAULT_MIN_GROUP_SIZE)
        settings["comment_min_group_size"], errors["comment_min_group_size"] = _read_int(
            value, MIN_GROUP_SIZE_FLOOR, MAX_GROUP_SIZE
        )

    min_group = settings.get("min_group_size", current.min_group_size if current else None)
    comment_min = settings.get("comment_min_group_size", current.comment_min_group_size if current else None)
    if min_group is not None and comment_min is not None and comment_min < min_group:
        errors["comment_min_group_size"] = f"Must be at least the minimum group size ({min_group})."
    return settings
