"""Watching: every published metric of every slice, after each round close,
against its own history; never across a trend break, never for a withheld
slice, only with enough history. Statistics checked against scipy."""

import math

import numpy as np
import pytest
from scipy import signal, stats as sps
from sqlalchemy import select

from surveys import control_charts as charts
from surveys.alert_models import Alert, AlertPoints
from surveys.alerts import series_for
from surveys.extensions import db
from surveys.scorecard.assembly import build_scorecard
from tests.builders.alerts import CHOICE, SCALE, build_rounds, watch_all


def _favourable(count_fav, count_unfav):
    return [({"confidence": 5}, count_fav), ({"confidence": 2}, count_unfav)]


def _plan(rows):
    """rows: per round, {region: (favourable, unfavourable)}."""
    return [[(region, answers, count) for region, (fav, unfav) in regions.items()
             for answers, count in _favourable(fav, unfav)] for regions in rows]


# -- The charts against an independent computation --------------------------------------------


def test_share_chart_matches_scipy_with_changing_n_and_an_empty_round():
    # Successes and n per round; the round with n = 0 is a gap, not a point.
    counts = [(30, 50), (20, 35), (0, 0), (41, 70), (26, 44), (33, 60), (12, 40)]
    points = [charts.Point(i, n, x) for i, (x, n) in enumerate(counts)]
    evaluation = charts.evaluate(charts.SHARE, points)
    kept = [(x, n) for x, n in counts if n >= charts.MIN_POINT_N]
    zs = []
    for index in range(charts.MIN_HISTORY, len(kept)):
        base = kept[max(0, index - charts.BASELINE_ROUNDS):index]
        successes, total = sum(x for x, _ in base), sum(n for _, n in base)
        shrunk = (successes + 0.5) / (total + 1)
        x, n = kept[index]
        se = 100 * math.sqrt(shrunk * (1 - shrunk) * (1 / n + 1 / total))
        zs.append((100 * x / n - 100 * successes / total) / se)
        # The homogeneity of the baseline rounds: scipy's chi-square test agrees it is not over-dispersed.
        table = np.array([[x_, n_ - x_] for x_, n_ in base])
        assert sps.chi2_contingency(table, correction=False)[1] > 0.01
    steps = evaluation.steps
    assert [s.round_id for s in steps] == [5, 6]  # the fifth and sixth kept rounds
    assert [s.z for s in steps] == pytest.approx(zs, rel=1e-12)
    # The EWMA is scipy's first-order filter of the residuals; its sigma the closed form.
    ewma = signal.lfilter([charts.EWMA_LAMBDA], [1, -(1 - charts.EWMA_LAMBDA)], zs)
    assert [s.ewma for s in steps] == pytest.approx(list(ewma), rel=1e-12)
    lam = charts.EWMA_LAMBDA
    simulated = signal.lfilter([lam], [1, -(1 - lam)], np.random.default_rng(7).standard_normal((200_000, 3)), axis=1)
    assert charts.ewma_sigma(3) == pytest.approx(simulated[:, 2].std(), rel=0.01)
    # The last round (12 of 40, against about 60 %) is out beyond the Shewhart limit.
    last = steps[-1]
    assert last.signal == "shewhart" and last.direction == "down"
    assert last.z < -charts.SHEWHART_Z and sps.norm.cdf(last.z) < sps.norm.cdf(-charts.SHEWHART_Z)
    # The limits are the values where either rule would start to speak.
    assert not (last.limits[0] <= last.value <= last.limits[1])


