"""Question sets as the API and the export show them."""

from __future__ import annotations

from sqlalchemy import func, select

from cadence.clock import isoformat_z
from surveys.extensions import db
from surveys.models import Question, QuestionSet, QuestionSetVersion
from surveys.direction import DEFAULT_SENTIMENT
from surveys.questions.rules import SETTING_DEFAULTS, TYPE_FIELDS
from surveys.questions.validation import number_as_api_value


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
        value = question.setting(field, SETTING_DEFAULTS.get(field))
        if field == "options":
            value = [{"key": option["key"], "label": option["label"],
                      "sentiment": option.get("sentiment") or DEFAULT_SENTIMENT} for option in value or []]
        result[field] = value
    result["show_if"] = None
    if question.show_if_key:
        result["show_if"] = {"question": question.show_if_key, "equals": _show_if_api_value(question)}
    return result


def _show_if_api_value(question: Question):
    """Numbers are stored as text in show_if_value; the API gives them back as numbers."""
    target = next((q for q in question.version.questions if q.key == question.show_if_key), None)
    if target is not None and target.type in ("scale", "nps", "number"):
        return number_as_api_value(float(question.show_if_value))
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
        "archived_at": isoformat_z(question_set.archived_at),
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
