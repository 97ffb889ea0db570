"""Which rounds a card compares with (the previous one, the same period a year
earlier) and which questions kept their measure in between (no comparison
across a trend break)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select

from cadence.models import Round
from surveys.extensions import db
from surveys.metrics import QuestionSpec
from surveys.models import Question, QuestionSetVersion



COUNTED_STATUSES = ("open", "closed")  # skipped rounds never sent anything
# A year-earlier round is looked for this close to 365 days before, when the
# period keys do not line up (weekly or custom rules).
YEAR_AGO_TOLERANCE = timedelta(days=16)

def previous_round(round_) -> Round | None:
    """The latest earlier round of the same cadence that was sent (open or closed)."""
    return db.session.scalar(
        select(Round)
        .where(
            Round.cadence_id == round_.cadence_id,
            Round.status.in_(COUNTED_STATUSES),
            Round.opens_at < round_.opens_at,
        )
        .order_by(Round.opens_at.desc())
        .limit(1)
    )


_DATED_KEY = re.compile(r"^(\d{4})(-.+)$")


def year_ago_round(round_) -> Round | None:
    """The same period a year earlier: the same period key one year back
    (2026-11 -> 2025-11, 2026-W48 -> 2025-W48, 2026-Q4 -> 2025-Q4), else the
    sent round that opened closest to 365 days earlier, within ±16 days."""
    counted = select(Round).where(Round.cadence_id == round_.cadence_id, Round.status.in_(COUNTED_STATUSES))
    match = _DATED_KEY.match(round_.period_key or "")
    if match:
        key = f"{int(match.group(1)) - 1:04d}{match.group(2)}"
        found = db.session.scalar(counted.where(Round.period_key == key))
        if found is not None:
            return found
    target = round_.opens_at - timedelta(days=365)
    candidates = db.session.scalars(
        counted.where(Round.opens_at.between(target - YEAR_AGO_TOLERANCE, target + YEAR_AGO_TOLERANCE))
    ).all()
    return min(candidates, key=lambda r: abs(r.opens_at - target), default=None)


def measures_by_version(question_set_id, low: int, high: int) -> dict:
    """{version number: {question key: measure}} for the set's versions low..high, in one query."""
    out = defaultdict(dict)
    for number, question in db.session.execute(
        select(QuestionSetVersion.number, Question)
        .join(Question, Question.version_id == QuestionSetVersion.id)
        .where(QuestionSetVersion.question_set_id == question_set_id, QuestionSetVersion.number.between(low, high))
    ):
        out[number][question.key] = QuestionSpec.from_question(question).measure
    return out


def unbroken_keys(version_a, version_b, measures: dict | None = None) -> set:
    """The question keys whose measure no version from `version_a` to
    `version_b` (both included) changed: only those compare across the two
    (a scale changed in v2 and back in v3 still breaks v1 against v3)."""
    if version_a is None or version_b is None:
        return set()
    low, high = sorted((version_a.number, version_b.number))
    if measures is None:
        measures = measures_by_version(version_a.question_set_id, low, high)
    steps = [measures.get(number, {}) for number in range(low, high + 1)]
    return {key for key, measure in steps[0].items() if all(step.get(key) == measure for step in steps)}


def question_specs(version) -> list[QuestionSpec]:
    if version is None:
        return []
    return [QuestionSpec.from_question(question) for question in version.questions]
