"""Long-run change: each quantitative question's headline metric over the last
6 and 12 rounds, tested as honestly as a change since the previous round, and
its trend slope.

- A window of N rounds compares this round with the first round of the
  window (N - 1 rounds before it), with the test the card uses for that
  metric (pooled two-proportion z for shares, Welch's t for means, the
  trinomial z for NPS: `surveys.metrics`), only when both ends are published
  and have at least MIN_N_FOR_TESTING answers, and never across a break: a
  window the measure changed in is reported as such and not tested.
- The slope is a weighted least-squares line of the per-round value on the
  round's position, over the unbroken end of the 12-round window (from the
  last break on), through the published rounds with enough answers to test.
  Each round weighs its number of answers and the residual scale is
  estimated, so the interval and the t-test (n - 2 degrees of freedom) also
  carry how much rounds differ beyond sampling; inverse-variance weights
  would give a round where everyone agreed an infinite weight.

Only numbers already published are used: a withheld trend point (a small
group, a round held until close) is never an end or a point of the line.
"""

from __future__ import annotations

import math

from surveys import metrics, stats
from surveys.scorecard.cube import load_aggregates
from surveys.scorecard.groups import OVERALL
from surveys.scorecard.history import question_specs
from surveys.scorecard.stored import stored_aggregates
from surveys.scorecard.trends import TREND_ROUNDS, trend_rounds, trends

WINDOWS = (6, 12)
# The one number each quantitative question is summed up by (as in the card's
# tables, sparklines and heatmap: surveys.scorecard_text.HEADLINE_METRIC).
LONG_RUN_METRIC = {"scale": "mean", "nps": "nps", "yes_no": "yes_pct", "number": "mean"}
MIN_POINTS_FOR_SLOPE = 3
ALPHA = 0.05

# Why a window or slope was not tested.
TESTED = "tested"
NOT_ENOUGH_ROUNDS = "not_enough_rounds"
MEASURE_CHANGED = "measure_changed"
WITHHELD = "withheld"
TOO_FEW_ANSWERS = "too_few_answers"


def quantitative_specs(round_) -> list:
    """The round's questions that have a long-run metric, in their order."""
    return [spec for spec in question_specs(round_.version) if spec.type in LONG_RUN_METRIC]


def long_run_changes(round_, series: dict | None = None, card: dict | None = None, results=None) -> dict:
    """{question key: {"key", "type", "metric", "windows": [change over 6, over
    12], "slope"}} for the round's quantitative questions. `series` is what
    `trends(..., until=round_)` gave for them (the page already holds it);
    `card` the round's card, whose numbers are the round's own points;
    `results` what `published_results` gave, when the caller has them."""
    specs = {spec.key: spec for spec in quantitative_specs(round_)}
    if series is None:
        series = trends(round_.cadence, TREND_ROUNDS, until=round_, keys=list(specs), until_card=card)
    if results is None:
        results = published_results(round_, series)
    return {key: _question_long_run(spec, series.get(key) or [], results) for key, spec in specs.items()}


def published_results(round_, series, known_sums: dict | None = None) -> dict:
    """{(round id, key): QuestionResult} for every published trend point.

    Trend points keep rounded metrics and n, not what a test needs (a mean's
    variance, a share's count); the round's raw sums do. Finalized rounds keep
    them in their snapshot (read once per process); the other rounds are read
    in one GROUP BY at the round grain. A result is computed only where its
    point is published, so nothing withheld enters a test. `known_sums` are
    sums the caller already read ({(round id, None): RoundAggregates}: a live
    card's own)."""
    keys = {spec.key for spec in quantitative_specs(round_)}
    wanted = {(point["round_id"], key) for key, points in series.items() if key in keys for point in points
              if point["metrics"] is not None}
    round_ids = {round_id for round_id, _key in wanted}
    if not round_ids:
        return {}
    rounds = [r for r in trend_rounds(round_.cadence, TREND_ROUNDS, until=round_) if r.id in round_ids]
    aggregates, live = dict(known_sums or {}), []
    for other in rounds:
        if (other.id, None) in aggregates:
            continue
        stored = stored_aggregates(other, (None,))
        if stored is None:
            live.append(other)
        else:
            aggregates.update(stored)
    if live:
        aggregates.update(load_aggregates(live, (None,)))
    # Each round is read under its own question (its measure may differ
    # before a break; its tile still shows its interval).
    specs = {(r.id, spec.key): spec for r in rounds for spec in question_specs(r.version)}
    return {(round_id, key): aggregates[(round_id, None)].result(OVERALL, specs[(round_id, key)])
            for round_id, key in wanted if specs.get((round_id, key)) is not None
            and specs[(round_id, key)].type in LONG_RUN_METRIC}


