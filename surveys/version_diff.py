"""What changed between two versions of a question set, question by question.

Questions line up by key (the key is stable across versions).
Each change is classified by what it does to the trend a scorecard draws:

- `wording`: the prompt, help, labels, option labels, order, "required",
  show-if, number bounds or text length changed, or which way is good news
  (higher is better, an option's sentiment), a pin or "whole numbers only"; the measure is the same, so
  the trend continues across the versions;
- `measure`: the type, the scale length, the favourable threshold, the
  option keys or a number's unit changed; the trend breaks at the new version and no delta is
  computed across it;
- `added` and `removed`: the question exists on one side only.

What counts as the measure is not decided here: it is
`surveys.metrics.QuestionSpec.measure`, the same definition the scorecards
use to decide comparability, so the diff page and the scorecard always agree.

`diff_versions` is a pure function over question rows (persisted or not); it
reads nothing from the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from surveys.direction import DEFAULT_SENTIMENT
from surveys.metrics import QuestionSpec
from surveys.questions.rules import SETTING_DEFAULTS

WORDING = "wording"
MEASURE = "measure"
ADDED = "added"
REMOVED = "removed"
CHANGE_KINDS = (MEASURE, REMOVED, ADDED, WORDING)

KIND_LABELS = {
    WORDING: "Wording only: the trend continues",
    MEASURE: "Measure changed: the trend breaks here",
    ADDED: "Added",
    REMOVED: "Removed",
}

# Presentation settings: changing them keeps the measure.
_WORDING_SETTINGS = {
    "low_label": "low end label",
    "high_label": "high end label",
    "min": "minimum",
    "max": "maximum",
    "max_length": "maximum length",
}


@dataclass(frozen=True)
class Change:
    """One question's change. `details` are plain sentences for people."""

    key: str
    kind: str
    old_prompt: str | None = None
    new_prompt: str | None = None
    details: tuple[str, ...] = field(default_factory=tuple)

    @property
    def breaks_trend(self) -> bool:
        return self.kind == MEASURE

    @property
    def prompt(self) -> str:
        return self.new_prompt if self.new_prompt is not None else (self.old_prompt or "")

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


def _questions_of(version) -> list:
    if version is None:
        return []
    questions = getattr(version, "questions", version)
    return sorted(questions, key=lambda question: question.position or 0)


def diff_versions(old, new) -> list[Change]:
    """The changes from `old` to `new` (versions, lists of questions, or None
    for "nothing"), in the new version's order, removed questions last.
    Questions that did not change at all are left out."""
    old_questions = _questions_of(old)
    new_questions = _questions_of(new)
    old_by_key = {question.key: question for question in old_questions}
    new_keys = {question.key for question in new_questions}
    old_positions = {question.key: index for index, question in enumerate(old_questions, start=1)}
    # Positions among the questions both versions share, so adding or removing
    # a question does not count as moving everything after it.
    shared_old = [q.key for q in old_questions if q.key in new_keys]
    shared_new = [q.key for q in new_questions if q.key in old_by_key]

    changes: list[Change] = []
    for question in new_questions:
        before = old_by_key.get(question.key)
        if before is None:
            changes.append(Change(question.key, ADDED, None, question.prompt, (_describe_measure(question),)))
            continue
        moved = shared_old.index(question.key) != shared_new.index(question.key)
        change = _compare(before, question, moved, old_positions[question.key])
        if change is not None:
            changes.append(change)
    for question in old_questions:
        if question.key not in new_keys:
            changes.append(Change(question.key, REMOVED, question.prompt, None, ("Its trend ends at the old version.",)))
    return changes


def breaking_changes(changes: Iterable[Change]) -> list[Change]:
    return [change for change in changes if change.breaks_trend]


def _compare(before, after, moved: bool, old_position: int) -> Change | None:
    measure_details = _measure_differences(before, after)
    wording_details = _wording_differences(before, after)
    if moved:
        wording_details.append(f"Moved (it was question {old_position}).")
    if not measure_details and not wording_details:
        return None
    kind = MEASURE if measure_details else WORDING
    return Change(after.key, kind, before.prompt, after.prompt, tuple(measure_details + wording_details))


