"""Scorecard metrics per question type, from SQL value-count tables.

The database answers "how many answers had each value" (a GROUP BY) and "how
many respondents answered" (COUNT DISTINCT); everything here turns those small
tables into the metrics of docs/api.md and the estimates the statistics need.
No database access and no rows: pure functions, cheap to test.

Shapes:
- `ValueCounts`: a list of (value_num, value_text, count) for one question key;
- a `QuestionResult` has the public, rounded `metrics`, the unrounded `raw`
  scalars (deltas are taken between raw values, then rounded), and `estimates`
  (what a confidence interval or a test needs, per metric name).

Percentages are 0-100 with one decimal; NPS is -100..100 with one decimal;
means, sums and medians keep two decimals.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from surveys import stats

ValueCounts = list[tuple[float | None, str | None, int]]

DEFAULT_SCALE_MAX = 5
PROMOTER_MIN = 9
DETRACTOR_MAX = 6
NPS_VALUES = range(0, 11)
YES = 1
OTHER_OPTION_KEY = "other"
# Changes are tested only when both rounds have at least this many answers.
MIN_N_FOR_TESTING = 10

PERCENT_DIGITS = 1
VALUE_DIGITS = 2
METRIC_DIGITS = {
    "mean": VALUE_DIGITS, "sum": VALUE_DIGITS, "median": VALUE_DIGITS, "count": 0, "nps": PERCENT_DIGITS,
}


def digits_for(metric: str) -> int:
    return METRIC_DIGITS.get(metric, PERCENT_DIGITS)


def rounded(value, digits):
    if value is None:
        return None
    result = round(value, digits)
    return int(result) if digits == 0 else result + 0.0  # + 0.0 turns -0.0 into 0.0


# -- What a question measures -------------------------------------------------------


@dataclass(frozen=True)
class QuestionSpec:
    """The parts of a question a scorecard needs; `measure` decides comparability."""

    key: str
    type: str
    prompt: str
    scale_max: int | None = None
    favorable_min: int | None = None
    option_keys: tuple[str, ...] = ()
    # A number question's unit is part of what it measures; its bounds keep
    # intervals inside the values an answer can take.
    unit: str | None = None
    low: float | None = None
    high: float | None = None

    @classmethod
    def from_question(cls, question) -> QuestionSpec:
        scale_max = favorable_min = None
        option_keys: tuple[str, ...] = ()
        unit = low = high = None
        if question.type == "scale":
            scale_max = int(question.setting("scale_max") or DEFAULT_SCALE_MAX)
            # Default: the top two boxes are favourable.
            favorable_min = int(question.setting("favorable_min") or scale_max - 1)
        elif question.type in ("single_choice", "multi_choice"):
            option_keys = tuple(option["key"] for option in question.options)
            if question.setting("allow_other") and OTHER_OPTION_KEY not in option_keys:
                option_keys += (OTHER_OPTION_KEY,)
        elif question.type == "number":
            unit = (question.setting("unit") or "").strip() or None
            low, high = question.setting("min"), question.setting("max")
            low = float(low) if low is not None else None
            high = float(high) if high is not None else None
        return cls(question.key, question.type, question.prompt, scale_max, favorable_min, option_keys, unit, low, high)

    @property
    def has_comments(self) -> bool:
        """Whether reps write free text here: a text question, or a
        multi-choice question with an "Other" option (its text, stored in
        `Answer.detail`, is a comment like any other)."""
        return self.type == "text" or (self.type == "multi_choice" and OTHER_OPTION_KEY in self.option_keys)

    @property
    def measure(self) -> tuple:
        """Changing any of these breaks the trend: no delta across the break.
        Option order is presentation, not measure, so keys compare as a set;
        a number's unit is part of it (deals are not dollars)."""
        return (self.type, self.scale_max, self.favorable_min, frozenset(self.option_keys), self.unit)


# -- Estimates: what intervals and tests need -----------------------------------------


class _Estimate:
    def rejects_no_change(self, other, alpha: float) -> bool | None:
        """Whether the test of "no change since `other`" is rejected at
        `alpha`; None when the test has no p-value."""
        p_value = self.p_value_against(other)
        return None if p_value is None else p_value < alpha


@functools.cache
def _normal_critical_value(alpha: float) -> float:
    return stats.normal_quantile(1.0 - alpha / 2.0)


@dataclass(frozen=True)
class Proportion(_Estimate):
    successes: int
    n: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.successes / self.n if self.n else None

    def ci95(self):
        interval = stats.wilson_interval(self.successes, self.n)
        return None if interval is None else [100.0 * interval[0], 100.0 * interval[1]]

    def p_value_against(self, other: Proportion):
        return stats.two_proportion_p_value(self.successes, self.n, other.successes, other.n)


