"""The two numbers a leader cares about, measured by seeded simulation of the
very charts Canary runs (surveys.control_charts):

- false alerts per 100 watched metrics per round when nothing changed
  (target: at most 1);
- how often a real shift is caught within two rounds.

The issue's example target, a 10-point drop in favourable % at n = 50 caught
within two rounds 80 % of the time, is only reachable where the baseline share
is high: at 1 % false alarms a round, no rule can tell a 10-point drop from
noise that often when each round's standard error is 6-7 points (baselines of
50-80 %). The last test shows that bound with an oracle that knows the true
baseline and uses the best possible two-round test, so the gap is the maths,
not the chart. docs/alerts.md has the full curve."""

import numpy as np
from scipy import stats as sps

from surveys import control_charts as charts

ROUNDS = 24


def false_alert_rate(kind, rng, series=600, n=50):
    alerts = watched = 0
    for _ in range(series):
        if kind == charts.SHARE:
            p = rng.uniform(0.2, 0.9)
            sizes = rng.integers(max(5, n // 2), 2 * n, size=ROUNDS)  # n changes round to round
            points = [charts.Point(i, int(m), int(rng.binomial(m, p))) for i, m in enumerate(sizes)]
        else:
            probs = rng.dirichlet(np.ones(5) * 3)
            points = []
            for i in range(ROUNDS):
                answers = rng.choice(np.arange(1, 6), size=n, p=probs)
                points.append(charts.Point(i, n, float(answers.mean()), float(answers.var(ddof=1))))
        steps = charts.evaluate(kind, points).steps
        alerts += sum(step.signal is not None for step in steps)
        watched += len(steps)
    return 100.0 * alerts / watched


def detection_rate(p0, p1, rng, n=50, history=12, trials=1500):
    caught = 0
    for _ in range(trials):
        counts = list(rng.binomial(n, p0, history)) + list(rng.binomial(n, p1, 2))
        steps = charts.evaluate(charts.SHARE, [charts.Point(i, n, int(x)) for i, x in enumerate(counts)]).steps
        caught += any(step.signal for step in steps if step.round_id >= history)
    return caught / trials


def test_false_alerts_per_100_metrics_per_round_stay_under_one():
    rng = np.random.default_rng(16)
    shares = false_alert_rate(charts.SHARE, rng)
    means = false_alert_rate(charts.MEAN, rng)
    print(f"false alerts per 100 metrics per round: shares {shares:.2f}, means {means:.2f}")
    assert shares <= 1.0
    assert means <= 1.0


def test_a_ten_point_drop_at_n50_is_caught_within_two_rounds():
    rng = np.random.default_rng(1016)
    high = detection_rate(0.95, 0.85, rng)
    mid = detection_rate(0.70, 0.60, rng)
    print(f"10-point drop at n=50 caught within two rounds: from 95 %: {high:.2f}, from 70 %: {mid:.2f}")
    assert high >= 0.80
    # From 70 % the chart gets most of what is possible (see the bound below).
    assert mid >= 0.20


def test_the_best_possible_two_round_test_cannot_reach_80_percent_from_70_percent():
    """An oracle knowing the true 70 % baseline, spending the same 1 % false
    alarm rate on each of the two rounds, one-sided even: its detection
    probability is the ceiling for any chart."""
    n, p0, p1 = 50, 0.70, 0.60
    se0 = np.sqrt(p0 * (1 - p0) / n)
    se1 = np.sqrt(p1 * (1 - p1) / n)
    critical = sps.norm.ppf(0.99)
    shift = (p0 - p1)
    first = sps.norm.sf((critical * se0 - shift) / se1)
    both = sps.norm.sf((critical * se0 * np.sqrt(2) - 2 * shift) / (se1 * np.sqrt(2)))
    ceiling = 1 - (1 - first) * (1 - both)  # optimistic: treats the two looks as independent
    assert ceiling < 0.8


def test_a_drop_of_0_3_in_a_five_point_mean_is_measured():
    rng = np.random.default_rng(303)
    probs = np.array([0.05, 0.15, 0.3, 0.3, 0.2])  # mean 3.45
    shifted = np.array([0.1, 0.2, 0.3, 0.25, 0.15])  # mean 3.15: 0.3 lower
    caught = 0
    trials = 800
    for _ in range(trials):
        points = []
        for i in range(14):
            answers = rng.choice(np.arange(1, 6), size=50, p=probs if i < 12 else shifted)
            points.append(charts.Point(i, 50, float(answers.mean()), float(answers.var(ddof=1))))
        caught += any(s.signal for s in charts.evaluate(charts.MEAN, points).steps if s.round_id >= 12)
    rate = caught / trials
    print(f"0.3 drop in a 1-5 mean at n=50 caught within two rounds: {rate:.2f}")
    assert 0.3 <= rate <= 1.0
