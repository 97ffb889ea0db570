"""The statistics behind scorecards: 95 % intervals and tests for changes.

Pure functions on summary numbers (counts, means, variances), standard library
only, so the web process needs no scientific stack. Every function answers None
where the quantity is undefined (no data, a single observation, zero spread)
instead of raising: a scorecard shows "–" there.

- proportions: Wilson score interval; two-proportion z-test (pooled);
- means: Student t interval; Welch's t-test with Welch–Satterthwaite df;
- NPS: a normal interval and z-test using the trinomial variance of a score
  that is +1 (promoter), 0 (passive) or -1 (detractor) per respondent.

The Student t distribution is computed here from the regularized incomplete
beta function (evaluated by its continued fraction), so tests can check it
against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

# The 97.5th percentile of the standard normal: a two-sided 95 % interval.
Z_95 = 1.959963984540054
CONFIDENCE = 0.95

_TINY = 1e-300
_EPSILON = 1e-15
_MAX_ITERATIONS = 1000


# -- Distributions ------------------------------------------------------------


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    # The continued fraction converges fast only left of the distribution's
    # bulk; on the right use the symmetry I_x(a, b) = 1 - I_(1-x)(b, a).
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - regularized_incomplete_beta(b, a, 1.0 - x)
    log_prefactor = a * math.log(x) + b * math.log1p(-x) - math.log(a) - log_beta(a, b)
    return math.exp(log_prefactor) * _incomplete_beta_fraction(a, b, x)


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction 1 / (1 + d1 / (1 + d2 / (1 + ...))) of I_x(a, b),
    evaluated with the modified Lentz method (two terms per step: d_2m, d_2m+1)."""

    # Lentz's guard against division by zero (|value| <= _TINY -> _TINY) is
    # written inline: this loop runs for every t-test of a scorecard (B1).
    first = 1.0 - (a + b) * x / (a + 1.0)
    numerator_c = 1.0
    denominator_d = 1.0 / (first if abs(first) > _TINY else _TINY)
    result = denominator_d
    for m in range(1, _MAX_ITERATIONS):
        for coefficient in (
            m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0)),
        ):
            denominator_d = 1.0 + coefficient * denominator_d
            denominator_d = 1.0 / (denominator_d if abs(denominator_d) > _TINY else _TINY)
            numerator_c = 1.0 + coefficient / numerator_c
            if abs(numerator_c) <= _TINY:
                numerator_c = _TINY
            step = numerator_c * denominator_d
            result *= step
        if abs(step - 1.0) < _EPSILON:
            break
    return result


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df > 0 degrees of freedom (df may be fractional)."""
    t2 = t * t
    if t2 < df:
        # Near the centre df / (df + t^2) rounds to 1; the central mass
        # P(|T| < |t|) = I_(t^2 / (df + t^2))(1/2, df/2) keeps the precision.
        half_central = 0.5 * regularized_incomplete_beta(0.5, df / 2.0, t2 / (df + t2))
        return 0.5 + half_central if t > 0 else 0.5 - half_central
    one_tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t2))
    return 1.0 - one_tail if t > 0 else one_tail


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|), computed directly so tiny p-values keep their precision."""
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def student_t_pdf(t: float, df: float) -> float:
    log_density = (
        math.lgamma((df + 1.0) / 2.0)
        - math.lgamma(df / 2.0)
        - 0.5 * math.log(df * math.pi)
        - (df + 1.0) / 2.0 * math.log1p(t * t / df)
    )
    return math.exp(log_density)


