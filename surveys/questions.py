"""Question sets as a service: validation, drafts, publishing, API shapes.

Views, the JSON API, the CLI seed and the tests all go through these plain
functions. They add to `db.session` (and flush, so new rows have ids) but
never commit: the caller owns the transaction.

Validation speaks the API's language. A question is the API object from
docs/api.md (`{"key", "type", "prompt", ..., "show_if": {"question", "equals"}}`);
errors are a flat map of field path to message (`"options[1].key"`,
`"questions[2].show_if.equals"`), which the API returns as its `errors` and the
designer shows next to its fields.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping

from sqlalchemy import exists, func, select

from cadence.clock import isoformat_z, utcnow
from cadence.models import Invitation, Round
from surveys.extensions import db
from surveys.models import (
    CONFIDENTIALITY_LEVELS,
    MIN_GROUP_SIZE_FLOOR,
    QUESTION_TYPES,
    Answer,
    Question,
    QuestionSet,
    QuestionSetVersion,
)
from surveys.version_diff import breaking_changes, diff_versions

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
KEY_RULE = "Use a slug: a lowercase letter, then lowercase letters, digits or underscores (at most 64 characters)."

PROMPT_MAX_LENGTH = 500
HELP_MAX_LENGTH = 1000
LABEL_MAX_LENGTH = 100
OPTION_LABEL_MAX_LENGTH = 200
UNIT_MAX_LENGTH = 40
NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 2000
MAX_OPTIONS = 50
MAX_QUESTIONS = 100
MAX_GROUP_SIZE = 10_000
# Bounds and show_if values of number questions stay within what people count
# ("deals", "seats", revenue) and what a float holds exactly.
NUMBER_LIMIT = 1e12

SCALE_MAX_RANGE = (3, 10)
DEFAULT_SCALE_MAX = 5
NPS_RANGE = (0, 10)
TEXT_MAX_LENGTH_RANGE = (1, 10_000)
DEFAULT_TEXT_MAX_LENGTH = 2000
DEFAULT_MIN_GROUP_SIZE = 5
DEFAULT_COMMENT_MIN_GROUP_SIZE = 10
DEFAULT_CONFIDENTIALITY = "confidential"

# The multi_choice "other" free text is stored on an answer row keyed "other"
# (see surveys.models), so that key cannot also name a regular option.
OTHER_OPTION_KEY = "other"

COMMON_FIELDS = ("key", "type", "prompt", "help", "required", "show_if")
# The settings each type uses, in the order the API shows them.
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "scale": ("scale_max", "favorable_min", "low_label", "high_label"),
    "nps": ("low_label", "high_label"),
    "single_choice": ("options",),
    "multi_choice": ("options", "allow_other"),
    "number": ("min", "max", "unit"),
    "yes_no": (),
    "text": ("max_length",),
}
ALL_SETTING_FIELDS = tuple(dict.fromkeys(f for fields in TYPE_FIELDS.values() for f in fields))

SET_FIELDS = (
    "name",
    "description",
    "confidentiality",
    "min_group_size",
    "comment_min_group_size",
    "hold_until_close",
    "questions",
)
# Stricter first: the order confidentiality may move in once answers exist.
CONFIDENTIALITY_STRICTNESS = {"attributed": 0, "confidential": 1}


class QuestionSetError(Exception):
    """Base class for refusals a caller should turn into a clear message."""


class QuestionSetInvalid(QuestionSetError):
    """Bad input; `errors` maps field paths to messages. Nothing was changed."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


class NothingToPublish(QuestionSetError):
    """Publishing needs a draft with at least one question."""


class BreakingChangesNotConfirmed(QuestionSetError):
    """The draft changes the measure of questions that already have a trend;
    publishing needs an explicit confirmation naming them. `changes` are the
    breaking `surveys.version_diff.Change`s."""

    def __init__(self, changes):
        keys = ", ".join(change.key for change in changes)
        super().__init__(
            f"Publishing would break the trend of {len(changes)} question{'s' if len(changes) != 1 else ''} "
            f"({keys}): their measure changed, so no delta will be computed across this version. "
            "Confirm to publish anyway."
        )
        self.changes = changes


# -- Small typed readers --------------------------------------------------------
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


def _read_key(value):
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


def _number_as_api_value(value: float | int):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# -- One question ---------------------------------------------------------------


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

    key, errors["key"] = _read_key(data.get("key"))
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
        key, errors[f"{where}.key"] = _read_key(option.get("key"))
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
        return target, str(_number_as_api_value(value)) if _is_number(value) else value
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
    return str(_number_as_api_value(number)), None


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


