"""A round's summary, read first: the headline sentence, the key-metric tiles
(each with its last 12 rounds and their 95 % intervals) and the long-run
changes per question. The scorecard page and `GET /api/v1/rounds/<id>/summary`
both show it; it uses only numbers the card and the trends already publish."""

from __future__ import annotations

from surveys import metrics
from surveys.direction import Direction, directions_of
from surveys.scorecard.assembly import scorecard_and_sums
from surveys.scorecard.longrun import (
    LONG_RUN_METRIC, long_run_changes, published_results, quantitative_specs,
)
from surveys.scorecard.trends import TREND_ROUNDS, trends
from surveys.scorecard_headline import headline_sentence, question_name

# Without pinned questions, the set's first quantitative questions are its key metrics.
DEFAULT_KEY_METRICS = 4


def key_metric_keys(round_) -> list[str]:
    """The questions the PM pinned (setting "pinned"), else the first up to
    four quantitative ones; only questions with a headline number make a tile."""
    questions = round_.version.questions if round_.version else []
    quantitative = {spec.key for spec in quantitative_specs(round_)}
    pinned = [q.key for q in questions if q.setting("pinned") and q.key in quantitative]
    if pinned:
        return pinned
    return [q.key for q in questions if q.key in quantitative][:DEFAULT_KEY_METRICS]


def round_overview(round_, card: dict | None = None, series: dict | None = None, sums: dict | None = None) -> dict:
    """{"round", "previous_round", "headline", "tiles", "long_run"}. `card` (any
    slice kind: its questions are the overall ones), `series` (trends up to
    the round) and the card's `sums` (`scorecard_and_sums`) are passed by a
    page that already holds them."""
    if card is None:
        card, sums = scorecard_and_sums(round_)
    keys = [spec.key for spec in quantitative_specs(round_)]
    if series is None or any(key not in series for key in keys):
        series = trends(round_.cadence, TREND_ROUNDS, until=round_, keys=keys, until_card=card)
    results = published_results(round_, series, sums)
    long_run = long_run_changes(round_, series, card, results)
    entries = {entry["key"]: entry for entry in card["questions"]}
    questions = {q.key: q for q in (round_.version.questions if round_.version else [])}
    tiles = [_tile(entries[key], questions[key], long_run[key], series.get(key) or [], results, card)
             for key in key_metric_keys(round_) if key in entries]
    return {
        "round": card["round"],
        "previous_round": card["previous_round"],
        "headline": headline_sentence(card, long_run, directions_of(questions.values())),
        "tiles": tiles,
        "long_run": list(long_run.values()),
    }


def _tile(entry, question, long_run, points, results, card) -> dict:
    metric = LONG_RUN_METRIC[entry["type"]]
    withheld = entry["suppressed"] or entry["metrics"] is None
    direction = Direction.of(question)
    twelve = next(window for window in long_run["windows"] if window["rounds"] == TREND_ROUNDS)
    step = (entry["delta"] or {}).get(metric)
    return {
        "key": entry["key"],
        "name": question_name(entry["key"]),
        "prompt": entry["prompt"],
        "type": entry["type"],
        "metric": metric,
        "scale_max": entry.get("scale_max"),
        "unit": (question.setting("unit") or "").strip() or None if entry["type"] == "number" else None,
        "value": None if withheld else entry["metrics"].get(metric),
        "n": entry["n"],
        "ci95": None if withheld else (entry["ci95"] or {}).get(metric),
        "suppressed": entry["suppressed"],
        "suppressed_reason": entry.get("suppressed_reason"),
        "since_previous": {
            "period_key": (card["previous_round"] or {}).get("period_key"),
            "delta": step,
            "significant": (entry["significant"] or {}).get(metric),
            "meaning": direction.meaning(metric, step),
        },
        "over_12_rounds": {**twelve, "meaning": direction.meaning(metric, twelve["delta"])},
        "slope": long_run["slope"],
        "points": [_point(point, results.get((point["round_id"], entry["key"])), metric) for point in points],
    }


def _point(point, result, metric) -> dict:
    """One round of a tile's chart: published value, n and 95 % interval (all
    None when the round is withheld), and whether the measure changed there."""
    published = point["metrics"] is not None
    interval = metrics.intervals(result).get(metric) if published and result is not None else None
    return {
        "round_id": point["round_id"],
        "period_key": point["period_key"],
        "n": point["n"] if published else None,
        "value": point["metrics"].get(metric) if published else None,
        "ci95": interval,
        "break": point["break"],
        "withheld": not published,
    }