def test_mean_and_nps_charts_match_an_independent_computation():
    rng = np.random.default_rng(3)
    samples = [rng.integers(1, 6, size=n) for n in (40, 25, 60, 33, 47, 52)]
    points = [charts.Point(i, len(s), float(s.mean()), float(s.var(ddof=1))) for i, s in enumerate(samples)]
    evaluation = charts.evaluate(charts.MEAN, points)
    for step in evaluation.steps:
        index = step.round_id
        base = np.concatenate(samples[:index])
        within = sum((len(s) - 1) * s.var(ddof=1) for s in samples[:index]) / sum(len(s) - 1 for s in samples[:index])
        # The one-way ANOVA residual mean square is the pooled within-round variance.
        groups = samples[:index]
        grand = base.mean()
        ss_between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups)
        f, _p = sps.f_oneway(*groups)
        assert f == pytest.approx((ss_between / (len(groups) - 1)) / within)
        se = math.sqrt(within * (1 / len(samples[index]) + 1 / len(base)))
        assert step.baseline == pytest.approx(grand)
        assert step.z == pytest.approx((samples[index].mean() - grand) / se)
    # NPS: each answer scores +1, 0, -1; the baseline variance is that of the pooled scores.
    nps_points = [charts.Point(0, 50, 20, 10), charts.Point(1, 60, 25, 12), charts.Point(2, 40, 15, 9),
                  charts.Point(3, 55, 22, 11), charts.Point(4, 50, 8, 25)]
    step = charts.evaluate(charts.NPS, nps_points).last
    promoters, detractors, total = 82, 42, 205
    scores = np.array([1] * promoters + [-1] * detractors + [0] * (total - promoters - detractors))
    p_, d_ = (promoters + 0.5) / (total + 1.5), (detractors + 0.5) / (total + 1.5)
    var = 10_000 * (p_ + d_ - (p_ - d_) ** 2)
    assert var == pytest.approx(10_000 * np.var(scores), rel=0.02)
    assert step.baseline == pytest.approx(100 * scores.mean())
    assert step.z == pytest.approx((100 * (8 - 25) / 50 - 100 * scores.mean()) / math.sqrt(var * (1 / 50 + 1 / total)))
    assert step.signal is not None and step.direction == "down"


def test_overdispersed_baselines_widen_the_limits_and_the_quantile_matches_scipy():
    for dof in (2, 3, 5, 11):
        assert charts.chi_square_quantile_99(dof) == pytest.approx(sps.chi2.ppf(0.99, dof), rel=0.01)
    # Rounds of 1,000 that swing 20 points: far more than sampling explains.
    points = [charts.Point(i, 1000, x) for i, x in enumerate((500, 700, 520, 690, 560))]
    step = charts.evaluate(charts.SHARE, points).last
    base = [500, 700, 520, 690]
    table = np.array([[x, 1000 - x] for x in base])
    chi2 = sps.chi2_contingency(table, correction=False)[0]
    assert step.dispersion > 1 and step.dispersion == pytest.approx(chi2 / 3, rel=0.01)
    assert step.signal is None  # 56 % is ordinary for a metric that swings like this


def test_fewer_than_four_rounds_never_alert():
    points = [charts.Point(i, 100, x) for i, x in enumerate((80, 80, 81, 10))]
    assert charts.evaluate(charts.SHARE, points).steps == []


# -- Watching the stored rounds ------------------------------------------------------------------


def test_a_drop_alerts_overall_and_in_its_region_and_a_withheld_region_never(app):
    steady = {"EMEA": (21, 9), "AMER": (5, 3), "APAC": (4, 3)}
    # The last round: APAC has 3 answers (withheld, min 5), and AMER with it, so
    # that APAC cannot be worked out from the overall figure (complementary).
    plan = _plan([steady] * 5 + [{"EMEA": (9, 21), "AMER": (5, 3), "APAC": (1, 2)}])
    _data, rounds = build_rounds(plan)
    results = watch_all(rounds)
    assert all(not created for created in results[:5])  # nothing moved, or too little history
    alerts = db.session.scalars(select(Alert).order_by(Alert.id)).all()
    found = {(a.slice_kind, a.slice_name, a.question_key, a.metric) for a in alerts}
    assert ("overall", "", "confidence", "favorable_pct") in found
    assert ("region", "EMEA", "confidence", "favorable_pct") in found
    assert ("region", "EMEA", "confidence", "mean") in found
    assert not any(a.slice_name in ("APAC", "AMER") for a in alerts)
    card = build_scorecard(rounds[-1], "region")
    assert {s["name"]: s["suppressed"] for s in card["slices"]} == {"AMER": True, "APAC": True, "EMEA": False}
    emea = next(a for a in alerts if a.slice_name == "EMEA" and a.metric == "favorable_pct")
    assert emea.value == pytest.approx(30.0) and emea.baseline == pytest.approx(70.0) and emea.n == 30
    assert emea.direction == "down" and emea.state == "new" and emea.low > emea.value
    assert [h["period_key"] for h in emea.history] == [f"2026-0{i}" for i in range(1, 7)]
    # The withheld region left no point in the last round, and nothing about it anywhere.
    last_points = db.session.scalar(select(AlertPoints).where(AlertPoints.round_id == rounds[-1].id)).points
    assert not any(p[1] == "APAC" for p in last_points)
    assert any(p[1] == "APAC" for p in
               db.session.scalar(select(AlertPoints).where(AlertPoints.round_id == rounds[0].id)).points)
    assert "APAC" not in repr([a.history for a in alerts])
    # Watching again changes nothing.
    assert watch_all(rounds[-1:]) == [[]]