# -- A whole question set --------------------------------------------------------


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
    settings = _validate_set_settings(data, errors, partial=False)
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


def _validate_set_settings(data: Mapping, errors: dict, *, partial: bool, current: QuestionSet | None = None) -> dict:
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


# -- Creating and editing ----------------------------------------------------------


def create_question_set(owner, data, *, require_questions: bool = True) -> QuestionSet:
    """Create a set and its draft version 1. Raises QuestionSetInvalid."""
    normalized, errors = validate_question_set(data, require_questions=require_questions)
    if errors:
        raise QuestionSetInvalid(errors)
    questions = normalized.pop("questions")
    question_set = QuestionSet(owner=owner, **normalized)
    draft = QuestionSetVersion(question_set=question_set, number=1, status="draft")
    draft.questions = [Question(position=position, **kwargs) for position, kwargs in enumerate(questions, start=1)]
    db.session.add(question_set)
    db.session.flush()
    return question_set


def ensure_draft(question_set: QuestionSet) -> QuestionSetVersion:
    """The draft to edit: the existing one, or draft N+1 copied from the
    latest published version (published versions never change)."""
    draft = question_set.draft
    if draft is not None:
        return draft
    latest = question_set.versions[-1] if question_set.versions else None
    # Copy before creating the draft: loading the questions may autoflush,
    # and a half-built draft must not be part of that flush.
    copies = [_copy_question(question) for question in latest.questions] if latest else []
    draft = QuestionSetVersion(number=(latest.number + 1) if latest else 1, status="draft", questions=copies)
    db.session.add(draft)
    question_set.versions.append(draft)
    db.session.flush()
    return draft


def _copy_question(question: Question) -> Question:
    return Question(
        position=question.position,
        key=question.key,
        type=question.type,
        prompt=question.prompt,
        help=question.help,
        required=question.required,
        settings=copy.deepcopy(question.settings or {}),
        show_if_key=question.show_if_key,
        show_if_value=question.show_if_value,
    )


def replace_draft_questions(question_set: QuestionSet, questions_data) -> QuestionSetVersion:
    """Replace every question of the draft (making draft N+1 when the latest
    version is published). Raises QuestionSetInvalid, changing nothing."""
    questions, errors = validate_questions(questions_data)
    if errors:
        raise QuestionSetInvalid(errors)
    return _store_draft_questions(question_set, questions)


def _store_draft_questions(question_set: QuestionSet, questions: list[dict]) -> QuestionSetVersion:
    """Write already validated questions (model kwargs) as the draft's."""
    draft = ensure_draft(question_set)
    draft.questions.clear()
    # Delete the old rows before inserting the new ones: the same keys come
    # back and (version_id, key) is unique.
    db.session.flush()
    draft.questions.extend(
        Question(position=position, **kwargs) for position, kwargs in enumerate(questions, start=1)
    )
    db.session.flush()
    return draft


def add_question(question_set: QuestionSet, data) -> Question:
    """Append one question to the draft. Raises QuestionSetInvalid with
    errors keyed by the question's own fields (`options[1].key`)."""
    existing = _current_questions(question_set)
    kwargs, errors = validate_question(data, {question.key: question for question in existing})
    if not errors and any(question.key == kwargs["key"] for question in existing):
        errors["key"] = f"The key '{kwargs['key']}' is already used in this set."
    if not errors and len(existing) >= MAX_QUESTIONS:
        errors[""] = f"A set has at most {MAX_QUESTIONS} questions."
    if errors:
        raise QuestionSetInvalid(errors)
    draft = ensure_draft(question_set)
    question = Question(position=len(draft.questions) + 1, **kwargs)
    draft.questions.append(question)
    db.session.flush()
    return question


def remove_question(question_set: QuestionSet, key: str) -> QuestionSetVersion:
    """Remove the question `key` from the draft. Refused (QuestionSetInvalid)
    while a later question's show_if depends on it."""
    existing = _current_questions(question_set)
    if not any(question.key == key for question in existing):
        raise QuestionSetInvalid({"key": f"There is no question '{key}' in this set."})
    dependents = [question.key for question in existing if question.show_if_key == key]
    if dependents:
        raise QuestionSetInvalid(
            {"key": f"'{', '.join(dependents)}' is shown only depending on '{key}': change or remove it first."}
        )
    draft = ensure_draft(question_set)
    draft.questions = [question for question in draft.questions if question.key != key]
    for position, question in enumerate(draft.questions, start=1):
        question.position = position
    db.session.flush()
    return draft


# -- Editing the draft question by question ----------------------------------------
# Each edit rewrites the draft's question list through `validate_questions`,
# so every rule (unique keys, show-if only on an earlier question, show-if
# values that still exist) holds after any edit, whatever its kind.