@lru_cache(maxsize=1024)
def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, for 0 < p < 1 (Newton's method kept inside a bisection bracket)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    if df <= 0:
        raise ValueError("df must be positive")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, high * 2.0
    guess = (low + high) / 2.0
    for _ in range(200):
        error = student_t_cdf(guess, df) - p
        if abs(error) < 1e-15:
            break
        if error > 0:
            high = guess
        else:
            low = guess
        if high - low <= 1e-13 * high:
            break
        density = student_t_pdf(guess, df)
        newton = guess - error / density if density > 0 else None
        guess = newton if newton is not None and low < newton < high else (low + high) / 2.0
    return guess


# -- Summaries from value-count tables ------------------------------------------


def mean_and_variance(counts: Mapping[float, int]) -> tuple[int, float | None, float | None]:
    """(n, mean, sample variance with n-1) of values given as value -> count.

    The mean is None for n = 0 and the variance None for n < 2."""
    n = sum(counts.values())
    if n == 0:
        return 0, None, None
    mean = sum(value * count for value, count in counts.items()) / n
    if n < 2:
        return n, mean, None
    # Two passes (deviations from the mean) keep precision for large values.
    squares = sum(count * (value - mean) ** 2 for value, count in counts.items())
    return n, mean, squares / (n - 1)


# -- Intervals ----------------------------------------------------------------


def wilson_interval(successes: int, n: int) -> tuple[float, float] | None:
    """95 % Wilson score interval for a proportion, as fractions in [0, 1]."""
    if n <= 0 or not 0 <= successes <= n:
        return None
    share = successes / n
    z2 = Z_95 * Z_95
    shrink = 1.0 + z2 / n
    centre = (share + z2 / (2.0 * n)) / shrink
    half_width = Z_95 / shrink * math.sqrt(share * (1.0 - share) / n + z2 / (4.0 * n * n))
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def mean_interval(mean: float | None, variance: float | None, n: int) -> tuple[float, float] | None:
    """95 % Student t interval for a mean (variance is the n-1 sample variance)."""
    if mean is None or variance is None or n < 2:
        return None
    if variance <= 0.0:
        return mean, mean
    half_width = student_t_quantile(0.5 + CONFIDENCE / 2.0, n - 1) * math.sqrt(variance / n)
    return mean - half_width, mean + half_width


# -- Tests for a change between two rounds --------------------------------------


def two_proportion_p_value(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test.

    None when a sample is empty or the pooled share is 0 % or 100 % (no spread:
    both samples are identical and the statistic is 0/0)."""
    if n_a <= 0 or n_b <= 0:
        return None
    pooled = (successes_a + successes_b) / (n_a + n_b)
    standard_error = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    if standard_error == 0.0:
        return None
    z = (successes_a / n_a - successes_b / n_b) / standard_error
    return normal_two_sided_p(z)


def welch_degrees_of_freedom(variance_a: float, n_a: int, variance_b: float, n_b: int) -> float | None:
    """Welch–Satterthwaite degrees of freedom; None when undefined."""
    if n_a < 2 or n_b < 2:
        return None
    share_a, share_b = variance_a / n_a, variance_b / n_b
    denominator = share_a**2 / (n_a - 1) + share_b**2 / (n_b - 1)
    if denominator == 0.0:
        return None
    return (share_a + share_b) ** 2 / denominator


def welch_p_value(
    mean_a: float | None, variance_a: float | None, n_a: int,
    mean_b: float | None, variance_b: float | None, n_b: int,
) -> float | None:
    """Two-sided p-value of Welch's unequal-variance t-test.

    None when either sample has fewer than two values or both have zero spread."""
    t = welch_t(mean_a, variance_a, n_a, mean_b, variance_b, n_b)
    if t is None:
        return None
    return student_t_two_sided_p(t, welch_degrees_of_freedom(variance_a, n_a, variance_b, n_b))


def welch_t(
    mean_a: float | None, variance_a: float | None, n_a: int,
    mean_b: float | None, variance_b: float | None, n_b: int,
) -> float | None:
    """Welch's t statistic; None where `welch_p_value` has no p-value."""
    if None in (mean_a, variance_a, mean_b, variance_b) or n_a < 2 or n_b < 2:
        return None
    squared_error = variance_a / n_a + variance_b / n_b
    if squared_error <= 0.0:
        return None
    return (mean_a - mean_b) / math.sqrt(squared_error)


# -- Net Promoter Score ---------------------------------------------------------


def nps(promoters: int, detractors: int, n: int) -> float | None:
    """NPS on -100..100: % promoters (9-10) minus % detractors (0-6)."""
    if n <= 0:
        return None
    return 100.0 * (promoters - detractors) / n


def nps_variance(promoters: int, detractors: int, n: int) -> float | None:
    """Sampling variance of the NPS estimate, in points squared.

    Each respondent scores +1, 0 or -1; with shares p and d the score's variance
    is p + d - (p - d)^2, and the estimate's variance is that over n."""
    if n <= 0:
        return None
    p, d = promoters / n, detractors / n
    return 10_000.0 * (p + d - (p - d) ** 2) / n


def nps_interval(promoters: int, detractors: int, n: int) -> tuple[float, float] | None:
    """95 % normal interval for NPS, clipped to -100..100; None for n < 2."""
    if n < 2:
        return None
    score = nps(promoters, detractors, n)
    half_width = Z_95 * math.sqrt(nps_variance(promoters, detractors, n))
    return max(-100.0, score - half_width), min(100.0, score + half_width)


def nps_p_value(
    promoters_a: int, detractors_a: int, n_a: int, promoters_b: int, detractors_b: int, n_b: int
) -> float | None:
    """Two-sided p-value of a z-test for a change of NPS between two independent samples."""
    if n_a <= 0 or n_b <= 0:
        return None
    squared_error = nps_variance(promoters_a, detractors_a, n_a) + nps_variance(promoters_b, detractors_b, n_b)
    if squared_error <= 0.0:
        return None
    z = (nps(promoters_a, detractors_a, n_a) - nps(promoters_b, detractors_b, n_b)) / math.sqrt(squared_error)
    return normal_two_sided_p(z)


# -- Planning: the smallest change a group can show -------------------------------


def normal_quantile(p: float) -> float:
    """The z with P(Z <= z) = p for a standard normal, by bisection on the CDF."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    if p > 0.5:  # 1 - p is exact here, and the lower tail keeps its precision
        return -normal_quantile(1.0 - p)
    low, high = -40.0, 0.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if normal_cdf(middle) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-15:
            break
    return (low + high) / 2.0


def proportion_test_power(p1: float, p2: float, n: int, alpha: float = 0.05) -> float:
    """Power of Canary's pooled two-proportion z-test (two_proportion_p_value)
    between two rounds of `n` answers each when the true shares are `p1` and
    `p2`: the normal approximation, with the pooled standard error the test
    uses under "no change" and the unpooled one of the true shares (the
    calculation of statsmodels' power_proportions_2indep)."""
    difference = abs(p2 - p1)
    pooled = (p1 + p2) / 2.0
    null_se = math.sqrt(2.0 * pooled * (1.0 - pooled) / n)
    true_se = math.sqrt((p1 * (1.0 - p1) + p2 * (1.0 - p2)) / n)
    critical = _two_sided_critical(alpha) * null_se
    if true_se == 0.0:
        return 1.0 if difference > critical else 0.0
    return normal_cdf((difference - critical) / true_se) + normal_cdf((-difference - critical) / true_se)


@lru_cache(maxsize=64)
def _two_sided_critical(alpha: float) -> float:
    return normal_quantile(1.0 - alpha / 2.0)


# Baselines searched for the least favourable one (shares are symmetric about 50 %).
_BASELINES = tuple(i / 100.0 for i in range(1, 51))


def detectable_change_pts(
    respondents: int, baseline: float | None = None, alpha: float = 0.05, power: float = 0.8, min_n: int = 10
) -> float | None:
    """The smallest change of a percentage, in points, that Canary's pooled
    z-test between two rounds of `respondents` each detects with the given
    power, at the least favourable baseline share (or at `baseline`): from
    any starting share, a change this large, up or down, is found at least
    that often. None below `min_n`, where nothing is tested, and None when at
    some baseline no possible change reaches the power (a small group: even
    a move from 50 % to 100 % would often be missed)."""
    if respondents < max(min_n, 1):
        return None
    return _detectable_change(respondents, baseline, alpha, power)


@lru_cache(maxsize=4096)
def _detectable_change(n: int, baseline: float | None, alpha: float, power: float) -> float | None:
    worst = 0.0
    for start in ((baseline,) if baseline is not None else _BASELINES):
        change = _smallest_change_from(start, n, alpha, power)
        if change is None:
            return None
        worst = max(worst, change)
    return 100.0 * worst


def _smallest_change_from(start: float, n: int, alpha: float, power: float) -> float | None:
    """The smallest change from `start`, up or down (whichever is found
    sooner), that reaches `power`; None when neither direction can."""
    best = None
    for direction, room in ((1.0, 1.0 - start), (-1.0, start)):
        if room <= 0.0 or proportion_test_power(start, start + direction * room, n, alpha) < power:
            continue
        low, high = 0.0, room
        for _ in range(30):
            middle = (low + high) / 2.0
            if proportion_test_power(start, start + direction * middle, n, alpha) >= power:
                high = middle
            else:
                low = middle
        best = high if best is None else min(best, high)
    return best
