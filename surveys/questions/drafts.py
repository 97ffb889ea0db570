"""Drafts and publishing: create a set, edit its draft (whole or question by
question), publish it as a frozen version, change its settings (never looser
once invitations exist). These add to `db.session` (and flush, so new rows
have ids) but never commit: the caller owns the transaction."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping

from sqlalchemy import exists, select

from cadence.clock import utcnow
from cadence.models import Invitation, Round
from surveys import payloads
from surveys.extensions import db
from surveys.models import Answer, Question, QuestionSet, QuestionSetVersion
from surveys.version_diff import breaking_changes, diff_versions
from surveys.questions.rules import (
    CONFIDENTIALITY_STRICTNESS,
    MAX_QUESTIONS,
    BreakingChangesNotConfirmed,
    NothingToPublish,
    QuestionSetInvalid,
)
from surveys.questions.shapes import question_to_dict
from surveys.questions.validation import (
    read_key,
    validate_question,
    validate_question_set,
    validate_questions,
    validate_set_settings,
)


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
        new_key, key_error = read_key(new_key)
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
    data = payloads.stripped(dict(data))
    errors = payloads.shape_errors("QuestionSetSettings", data, root="")
    if "questions" in data:
        errors["questions"] = "Edit questions through the draft."
    settings = validate_set_settings(data, errors, partial=True, current=question_set)
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