KEY_FIXED_REASON = (
    "Keys are fixed once the set has been published: scorecards line up answers across versions by the key."
)
# Words that make poor keys: "Did you lose a deal this month?" -> lose_deal_month.
_KEY_STOP_WORDS = frozenset(
    "a an and any are as at be by did do does for from had has have how i if in is it its me of on or our "
    "so that the their them there these this to was we were what when where which who why will with would "
    "you your".split()
)
_KEY_MAX_WORDS = 4
_KEY_SUGGESTION_LENGTH = 40


def suggest_key(prompt: str, taken: Iterable[str] = ()) -> str:
    """A slug key for a question from its prompt, unique among `taken`."""
    words = re.findall(r"[a-z0-9]+", (prompt or "").lower())
    meaningful = [word for word in words if word not in _KEY_STOP_WORDS] or words
    base = "_".join(meaningful[:_KEY_MAX_WORDS])[:_KEY_SUGGESTION_LENGTH].strip("_") or "question"
    if not base[0].isalpha():
        base = "q_" + base
    return _unique_key(base, set(taken))


def _unique_key(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    number = 2
    while f"{base}_{number}" in taken:
        number += 1
    return f"{base}_{number}"


def has_been_published(question_set: QuestionSet) -> bool:
    return question_set.latest_published is not None


def draft_items(question_set: QuestionSet) -> list[dict]:
    """The questions an edit starts from, as API question objects."""
    return [question_to_dict(question) for question in _current_questions(question_set)]


def _index_of(items: list[dict], key: str) -> int:
    for index, item in enumerate(items):
        if item["key"] == key:
            return index
    raise QuestionSetInvalid({"key": f"There is no question '{key}' in this set."})


def _rewrite_draft(question_set: QuestionSet, items: list[dict], edited_index: int | None = None) -> QuestionSetVersion:
    """Validate the whole new list and store it as the draft. Errors of the
    edited question are keyed by its own fields; errors another question gets
    because of the edit (a show-if that no longer fits) are explained under ""."""
    _check_dependency_order(items)
    questions, errors = validate_questions(items)
    if errors:
        own, others = {}, []
        for path, message in errors.items():
            match = re.match(r"questions\[(\d+)\]\.?(.*)", path)
            index = int(match.group(1)) if match else None
            if index is not None and index == edited_index:
                own[match.group(2)] = message
            elif index is not None:
                key = items[index].get("key") if isinstance(items[index], Mapping) else None
                others.append(f"Question '{key}' ({match.group(2) or 'question'}): {message}")
            else:
                others.append(message)
        if others:
            own[""] = " ".join(others)
        raise QuestionSetInvalid(own)
    return _store_draft_questions(question_set, questions)


def _check_dependency_order(items: list[dict]) -> None:
    """A question shown depending on another must stay below it: say so
    plainly rather than as a generic "earlier question" error."""
    seen: set[str] = set()
    keys = {item.get("key") for item in items if isinstance(item, Mapping)}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        show_if = item.get("show_if")
        target = show_if.get("question") if isinstance(show_if, Mapping) else None
        if target and target in keys and target not in seen and target != item.get("key"):
            raise QuestionSetInvalid(
                {"order": f"'{item['key']}' is shown only depending on '{target}', so it must stay below it."}
            )
        seen.add(item.get("key"))


def update_question(question_set: QuestionSet, key: str, data) -> QuestionSetVersion:
    """Replace the draft question `key` by `data` (an API question object).

    The key may change only while the set has never been published; the
    show-if conditions that name it follow the new key. Raises
    QuestionSetInvalid (errors keyed by the question's own fields), changing
    nothing.
    """
    if not isinstance(data, Mapping):
        raise QuestionSetInvalid({"": "The question must be an object."})
    items = draft_items(question_set)
    index = _index_of(items, key)
    new_key = data.get("key")
    new_key = new_key.strip() if isinstance(new_key, str) else new_key
    if new_key != key:
        new_key, key_error = _read_key(new_key)
        if key_error:
            raise QuestionSetInvalid({"key": key_error})
        if has_been_published(question_set):
            raise QuestionSetInvalid({"key": f"{KEY_FIXED_REASON} It stays '{key}'."})
        if any(item["key"] == new_key for item in items):
            raise QuestionSetInvalid({"key": f"The key '{new_key}' is already used in this set."})
        for item in items:
            if item["show_if"] and item["show_if"]["question"] == key:
                item["show_if"] = {**item["show_if"], "question": new_key}
    items[index] = {**data, "key": new_key}
    return _rewrite_draft(question_set, items, edited_index=index)


def move_question(question_set: QuestionSet, key: str, offset: int) -> QuestionSetVersion:
    """Move the question `key` up (negative offset) or down. Refused when it
    would put a question above the one its show-if depends on."""
    items = draft_items(question_set)
    index = _index_of(items, key)
    target = min(max(index + offset, 0), len(items) - 1)
    items.insert(target, items.pop(index))
    return _rewrite_draft(question_set, items)


def reorder_questions(question_set: QuestionSet, keys) -> QuestionSetVersion:
    """Put the draft's questions in the order of `keys` (every key once)."""
    items = draft_items(question_set)
    current = [item["key"] for item in items]
    if not isinstance(keys, list) or sorted(keys, key=str) != sorted(current):
        raise QuestionSetInvalid({"order": "Give every question's key exactly once."})
    by_key = {item["key"]: item for item in items}
    return _rewrite_draft(question_set, [by_key[key] for key in keys])


def duplicate_question(question_set: QuestionSet, key: str) -> Question:
    """Copy the question `key` just below itself under a new key."""
    items = draft_items(question_set)
    index = _index_of(items, key)
    if len(items) >= MAX_QUESTIONS:
        raise QuestionSetInvalid({"": f"A set has at most {MAX_QUESTIONS} questions."})
    base = f"{key[:_KEY_SUGGESTION_LENGTH]}_copy"
    copy_of = {**copy.deepcopy(items[index]), "key": _unique_key(base, {item["key"] for item in items})}
    items.insert(index + 1, copy_of)
    draft = _rewrite_draft(question_set, items, edited_index=index + 1)
    return draft.questions[index + 1]


def _current_questions(question_set: QuestionSet) -> list[Question]:
    """The questions an edit starts from: the draft's, else the latest version's."""
    version = question_set.draft or (question_set.versions[-1] if question_set.versions else None)
    return list(version.questions) if version is not None else []


def publish(question_set: QuestionSet, *, now=None, confirm_breaking: bool = False) -> QuestionSetVersion:
    """Freeze the draft as the next published version.

    Raises NothingToPublish, or BreakingChangesNotConfirmed when the draft
    changes the measure of a question the last published version had (its
    trend breaks there) and `confirm_breaking` is not set.
    """
    draft = question_set.draft
    if draft is None:
        raise NothingToPublish("There is no draft to publish: every version of this set is already published.")
    if not draft.questions:
        raise NothingToPublish(f"Draft version {draft.number} has no questions yet: add at least one first.")
    breaking = breaking_changes(pending_changes(question_set))
    if breaking and not confirm_breaking:
        raise BreakingChangesNotConfirmed(breaking)
    draft.status = "published"
    draft.published_at = now or utcnow()
    db.session.flush()
    return draft


def pending_changes(question_set: QuestionSet) -> list:
    """What publishing the draft would change against the last published
    version (`surveys.version_diff.Change`s); empty without a draft."""
    if question_set.draft is None:
        return []
    return diff_versions(question_set.latest_published, question_set.draft)


def version_by_number(question_set: QuestionSet, number: int) -> QuestionSetVersion | None:
    return next((version for version in question_set.versions if version.number == number), None)


def previous_version(question_set: QuestionSet, version: QuestionSetVersion) -> QuestionSetVersion | None:
    """What `version` is compared with: the version before it (for a draft,
    the last published one)."""
    earlier = [v for v in question_set.versions if v.number < version.number and v.status == "published"]
    return earlier[-1] if earlier else None


def version_for_round(question_set: QuestionSet) -> QuestionSetVersion | None:
    """The version a new round freezes: the latest published one."""
    return question_set.latest_published


def has_answers(question_set: QuestionSet) -> bool:
    """Whether any round of any version of this set has an answer."""
    return db.session.scalar(
        select(
            exists()
            .where(Answer.round_id == Round.id)
            .where(Round.question_set_version_id == QuestionSetVersion.id)
            .where(QuestionSetVersion.question_set_id == question_set.id)
        )
    )


def has_invitations(question_set: QuestionSet) -> bool:
    """Whether anyone has been invited to a round of any version of this set:
    from then on its confidentiality is a promise (SPEC §2)."""
    return db.session.scalar(
        select(
            exists()
            .where(Invitation.round_id == Round.id)
            .where(Round.question_set_version_id == QuestionSetVersion.id)
            .where(QuestionSetVersion.question_set_id == question_set.id)
        )
    )


def update_settings(question_set: QuestionSet, data) -> QuestionSet:
    """Change the set-level fields given in `data` (a partial update).

    Once anyone has been invited (so before any answer exists), the promise
    made to them cannot be loosened: confidentiality may only become stricter, the group
    size thresholds may only rise and a hold until close cannot be lifted.
    Raises QuestionSetInvalid, changing nothing.
    """
    if not isinstance(data, Mapping):
        raise QuestionSetInvalid({"": "The settings must be an object."})
    errors: dict[str, str] = {}
    for field in data:
        if field not in SET_FIELDS or field == "questions":
            errors[field] = "Unknown field." if field != "questions" else "Edit questions through the draft."
    settings = _validate_set_settings(data, errors, partial=True, current=question_set)
    errors = {field: message for field, message in errors.items() if message}
    if not errors and has_invitations(question_set):
        reason = ("answers already exist, so this can only become stricter" if has_answers(question_set)
                  else "people were invited under this promise, so it can only become stricter")
        errors.update(_loosening_errors(question_set, settings, reason))
    if errors:
        raise QuestionSetInvalid(errors)
    for field, value in settings.items():
        setattr(question_set, field, value)
    db.session.flush()
    return question_set


def _loosening_errors(question_set: QuestionSet, settings: dict, reason: str) -> dict:
    errors = {}
    new_level = settings.get("confidentiality", question_set.confidentiality)
    if CONFIDENTIALITY_STRICTNESS[new_level] < CONFIDENTIALITY_STRICTNESS[question_set.confidentiality]:
        errors["confidentiality"] = f"Cannot change from {question_set.confidentiality} to {new_level}: {reason}."
    for field in ("min_group_size", "comment_min_group_size"):
        if field in settings and settings[field] < getattr(question_set, field):
            errors[field] = f"Cannot go below {getattr(question_set, field)}: {reason}."
    if question_set.hold_until_close and settings.get("hold_until_close") is False:
        errors["hold_until_close"] = f"Cannot be turned off: {reason}."
    return errors


# -- API shapes ---------------------------------------------------------------------


def question_to_dict(question: Question) -> dict:
    """The API question object, with only the fields its type uses."""
    result = {
        "key": question.key,
        "type": question.type,
        "prompt": question.prompt,
        "help": question.help or "",
        "required": question.required,
    }
    for field in TYPE_FIELDS[question.type]:
        value = question.setting(field)
        if field == "options":
            value = [{"key": option["key"], "label": option["label"]} for option in value or []]
        result[field] = value
    result["show_if"] = None
    if question.show_if_key:
        result["show_if"] = {"question": question.show_if_key, "equals": _show_if_api_value(question)}
    return result


def _show_if_api_value(question: Question):
    """Numbers are stored as text in show_if_value; the API gives them back as numbers."""
    target = next((q for q in question.version.questions if q.key == question.show_if_key), None)
    if target is not None and target.type in ("scale", "nps", "number"):
        return _number_as_api_value(float(question.show_if_value))
    return question.show_if_value


def version_to_dict(version: QuestionSetVersion, *, include_questions: bool = True) -> dict:
    result = {
        "id": version.id,
        "number": version.number,
        "status": version.status,
        "published_at": isoformat_z(version.published_at),
    }
    if include_questions:
        result["questions"] = [question_to_dict(question) for question in version.questions]
    return result


def _set_fields(question_set: QuestionSet) -> dict:
    """The set's own fields, as the API reads and writes them."""
    return {
        "name": question_set.name,
        "description": question_set.description or "",
        "confidentiality": question_set.confidentiality,
        "min_group_size": question_set.min_group_size,
        "comment_min_group_size": question_set.comment_min_group_size,
        "hold_until_close": question_set.hold_until_close,
    }


def question_set_to_dict(question_set: QuestionSet, *, include_questions: bool = True) -> dict:
    return {
        "id": question_set.id,
        **_set_fields(question_set),
        "versions": [version_to_dict(v, include_questions=include_questions) for v in question_set.versions],
    }


def question_counts_by_version(version_ids: list[int]) -> dict[int, int]:
    """How many questions each version has, counted in SQL (for listings)."""
    if not version_ids:
        return {}
    rows = db.session.execute(
        select(Question.version_id, func.count(Question.id))
        .where(Question.version_id.in_(version_ids))
        .group_by(Question.version_id)
    )
    return dict(rows.all())


def export_question_set(question_set: QuestionSet, version: QuestionSetVersion | None = None) -> dict:
    """The set as a POST /api/v1/question-sets body, so it can be imported
    here or in another installation. `version` defaults to the one being
    edited (the draft, else the latest published)."""
    version = version or question_set.draft or question_set.latest_published
    return {
        **_set_fields(question_set),
        "questions": [question_to_dict(question) for question in version.questions] if version else [],
    }