@dataclass(frozen=True)
class SampleMean(_Estimate):
    n: int
    mean: float | None
    variance: float | None
    low: float | None = None  # the smallest and largest value an answer can take
    high: float | None = None

    def ci95(self):
        """The t interval, kept inside the values an answer can take; None
        when every answer agrees (the card says "all n answers were x")."""
        interval = stats.mean_interval(self.mean, self.variance, self.n)
        if interval is None or interval[0] == interval[1]:
            return None
        return _clipped(interval, self.low, self.high)

    def p_value_against(self, other: SampleMean):
        return stats.welch_p_value(self.mean, self.variance, self.n, other.mean, other.variance, other.n)

    def rejects_no_change(self, other: SampleMean, alpha: float) -> bool | None:
        # Student's t has heavier tails than the normal at every df, so a |t|
        # at or under the normal's critical value is never significant: most
        # comparisons of a scorecard are decided without the t distribution.
        t = stats.welch_t(self.mean, self.variance, self.n, other.mean, other.variance, other.n)
        if t is not None and abs(t) <= _normal_critical_value(alpha):
            return False
        return super().rejects_no_change(other, alpha)


@dataclass(frozen=True)
class NetPromoter(_Estimate):
    promoters: int
    detractors: int
    n: int

    def ci95(self):
        interval = stats.nps_interval(self.promoters, self.detractors, self.n)
        if interval is None or interval[0] == interval[1]:
            return None
        return _clipped(interval, -100.0, 100.0)

    def p_value_against(self, other: NetPromoter):
        return stats.nps_p_value(self.promoters, self.detractors, self.n, other.promoters, other.detractors, other.n)


def _clipped(interval, low, high) -> list:
    lower, upper = interval
    if low is not None:
        lower, upper = max(lower, low), max(upper, low)
    if high is not None:
        lower, upper = min(lower, high), min(upper, high)
    return [lower, upper]


@dataclass
class QuestionResult:
    n: int
    metrics: dict
    raw: dict = field(default_factory=dict)
    estimates: dict = field(default_factory=dict)
    # The one value every answer had, when they all agree (scale, NPS, number, yes/no).
    unanimous: object = None


# -- Value-count helpers -------------------------------------------------------------


def numeric_counts(rows: Iterable) -> dict[float, int]:
    counts: dict[float, int] = {}
    for value_num, _text, count in rows:
        if value_num is not None:
            counts[float(value_num)] = counts.get(float(value_num), 0) + count
    return counts


def text_counts(rows: Iterable) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _num, value_text, count in rows:
        if value_text is not None:
            counts[value_text] = counts.get(value_text, 0) + count
    return counts


def median_of_counts(counts: dict[float, int]) -> float | None:
    """The median of values given as value -> count (mean of the middle two for even n)."""
    n = sum(counts.values())
    if n == 0:
        return None
    # 0-based positions of the middle value(s) in the sorted list.
    lower_position, upper_position = (n - 1) // 2, n // 2
    lower = upper = None
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if lower is None and seen > lower_position:
            lower = value
        if seen > upper_position:
            upper = value
            break
    return (lower + upper) / 2.0


# -- Metrics per type ---------------------------------------------------------------------


def summarize(spec: QuestionSpec, rows: ValueCounts, respondents: int) -> QuestionResult:
    """Metrics for one question from its value counts and respondent count."""
    builder = _BUILDERS[spec.type]
    raw, extra, estimates = builder(spec, rows, respondents)
    metrics = {name: _round_metric(name, value) for name, value in raw.items()}
    metrics.update(extra)
    unanimous = None
    if spec.type in ("scale", "nps", "number", "yes_no"):
        values = numeric_counts(rows)
        if len(values) == 1:
            (value,) = values
            unanimous = ("yes" if value == YES else "no") if spec.type == "yes_no" else (
                int(value) if value.is_integer() else value)
    return QuestionResult(n=respondents, metrics=metrics, raw=raw, estimates=estimates, unanimous=unanimous)


def _round_metric(name, value):
    if isinstance(value, dict):
        return {key: rounded(item, digits_for(name)) for key, item in value.items()}
    return rounded(value, digits_for(name))


def _distribution(counts: dict[float, int], values: Iterable[int]) -> dict[str, int]:
    """value -> count for every point of the scale (zeros kept, for the bars)."""
    return {str(value): counts.get(float(value), 0) for value in values}


def _scale(spec, rows, respondents):
    counts = numeric_counts(rows)
    n, mean, variance = stats.mean_and_variance(counts)
    favorable = Proportion(sum(c for v, c in counts.items() if v >= spec.favorable_min), n)
    raw = {"mean": mean, "favorable_pct": favorable.percent}
    extra = {"distribution": _distribution(counts, range(1, spec.scale_max + 1))}
    return raw, extra, {"mean": SampleMean(n, mean, variance, 1.0, float(spec.scale_max)), "favorable_pct": favorable}


