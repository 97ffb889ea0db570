"""Trends: each question over a cadence's last rounds, broken where its measure
changed; finalized rounds are read from their stored points."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from cadence.models import Cadence, Round
from surveys import metrics
from surveys.extensions import db
from surveys.metrics import QuestionSpec
from surveys.models import Answer, Question
from surveys.snapshots import ScorecardSnapshot
from surveys.scorecard.confidentiality import Policy, policy_fingerprint
from surveys.scorecard.history import COUNTED_STATUSES, measures_by_version, question_specs, unbroken_keys
from surveys.scorecard.stored import measure_json


TREND_ROUNDS = 12



def trend_rounds(cadence: Cadence, last: int = TREND_ROUNDS, until: Round | None = None) -> list[Round]:
    """The cadence's last `last` sent rounds (up to and including `until`), oldest first."""
    statement = select(Round).where(Round.cadence_id == cadence.id, Round.status.in_(COUNTED_STATUSES))
    if until is not None:
        statement = statement.where(Round.opens_at <= until.opens_at)
    return list(db.session.scalars(statement.order_by(Round.opens_at.desc()).limit(last)))[::-1]


def trends(cadence: Cadence, last: int = TREND_ROUNDS, until: Round | None = None, keys=None,
           until_card: dict | None = None) -> dict:
    """{question key: points} over the cadence's last rounds, oldest first.

    Each point: round id, period key, n, metrics (None when withheld), and
    `break`: True where the measure differs from the point before (no line
    should join them). Finalized rounds answer from their stored card; the
    others are computed in one GROUP BY over all of them, except the `until`
    round when the caller already holds its card (`until_card`): its overall
    numbers are that round's points (withheld by the same rules)."""
    rounds = trend_rounds(cadence, last, until)
    if not rounds:
        return {key: [] for key in keys or []}
    if keys is None:
        keys = [spec.key for spec in question_specs(rounds[-1].version)]
    known = {}
    if until_card is not None and rounds[-1].id == until_card["round"]["id"]:
        known = _card_points(rounds[-1], until_card, keys)
    stored = {}
    closed_ids = [r.id for r in rounds if r.status == "closed"]
    if closed_ids:
        fingerprint = policy_fingerprint(cadence.question_set)
        for snapshot in db.session.scalars(select(ScorecardSnapshot).where(ScorecardSnapshot.round_id.in_(closed_ids))):
            if snapshot.policy == fingerprint:
                stored[snapshot.round_id] = snapshot
    known_rounds = {round_id for round_id, _key in known}
    live = compute_trend_points([r for r in rounds if r.id not in stored and r.id not in known_rounds], keys)
    live.update(known)
    numbers = [r.version.number for r in rounds if r.version is not None]
    measures = measures_by_version(cadence.question_set_id, min(numbers), max(numbers)) if numbers else {}
    unbroken = {}
    for before, after in zip(rounds, rounds[1:]):
        unbroken[after.id] = unbroken_keys(before.version, after.version, measures)
    out = {}
    for key in keys:
        points, last_measure = [], None
        for round_ in rounds:
            if round_.id in stored:
                point, measure = _stored_point(stored[round_.id], round_, key)
            else:
                point, measure = live[(round_.id, key)]
            # A break where the measure differs, or where a version between
            # the two rounds changed it (and changed it back).
            point["break"] = bool(points) and (measure != last_measure or key not in unbroken[round_.id])
            points.append(point)
            last_measure = measure
        out[key] = points
    return out


def _card_points(round_, card, keys) -> dict:
    """{(round id, key): (point, measure)} from the round's own card."""
    entries = {entry["key"]: entry for entry in card["questions"]}
    specs = {spec.key: spec for spec in question_specs(round_.version)}
    out = {}
    for key in keys:
        entry, spec = entries.get(key), specs.get(key)
        point = {"round_id": round_.id, "period_key": round_.period_key,
                 "n": entry["n"] if entry else None, "metrics": entry["metrics"] if entry else None}
        out[(round_.id, key)] = (point, measure_json(spec) if spec else None)
    return out


def _stored_point(snapshot, round_, key):
    stored = snapshot.trend.get(key) or {}
    point = {"round_id": round_.id, "period_key": round_.period_key, "n": stored.get("n"),
             "metrics": stored.get("metrics")}
    return point, snapshot.measures.get(key)


def compute_trend_points(rounds, keys) -> dict:
    """{(round id, key): (point without `break`, measure)} for the rounds,
    from one value-count GROUP BY (and one distinct-respondent count for
    multi-choice and text) over all of them."""
    if not rounds:
        return {}
    round_ids = [r.id for r in rounds]
    specs = {}
    for question in db.session.scalars(
        select(Question).where(
            Question.version_id.in_({r.question_set_version_id for r in rounds}), Question.key.in_(keys)
        )
    ):
        specs[(question.version_id, question.key)] = QuestionSpec.from_question(question)
    types_by_key = defaultdict(set)
    for (_version, key), spec in specs.items():
        types_by_key[key].add(spec.type)
    value_keys = [key for key in keys if types_by_key[key] - {"text"}]
    distinct_keys = [key for key in keys if types_by_key[key] & {"text", "multi_choice"}]
    counts = defaultdict(list)
    answered = defaultdict(int)
    if value_keys:
        for round_id, key, value_num, value_text, count in db.session.execute(
            select(Answer.round_id, Answer.question_key, Answer.value_num, Answer.value_text, func.count())
            .where(Answer.round_id.in_(round_ids), Answer.question_key.in_(value_keys))
            .group_by(Answer.round_id, Answer.question_key, Answer.value_num, Answer.value_text)
        ).all():
            counts[(round_id, key)].append((value_num, value_text, count))
            answered[(round_id, key)] += count
    distinct = {}
    if distinct_keys:
        distinct = {
            (round_id, key): count
            for round_id, key, count in db.session.execute(
                select(Answer.round_id, Answer.question_key, func.count(func.distinct(Answer.response_id)))
                .where(Answer.round_id.in_(round_ids), Answer.question_key.in_(distinct_keys))
                .group_by(Answer.round_id, Answer.question_key)
            ).all()
        }
    out = {}
    for round_ in rounds:
        policy = Policy.for_round(round_)
        for key in keys:
            spec = specs.get((round_.question_set_version_id, key))
            special = spec is not None and spec.type in ("text", "multi_choice")
            n = distinct.get((round_.id, key), 0) if special else answered.get((round_.id, key), 0)
            withheld = spec is None or policy.held or (policy.min_size is not None and n < policy.min_size)
            point = {
                "round_id": round_.id,
                "period_key": round_.period_key,
                "n": None if withheld else n,
                "metrics": None if withheld else metrics.summarize(spec, counts[(round_.id, key)], n).metrics,
            }
            out[(round_.id, key)] = (point, measure_json(spec) if spec else None)
    return out