def test_a_changed_measure_breaks_the_series(app):
    five_point = {"key": "confidence", "type": "scale", "settings": {"scale_max": 7}}
    steady = {"EMEA": (21, 9)}
    plan = _plan([steady] * 3 + [steady] * 3 + [{"EMEA": (6, 24)}])
    _data, rounds = build_rounds(plan, versions={3: [five_point]})
    watch_all(rounds)
    # Only three rounds of the new measure before the drop: not enough history, no alert.
    assert db.session.scalars(select(Alert)).all() == []
    series = series_for(rounds[-1])
    (kind, points), = [v for k, v in series.items() if k[:4] == ("overall", None, "confidence", "favorable_pct")]
    assert [r.period_key for r, _p in points] == ["2026-04", "2026-05", "2026-06", "2026-07"]


def test_option_shares_are_watched_per_option(app):
    def choice_round(acme, globex):
        return [("EMEA", {"confidence": 4, "lost_to": "acme"}, acme), ("EMEA", {"confidence": 4, "lost_to": "globex"}, globex)]

    plan = [choice_round(30, 10)] * 5 + [choice_round(12, 28)]
    _data, rounds = build_rounds(plan, questions=(SCALE, CHOICE))
    watch_all(rounds)
    options = {(a.option, a.direction) for a in db.session.scalars(select(Alert).where(Alert.metric == "option_pct"))}
    assert ("globex", "up") in options and ("acme", "down") in options


def test_a_stricter_policy_later_takes_earlier_points_out_of_the_charts(app):
    # APAC has 6 answers a round: published under a minimum of 5, withheld under 8.
    steady = {"EMEA": (21, 9), "AMER": (14, 6), "APAC": (4, 2)}
    data, rounds = build_rounds(_plan([steady] * 5 + [{"EMEA": (9, 21), "AMER": (14, 6), "APAC": (4, 2)}]))
    watch_all(rounds[:5])
    assert any(p[1] == "APAC" for p in
               db.session.scalar(select(AlertPoints).where(AlertPoints.round_id == rounds[0].id)).points)
    data.question_set.min_group_size = 8
    db.session.commit()
    watch_all(rounds[5:])
    for round_ in rounds:
        points = db.session.scalar(select(AlertPoints).where(AlertPoints.round_id == round_.id))
        assert points.policy["min_group_size"] == 8
        assert not any(p[1] == "APAC" for p in points.points)
    alerts = db.session.scalars(select(Alert)).all()
    assert alerts and "APAC" not in repr([(a.slice_name, a.history) for a in alerts])


def test_an_alert_raised_before_the_rules_became_stricter_is_no_longer_shown(app):
    from surveys.alerts import alert_dict, alert_marks, list_alerts

    # APAC (8 answers a round) drops sharply in the last round, under a minimum group size of 5.
    steady = {"EMEA": (21, 9), "AMER": (14, 6), "APAC": (6, 2)}
    data, rounds = build_rounds(_plan([steady] * 5 + [{"EMEA": (21, 9), "AMER": (14, 6), "APAC": (0, 8)}]))
    watch_all(rounds)
    apac = [a for a in list_alerts() if a.slice_name == "APAC"]
    assert apac and alert_dict(apac[0])["history"]
    assert any("region APAC" in mark for marks in alert_marks(rounds[-1].id).values() for mark in marks)
    # The set's minimum rises to 10: APAC is withheld in every round now, and so is its alert.
    data.question_set.min_group_size = 10
    db.session.commit()
    shown = list_alerts()
    assert not any(a.slice_name == "APAC" for a in shown)
    assert "APAC" not in repr([alert_dict(a) for a in shown])
    assert not any("APAC" in mark for marks in alert_marks(rounds[-1].id).values() for mark in marks)


