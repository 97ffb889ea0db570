"""Control charts for one metric of one slice, round after round: pure maths,
no database (`surveys.alerts` feeds it and stores what it finds).

A series is the metric's points in the rounds since its last trend break,
oldest first, with withheld rounds and rounds without answers left out (gaps,
not breaks). Every point carries its own n. Each point from the
`MIN_HISTORY`-th on is standardized against a baseline made of the rounds
before it (at most `BASELINE_ROUNDS` of them), in the way that suits its
measure:

- a share (favourable %, % yes, an option's share): the pooled share of the
  baseline rounds; the standard error follows this round's n and the
  baseline's total N, var = p(1-p)(1/n + 1/N): a p-chart whose limits widen
  for a small round and that allows for the baseline being estimated;
- a mean (1-5 scale, number): the pooled mean, with the pooled within-round
  variance, var = s^2 (1/n + 1/N);
- NPS: the pooled score, with its trinomial variance.

Rounds of a real organisation vary by more than sampling alone (Laney's
p'-chart problem): when the baseline rounds disagree with each other by more
than chance allows (their chi-square of homogeneity beyond its 99th
percentile), the standard error is widened by the observed dispersion.

Two rules run on the standardized residuals z (which are about N(0, 1) while
nothing changes, since each is taken against the rounds before it): a
Shewhart rule, |z| > SHEWHART_Z, for a sudden shift, and an EWMA of z
(lambda = EWMA_LAMBDA, time-varying limits EWMA_L sigma_k) for a slow drift.
Together they are set for an in-control run length of 150-175 rounds per
metric (about 0.6 false alerts per 100 watched metrics per round), measured by
tests/test_alert_simulation.py and documented in docs/alerts.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from surveys import stats

MIN_HISTORY = 4  # rounds of the same measure before a metric can alert
BASELINE_ROUNDS = 12  # the most recent rounds a baseline pools
MIN_POINT_N = 5  # a round with fewer answers is a gap
SHEWHART_Z = 3.0
EWMA_LAMBDA = 0.4
EWMA_L = 2.8
DISPERSION_QUANTILE_Z = 2.326  # the 99th percentile of the normal, for Wilson-Hilferty

SHARE, MEAN, NPS = "share", "mean", "nps"


@dataclass(frozen=True)
class Point:
    """One round's estimate: for a share, a = successes; for a mean, a = mean and
    b = sample variance; for NPS, a = promoters and b = detractors."""

    round_id: int
    n: int
    a: float
    b: float | None = None

    def value(self, kind: str) -> float | None:
        if self.n <= 0:
            return None
        if kind == SHARE:
            return 100.0 * self.a / self.n
        if kind == NPS:
            return stats.nps(int(self.a), int(self.b), self.n)
        return self.a


@dataclass
class Baseline:
    """The pooled estimate of the baseline rounds and the per-answer variance."""

    value: float  # in the metric's units (percent, points, scale units)
    unit_variance: float  # variance of one answer, in the metric's units squared
    total_n: int
    rounds: int
    dispersion: float = 1.0  # >= 1: how much wider than sampling alone the rounds vary

    def standard_error(self, n: int) -> float:
        return math.sqrt(self.dispersion * self.unit_variance * (1.0 / n + 1.0 / self.total_n))


@dataclass
class Step:
    """One evaluated round of a series."""

    round_id: int
    n: int
    value: float
    baseline: float
    standard_error: float
    z: float
    ewma: float
    ewma_sigma: float
    limits: tuple[float, float]  # the values of this round that would not alert
    signal: str | None  # "shewhart", "ewma" or None
    direction: str | None  # "down" or "up"
    score: float  # the largest of |z| / SHEWHART_Z and |ewma| / (EWMA_L sigma)
    dispersion: float = 1.0


@dataclass
class Evaluation:
    kind: str
    points: list[Point]
    steps: list[Step] = field(default_factory=list)

    @property
    def last(self) -> Step | None:
        if not self.steps or not self.points or self.steps[-1].round_id != self.points[-1].round_id:
            return None
        return self.steps[-1]


def baseline_of(kind: str, points: list[Point]) -> Baseline | None:
    """The pooled baseline of `points` (all with n > 0), or None when it has none."""
    total = sum(p.n for p in points)
    if total <= 0:
        return None
    if kind == SHARE:
        successes = sum(p.a for p in points)
        # A continuity-corrected share keeps the variance positive when the
        # baseline was unanimous (0 % or 100 %).
        shrunk = (successes + 0.5) / (total + 1.0)
        base = Baseline(100.0 * successes / total, 10_000.0 * shrunk * (1.0 - shrunk), total, len(points))
    elif kind == NPS:
        promoters = sum(p.a for p in points)
        detractors = sum(p.b for p in points)
        shrunk_p, shrunk_d = (promoters + 0.5) / (total + 1.5), (detractors + 0.5) / (total + 1.5)
        variance = 10_000.0 * (shrunk_p + shrunk_d - (shrunk_p - shrunk_d) ** 2)
        base = Baseline(100.0 * (promoters - detractors) / total, variance, total, len(points))
    else:
        mean = sum(p.n * p.a for p in points) / total
        # Pooled within-round variance (rounds of one answer add nothing to it).
        dof = sum(p.n - 1 for p in points if p.b is not None)
        squares = sum((p.n - 1) * p.b for p in points if p.b is not None)
        if dof <= 0 or squares <= 0.0:
            return None
        base = Baseline(mean, squares / dof, total, len(points))
    base.dispersion = dispersion(kind, points, base)
    return base


def dispersion(kind: str, points: list[Point], base: Baseline) -> float:
    """The over-dispersion factor of the baseline rounds: their chi-square of
    homogeneity over its degrees of freedom when that chi-square is beyond its
    99th percentile (the rounds disagree more than sampling explains), else 1."""
    dof = len(points) - 1
    if dof < 2:
        return 1.0
    chi_square = sum((p.value(kind) - base.value) ** 2 / (base.unit_variance / p.n) for p in points)
    if chi_square <= chi_square_quantile_99(dof):
        return 1.0
    return chi_square / dof


def chi_square_quantile_99(dof: int) -> float:
    """The 99th percentile of chi-square with `dof` degrees of freedom (Wilson-Hilferty)."""
    ratio = 2.0 / (9.0 * dof)
    return dof * (1.0 - ratio + DISPERSION_QUANTILE_Z * math.sqrt(ratio)) ** 3


def ewma_sigma(steps: int, lam: float | None = None) -> float:
    """The standard deviation of the EWMA of unit-variance residuals after `steps` updates."""
    lam = EWMA_LAMBDA if lam is None else lam
    return math.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** (2 * steps)))


def evaluate(kind: str, points: list[Point]) -> Evaluation:
    """Run both rules over a series (oldest first, one measure, no gaps with n < MIN_POINT_N)."""
    points = [p for p in points if p.n >= MIN_POINT_N]
    evaluation = Evaluation(kind, points)
    ewma = 0.0
    for index in range(MIN_HISTORY, len(points)):
        point = points[index]
        base = baseline_of(kind, points[max(0, index - BASELINE_ROUNDS):index])
        if base is None:
            continue
        error = base.standard_error(point.n)
        if error <= 0.0:
            continue
        value = point.value(kind)
        z = (value - base.value) / error
        previous = ewma
        ewma = EWMA_LAMBDA * z + (1.0 - EWMA_LAMBDA) * previous
        sigma = ewma_sigma(len(evaluation.steps) + 1)
        shewhart_score = abs(z) / SHEWHART_Z
        ewma_score = abs(ewma) / (EWMA_L * sigma)
        signal = direction = None
        if shewhart_score > 1.0:
            signal, direction = "shewhart", "down" if z < 0 else "up"
        elif ewma_score > 1.0:
            signal, direction = "ewma", "down" if ewma < 0 else "up"
        # The z of this round that keeps both rules quiet, in the metric's units.
        ewma_low = (-EWMA_L * sigma - (1.0 - EWMA_LAMBDA) * previous) / EWMA_LAMBDA
        ewma_high = (EWMA_L * sigma - (1.0 - EWMA_LAMBDA) * previous) / EWMA_LAMBDA
        z_low, z_high = max(-SHEWHART_Z, ewma_low), min(SHEWHART_Z, ewma_high)
        if z_low > z_high:  # the EWMA is so far out that every value of this round signals
            z_low = z_high = (z_low + z_high) / 2.0
        limits = (base.value + z_low * error, base.value + z_high * error)
        evaluation.steps.append(Step(
            point.round_id, point.n, value, base.value, error, z, ewma, sigma, _clip(kind, limits), signal,
            direction, max(shewhart_score, ewma_score), base.dispersion,
        ))
    return evaluation


def _clip(kind, limits):
    """The limits within the measure's range, in order (a band wholly outside
    the range shrinks to the nearest end: every possible value signals)."""
    low, high = limits
    bounds = {SHARE: (0.0, 100.0), NPS: (-100.0, 100.0)}.get(kind)
    if bounds is None:
        return low, high
    floor, ceiling = bounds
    return min(max(low, floor), ceiling), max(min(high, ceiling), floor)
