"""What a question set may hold: keys, lengths, ranges, types and their settings,
confidentiality, and the refusals the service raises."""

from __future__ import annotations

import re




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

# The settings each type uses, in the order the API shows them. `higher_is_better`
# says which way is good news; `pinned` puts the question among the key
# metrics at the top of the scorecard; neither is part of the measure.
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "scale": ("scale_max", "favorable_min", "low_label", "high_label", "higher_is_better", "pinned"),
    "nps": ("low_label", "high_label", "higher_is_better", "pinned"),
    "single_choice": ("options", "pinned"),
    "multi_choice": ("options", "allow_other", "pinned"),
    "number": ("min", "max", "unit", "whole_numbers", "higher_is_better", "pinned"),
    "yes_no": ("higher_is_better", "pinned"),
    "text": ("max_length",),
}
# What a setting is when a question (stored before the setting existed) has none.
SETTING_DEFAULTS = {"higher_is_better": True, "pinned": False, "whole_numbers": False, "allow_other": False}
ALL_SETTING_FIELDS = tuple(dict.fromkeys(f for fields in TYPE_FIELDS.values() for f in fields))

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