def test_limits_never_invert_when_the_ewma_is_already_far_out():
    # A long slide: by the last rounds the EWMA alone signals whatever the round shows.
    counts = [40, 40, 41, 39, 40, 30, 25, 20, 15, 10]
    steps = charts.evaluate(charts.SHARE, [charts.Point(i, 50, x) for i, x in enumerate(counts)]).steps
    assert all(step.limits[0] <= step.limits[1] for step in steps)
    assert steps[-1].signal is not None


from hypothesis import given, settings, strategies as st  # noqa: E402

_rounds = st.lists(st.tuples(st.integers(0, 120), st.integers(0, 120)), min_size=5, max_size=16)


@settings(max_examples=200, deadline=None)
@given(_rounds)
def test_a_round_alerts_exactly_when_its_value_leaves_its_limits(rows):
    points = [charts.Point(i, a + b, a) for i, (a, b) in enumerate(rows)]
    for step in charts.evaluate(charts.SHARE, points).steps:
        low, high = step.limits
        assert low <= high
        if min(abs(step.value - low), abs(step.value - high)) < 1e-6:
            continue  # on the boundary: either answer is right
        assert (not low <= step.value <= high) == (step.signal is not None)


def test_baselines_after_a_break_and_around_a_withheld_round_match_an_independent_pooling(app):
    seven_point = {"key": "confidence", "type": "scale", "settings": {"scale_max": 7}}
    # Version 1 for three rounds (80 % favourable), then a 1-7 scale (favourable 6-7): 50 %, 60 %,
    # a round where EMEA has 3 answers (withheld), 55 %, 50 %, then a drop to 20 %.
    rows = [{"EMEA": (24, 6), "AMER": (20, 10)}] * 3 + [
        {"EMEA": (15, 15), "AMER": (20, 10)}, {"EMEA": (18, 12), "AMER": (20, 10)},
        {"EMEA": (1, 2), "AMER": (20, 10), "APAC": (3, 3)},
        {"EMEA": (11, 9), "AMER": (20, 10)}, {"EMEA": (20, 20), "AMER": (20, 10)},
        {"EMEA": (6, 24), "AMER": (20, 10)}]

    def answers(fav, unfav, favourable, unfavourable):
        return [({"confidence": favourable}, fav), ({"confidence": unfavourable}, unfav)]

    plan = []
    for index, regions in enumerate(rows):
        top, low = (5, 2) if index < 3 else (7, 2)
        plan.append([(region, a, c) for region, (fav, unfav) in regions.items()
                     for a, c in answers(fav, unfav, top, low)])
    _data, rounds = build_rounds(plan, versions={3: [seven_point]})
    watch_all(rounds)
    card = build_scorecard(rounds[5], "region")
    assert next(s for s in card["slices"] if s["name"] == "EMEA")["suppressed"]
    emea = db.session.scalar(select(Alert).where(Alert.slice_name == "EMEA", Alert.metric == "favorable_pct"))
    assert emea is not None and emea.round_id == rounds[-1].id and emea.direction == "down"
    # The baseline pools only the four published rounds since the break (not round 6, not version 1).
    baseline = [(15, 30), (18, 30), (11, 20), (20, 40)]
    successes, total = sum(x for x, _ in baseline), sum(n for _, n in baseline)
    assert emea.baseline == pytest.approx(100 * successes / total)
    assert emea.baseline_rounds == 4
    assert [h["period_key"] for h in emea.history] == ["2026-04", "2026-05", "2026-07", "2026-08", "2026-09"]
    # The round's z-test against that pooled baseline, by scipy: beyond the Shewhart limit.
    shrunk = (successes + 0.5) / (total + 1)
    z = (6 / 30 - successes / total) / math.sqrt(shrunk * (1 - shrunk) * (1 / 30 + 1 / total))
    assert sps.norm.cdf(z) < sps.norm.cdf(-charts.SHEWHART_Z)
    # The first evaluated round of the new series: the EWMA is lambda z with sigma lambda, so its score is |z| / L.
    assert emea.rule == "shewhart"
    assert emea.score == pytest.approx(max(abs(z) / charts.SHEWHART_Z, abs(z) / charts.EWMA_L))