def _nps(spec, rows, respondents):
    counts = numeric_counts(rows)
    n = sum(counts.values())
    promoters = sum(c for v, c in counts.items() if v >= PROMOTER_MIN)
    detractors = sum(c for v, c in counts.items() if v <= DETRACTOR_MAX)
    passives = n - promoters - detractors
    shares = {
        "promoters_pct": Proportion(promoters, n),
        "passives_pct": Proportion(passives, n),
        "detractors_pct": Proportion(detractors, n),
    }
    raw = {"nps": stats.nps(promoters, detractors, n)}
    raw.update({name: share.percent for name, share in shares.items()})
    extra = {"distribution": _distribution(counts, NPS_VALUES)}
    return raw, extra, {"nps": NetPromoter(promoters, detractors, n), **shares}


def _choice(spec, rows, respondents):
    # Percent of respondents, so multi-choice shares can sum past 100 %.
    counts = text_counts(rows)
    options = {key: Proportion(counts.get(key, 0), respondents) for key in spec.option_keys}
    raw = {"option_pct": {key: share.percent for key, share in options.items()}}
    return raw, {}, {"option_pct": options}


def _number(spec, rows, respondents):
    counts = numeric_counts(rows)
    n, mean, variance = stats.mean_and_variance(counts)
    total = sum(value * count for value, count in counts.items()) if n else None
    raw = {"sum": total, "mean": mean, "median": median_of_counts(counts)}
    return raw, {}, {"mean": SampleMean(n, mean, variance, spec.low, spec.high)}


def _yes_no(spec, rows, respondents):
    counts = numeric_counts(rows)
    yes = Proportion(counts.get(float(YES), 0), sum(counts.values()))
    return {"yes_pct": yes.percent}, {}, {"yes_pct": yes}


def _text(spec, rows, respondents):
    return {"count": respondents}, {}, {}


_BUILDERS = {
    "scale": _scale,
    "nps": _nps,
    "single_choice": _choice,
    "multi_choice": _choice,
    "number": _number,
    "yes_no": _yes_no,
    "text": _text,
}


# -- Comparison with a previous round ------------------------------------------------


def deltas(current: QuestionResult, previous: QuestionResult) -> dict:
    """Current minus previous for every scalar metric (and each option share)."""
    result = {}
    for name, value in current.raw.items():
        before = previous.raw.get(name)
        if isinstance(value, dict):
            result[name] = {
                key: _difference(value.get(key), (before or {}).get(key), digits_for(name)) for key in value
            }
        else:
            result[name] = _difference(value, before, digits_for(name))
    return result


def _difference(now, before, digits):
    if now is None or before is None:
        return None
    return rounded(now - before, digits)


def intervals(result: QuestionResult) -> dict:
    """ci95 per metric: [low, high] (or None where undefined), rounded like the metric."""
    out = {}
    for name, estimate in result.estimates.items():
        if isinstance(estimate, dict):
            out[name] = {key: _rounded_interval(item.ci95(), name) for key, item in estimate.items()}
        else:
            out[name] = _rounded_interval(estimate.ci95(), name)
    return out


def _rounded_interval(interval, name):
    if interval is None:
        return None
    return [rounded(bound, digits_for(name)) for bound in interval]


def significance(current: QuestionResult, previous: QuestionResult, alpha: float = 0.05) -> dict:
    """Per tested metric: True/False, or None when either round has n below
    MIN_N_FOR_TESTING. A test with no spread in either round (everyone gave the
    same answer both times) has no p-value; then any change is certain."""
    testable = current.n >= MIN_N_FOR_TESTING and previous.n >= MIN_N_FOR_TESTING
    out = {}
    for name, estimate in current.estimates.items():
        before = previous.estimates.get(name)
        if isinstance(estimate, dict):
            out[name] = {
                key: _is_significant(item, (before or {}).get(key), testable, alpha) for key, item in estimate.items()
            }
        else:
            out[name] = _is_significant(estimate, before, testable, alpha)
    return out


def _is_significant(estimate, before, testable, alpha):
    if not testable or before is None or estimate.n < MIN_N_FOR_TESTING or before.n < MIN_N_FOR_TESTING:
        return None
    rejected = estimate.rejects_no_change(before, alpha)
    if rejected is None:
        return _point_value(estimate) != _point_value(before)
    return rejected


def _point_value(estimate):
    if isinstance(estimate, Proportion):
        return estimate.percent
    if isinstance(estimate, NetPromoter):
        return stats.nps(estimate.promoters, estimate.detractors, estimate.n)
    return estimate.mean