def _question_long_run(spec, points, results) -> dict:
    metric = LONG_RUN_METRIC[spec.type]
    return {
        "key": spec.key,
        "type": spec.type,
        "metric": metric,
        "windows": [_window_change(window, points, results, spec.key, metric) for window in WINDOWS],
        "slope": _slope(points, results, spec.key, metric),
    }


def _round_ref(point) -> dict:
    return {"id": point["round_id"], "period_key": point["period_key"]}


def _window_change(window, points, results, key, metric) -> dict:
    """This round against the first round of the last `window` rounds."""
    change = {"rounds": window, "status": TESTED, "from_round": None, "to_round": None, "from": None, "to": None,
              "delta": None, "p_value": None, "significant": None, "break_period": None}
    if len(points) < window:
        change["status"] = NOT_ENOUGH_ROUNDS
        return change
    first, last = points[-window], points[-1]
    change.update(from_round=_round_ref(first), to_round=_round_ref(last))
    broken = [point for point in points[-window + 1:] if point["break"]]
    if broken:
        change.update(status=MEASURE_CHANGED, break_period=broken[-1]["period_key"])
        return change
    before, after = results.get((first["round_id"], key)), results.get((last["round_id"], key))
    if before is None or after is None:
        change["status"] = WITHHELD
        return change
    digits = metrics.digits_for(metric)
    change["from"] = metrics.rounded(before.raw.get(metric), digits)
    change["to"] = metrics.rounded(after.raw.get(metric), digits)
    change["delta"] = metrics.deltas(after, before).get(metric)
    significant = metrics.significance(after, before, ALPHA).get(metric)
    if significant is None:
        change["status"] = TOO_FEW_ANSWERS
        return change
    p_value = after.estimates[metric].p_value_against(before.estimates[metric])
    change.update(significant=significant, p_value=p_value)
    return change


def _slope(points, results, key, metric) -> dict:
    """Weighted least squares of the value on the round's position in the
    window, from the last break on (positions keep their gaps: a withheld
    round is a missing point, not a shorter step)."""
    start = max((index for index, point in enumerate(points) if point["break"]), default=0)
    used = []
    for index in range(start, len(points)):
        result = results.get((points[index]["round_id"], key))
        value = result.raw.get(metric) if result is not None else None
        if value is not None and result.n >= metrics.MIN_N_FOR_TESTING:
            used.append((index, value, result.n))
    slope = {"status": TESTED, "rounds": len(points) - start, "points": len(used),
             "from_round": _round_ref(points[start]) if points else None,
             "to_round": _round_ref(points[-1]) if points else None,
             "per_round": None, "ci95": None, "p_value": None, "significant": None}
    if len(points) - start < MIN_POINTS_FOR_SLOPE:
        slope["status"] = MEASURE_CHANGED if start else NOT_ENOUGH_ROUNDS
        return slope
    if len(used) < MIN_POINTS_FOR_SLOPE:
        slope["status"] = TOO_FEW_ANSWERS
        return slope
    fit = weighted_line(used)
    digits = metrics.digits_for(metric) + 1  # a slope is a small number: one digit more than the metric
    slope.update(
        per_round=metrics.rounded(fit["slope"], digits),
        ci95=[metrics.rounded(bound, digits) for bound in fit["ci95"]],
        p_value=fit["p_value"],
        significant=fit["significant"],
    )
    return slope


def weighted_line(points) -> dict:
    """The WLS line through (x, y, weight) points: its slope, the slope's
    95 % t interval, two-sided p-value (n - 2 degrees of freedom) and whether
    it is significant at 5 %. A perfect fit has no p-value; its slope is then
    significant whenever it is not zero (as a test with no spread is)."""
    total = sum(w for _x, _y, w in points)
    mean_x = sum(w * x for x, _y, w in points) / total
    mean_y = sum(w * y for _x, y, w in points) / total
    spread_x = sum(w * (x - mean_x) ** 2 for x, _y, w in points)
    slope = sum(w * (x - mean_x) * (y - mean_y) for x, y, w in points) / spread_x
    intercept = mean_y - slope * mean_x
    degrees = len(points) - 2
    residual = sum(w * (y - intercept - slope * x) ** 2 for x, y, w in points) / degrees
    error = math.sqrt(residual / spread_x)
    if error == 0.0:
        return {"slope": slope, "ci95": [slope, slope], "p_value": None, "significant": slope != 0.0}
    half_width = stats.student_t_quantile(1.0 - ALPHA / 2.0, degrees) * error
    p_value = stats.student_t_two_sided_p(slope / error, degrees)
    return {"slope": slope, "ci95": [slope - half_width, slope + half_width], "p_value": p_value,
            "significant": p_value < ALPHA}