def _measure_differences(before, after) -> list[str]:
    old_spec, new_spec = QuestionSpec.from_question(before), QuestionSpec.from_question(after)
    if old_spec.measure == new_spec.measure:
        return []
    details = []
    if old_spec.type != new_spec.type:
        details.append(f"Type changed from {old_spec.type} to {new_spec.type}.")
        return details
    if old_spec.scale_max != new_spec.scale_max:
        details.append(f"Scale changed from 1–{old_spec.scale_max} to 1–{new_spec.scale_max}.")
    if old_spec.favorable_min != new_spec.favorable_min:
        details.append(f"Favourable threshold changed from {old_spec.favorable_min} to {new_spec.favorable_min}.")
    gone = [key for key in old_spec.option_keys if key not in new_spec.option_keys]
    came = [key for key in new_spec.option_keys if key not in old_spec.option_keys]
    if gone:
        details.append(f"Option keys removed: {', '.join(gone)}.")
    if came:
        details.append(f"Option keys added: {', '.join(came)}.")
    if old_spec.unit != new_spec.unit:
        details.append(f"The unit changed: {old_spec.unit or 'none'} → {new_spec.unit or 'none'}.")
    return details


def _wording_differences(before, after) -> list[str]:
    details = []
    if (before.prompt or "") != (after.prompt or ""):
        details.append("Question reworded.")
    if (before.help or "") != (after.help or ""):
        details.append("Help text changed.")
    if bool(before.required) != bool(after.required):
        details.append("Now required." if after.required else "Now optional.")
    if (before.show_if_key, before.show_if_value) != (after.show_if_key, after.show_if_value):
        details.append(f"Show-if changed: {_show_if_text(before)} → {_show_if_text(after)}.")
    for name, label in _WORDING_SETTINGS.items():
        if before.setting(name) != after.setting(name):
            details.append(f"The {label} changed: {_value_text(before.setting(name))} → {_value_text(after.setting(name))}.")
    old_labels = {option["key"]: option["label"] for option in before.options or []}
    for option in after.options or []:
        old_label = old_labels.get(option["key"])
        if old_label is not None and old_label != option["label"]:
            details.append(f"Option {option['key']} relabelled: “{old_label}” → “{option['label']}”.")
    old_order = [key for key in old_labels if key in {o["key"] for o in after.options or []}]
    new_order = [o["key"] for o in after.options or [] if o["key"] in old_labels]
    if old_order != new_order:
        details.append("Options reordered.")
    details.extend(_flag_differences(before, after))
    return details


def _flag_differences(before, after) -> list[str]:
    """Direction of good, pins and whole numbers: how the scorecard reads the
    measure, never the measure itself."""
    def flag(question, name):
        return bool(question.setting(name, SETTING_DEFAULTS[name]))

    details = []
    if before.type == after.type and flag(before, "higher_is_better") != flag(after, "higher_is_better"):
        details.append("Now higher is better." if flag(after, "higher_is_better") else "Now lower is better.")
    if flag(before, "pinned") != flag(after, "pinned"):
        details.append("Now pinned as a key metric." if flag(after, "pinned") else "No longer pinned as a key metric.")
    if before.type == after.type and flag(before, "whole_numbers") != flag(after, "whole_numbers"):
        details.append("Now whole numbers only." if flag(after, "whole_numbers") else "Now takes any number.")
    old_sentiments = {option["key"]: option.get("sentiment") or DEFAULT_SENTIMENT for option in before.options or []}
    for option in after.options or []:
        old = old_sentiments.get(option["key"])
        new = option.get("sentiment") or DEFAULT_SENTIMENT
        if old is not None and old != new:
            details.append(f"Option {option['key']} is now {new} news (it was {old}).")
    return details


def _show_if_text(question) -> str:
    if not question.show_if_key:
        return "always shown"
    return f"shown if {question.show_if_key} = {question.show_if_value}"


def _value_text(value) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _describe_measure(question) -> str:
    spec = QuestionSpec.from_question(question)
    if spec.type == "scale":
        return f"A 1–{spec.scale_max} scale, favourable from {spec.favorable_min}; its trend starts here."
    if spec.option_keys:
        return f"{spec.type.replace('_', ' ')} with options {', '.join(spec.option_keys)}; its trend starts here."
    return f"A {spec.type.replace('_', ' ')} question; its trend starts here."
