"""Long-run change (issue 14): the change over the last 6 and 12 rounds and the
trend slope, each number checked against scipy and statsmodels computed from
the raw answers; the honesty rules (no test across a break, a withheld or
too-small end is not used)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportions_ztest

from surveys.scorecard.assembly import build_scorecard
from surveys.scorecard.finalized import finalize_scorecard
from surveys.scorecard.longrun import (
    MEASURE_CHANGED, NOT_ENOUGH_ROUNDS, TESTED, TOO_FEW_ANSWERS, WITHHELD, long_run_changes,
)
from tests.builders.scorecards import ScorecardData

QUESTIONS = [
    {"key": "win_confidence", "type": "scale", "prompt": "How confident are you in winning?"},
    {"key": "lost_deal", "type": "yes_no"},
    {"key": "recommend", "type": "nps"},
    {"key": "deals", "type": "number", "settings": {"unit": "deals"}},
]
ANSWERS_PER_ROUND = 24


def rising_year(seed=11, answers=ANSWERS_PER_ROUND, finalized=range(0, 11, 2)):
    """Twelve monthly rounds in which win confidence rises from about 2.8 to
    about 3.8, lost deals fall, NPS rises; the last round is open. Some closed
    rounds are finalized (read from their stored sums), the others are read
    live. Returns the data, the rounds and the raw answers per round."""
    data = ScorecardData()
    version = data.version(QUESTIONS)
    rng = random.Random(seed)
    rounds, raw = [], []
    for month in range(12):
        round_ = data.round(f"2026-{month + 1:02d}", version, month, status="open" if month == 11 else "closed")
        target = 2.8 + month / 11
        given = []
        for _ in range(answers):
            answer = {
                "win_confidence": min(5, max(1, round(rng.gauss(target, 1.0)))),
                "lost_deal": rng.random() < 0.6 - month * 0.03,
                "recommend": min(10, max(0, round(rng.gauss(6 + month * 0.2, 2.0)))),
                "deals": rng.randint(0, 8),
            }
            data.respond(round_, data.person(), answer)
            given.append(answer)
        rounds.append(round_)
        raw.append(given)
    data.commit()
    for index in finalized:
        finalize_scorecard(rounds[index])
    return data, rounds, raw


def values(raw_round, key):
    return np.array([float(answer[key]) for answer in raw_round])


def nps_p_value(after, before):
    """The trinomial z-test, from the per-respondent scores +1 / 0 / -1."""
    def scores(values_):
        return np.where(values_ >= 9, 1.0, np.where(values_ <= 6, -1.0, 0.0))

    a, b = scores(after), scores(before)
    z = (a.mean() - b.mean()) / np.sqrt(a.var() / len(a) + b.var() / len(b))
    return 2 * scipy_stats.norm.sf(abs(z))


def statsmodels_slope(xs, ys, weights):
    fit = sm.WLS(np.array(ys), sm.add_constant(np.array(xs, dtype=float)), weights=np.array(weights)).fit()
    return fit.params[1], fit.conf_int(0.05)[1], fit.pvalues[1]


def test_a_rising_year_is_significant_over_12_rounds_while_the_last_step_is_not(app):
    _data, rounds, raw = rising_year()
    card = build_scorecard(rounds[-1])
    entry = next(q for q in card["questions"] if q["key"] == "win_confidence")
    assert entry["significant"]["mean"] is False  # the card's round-to-round test: no change

    result = long_run_changes(rounds[-1])["win_confidence"]
    six, twelve = result["windows"]
    first, last = values(raw[0], "win_confidence"), values(raw[-1], "win_confidence")
    assert first.mean() < 3.1 and last.mean() > 3.6
    assert twelve["status"] == TESTED and twelve["rounds"] == 12
    assert twelve["from_round"]["period_key"] == "2026-01" and twelve["to_round"]["period_key"] == "2026-12"
    assert twelve["p_value"] == pytest.approx(scipy_stats.ttest_ind(last, first, equal_var=False).pvalue, rel=1e-9)
    assert twelve["significant"] is True
    assert twelve["delta"] == round(last.mean() - first.mean(), 2)
    assert (twelve["from"], twelve["to"]) == (round(first.mean(), 2), round(last.mean(), 2))
    assert six["from_round"]["period_key"] == "2026-07"
    six_first = values(raw[6], "win_confidence")
    assert six["p_value"] == pytest.approx(scipy_stats.ttest_ind(last, six_first, equal_var=False).pvalue, rel=1e-9)
    assert six["significant"] is (six["p_value"] < 0.05)

    means = [values(r, "win_confidence").mean() for r in raw]
    slope, interval, p_value = statsmodels_slope(range(12), means, [len(r) for r in raw])
    line = result["slope"]
    assert line["status"] == TESTED and line["points"] == 12 and line["rounds"] == 12
    assert line["per_round"] == round(slope, 3) and line["ci95"] == [round(interval[0], 3), round(interval[1], 3)]
    assert line["p_value"] == pytest.approx(p_value, rel=1e-6)
    assert line["significant"] is True and slope > 0


def test_shares_and_nps_are_tested_as_the_card_tests_them(app):
    _data, rounds, raw = rising_year()
    result = long_run_changes(rounds[-1])
    for window, index in ((6, 6), (12, 0)):
        lost = next(w for w in result["lost_deal"]["windows"] if w["rounds"] == window)
        after, before = values(raw[-1], "lost_deal"), values(raw[index], "lost_deal")
        _z, expected = proportions_ztest([after.sum(), before.sum()], [len(after), len(before)])
        assert lost["p_value"] == pytest.approx(expected, rel=1e-9)
        assert lost["delta"] == round(100 * (after.mean() - before.mean()), 1)

        nps = next(w for w in result["recommend"]["windows"] if w["rounds"] == window)
        after, before = values(raw[-1], "recommend"), values(raw[index], "recommend")
        assert nps["p_value"] == pytest.approx(nps_p_value(after, before), rel=1e-9)
        assert nps["significant"] is (nps["p_value"] < 0.05)

        deals = next(w for w in result["deals"]["windows"] if w["rounds"] == window)
        after, before = values(raw[-1], "deals"), values(raw[index], "deals")
        assert deals["p_value"] == pytest.approx(scipy_stats.ttest_ind(after, before, equal_var=False).pvalue,
                                                 rel=1e-9)
    shares = [values(r, "lost_deal").mean() * 100 for r in raw]
    slope, interval, p_value = statsmodels_slope(range(12), shares, [len(r) for r in raw])
    line = result["lost_deal"]["slope"]
    assert line["per_round"] == round(slope, 2) and line["p_value"] == pytest.approx(p_value, rel=1e-6)
    assert line["ci95"] == [round(interval[0], 2), round(interval[1], 2)]


def test_a_break_inside_the_window_is_said_and_nothing_is_tested_across_it(app):
    data = ScorecardData()
    five = data.version([{"key": "win_confidence", "type": "scale"}])
    seven = data.version([{"key": "win_confidence", "type": "scale", "settings": {"scale_max": 7}}])
    rng = random.Random(3)
    rounds, means, sizes = [], [], []
    for month in range(12):
        round_ = data.round(f"2026-{month + 1:02d}", five if month < 8 else seven, month)
        given = [rng.randint(1, 5 if month < 8 else 7) for _ in range(12 + month)]
        for value in given:
            data.respond(round_, data.person(), {"win_confidence": value})
        rounds.append(round_)
        means.append(np.mean(given))
        sizes.append(len(given))
    data.commit()
    finalize_scorecard(rounds[3])
    result = long_run_changes(rounds[-1])["win_confidence"]
    for change in result["windows"]:
        assert change["status"] == MEASURE_CHANGED and change["break_period"] == "2026-09"
        assert change["p_value"] is None and change["significant"] is None and change["delta"] is None
    line = result["slope"]
    assert line["rounds"] == 4 and line["from_round"]["period_key"] == "2026-09"
    slope, _interval, p_value = statsmodels_slope(range(8, 12), means[8:], sizes[8:])
    assert line["per_round"] == round(slope, 3) and line["p_value"] == pytest.approx(p_value, rel=1e-6)


def test_a_withheld_end_is_not_used(app):
    data = ScorecardData(confidentiality="confidential", min_group_size=5)
    version = data.version([{"key": "win_confidence", "type": "scale"}])
    sizes = [30, 30, 30, 30, 30, 30, 3, 30, 30, 30, 30, 30]  # 2026-07, the first of the last 6, is withheld
    rounds = []
    for month, size in enumerate(sizes):
        round_ = data.round(f"2026-{month + 1:02d}", version, month)
        for i in range(size):
            data.respond(round_, data.person(), {"win_confidence": 1 + (i + month) % 5})
        rounds.append(round_)
    data.commit()
    six, twelve = long_run_changes(rounds[-1])["win_confidence"]["windows"]
    assert six["status"] == WITHHELD and six["from"] is None and six["p_value"] is None
    assert twelve["status"] == TESTED
    assert long_run_changes(rounds[-1])["win_confidence"]["slope"]["points"] == 11  # the withheld round is left out


def test_an_end_with_too_few_answers_is_not_tested(app):
    small = ScorecardData()
    version = small.version([{"key": "win_confidence", "type": "scale"}])
    rounds = []
    for month in range(6):
        round_ = small.round(f"2026-{month + 1:02d}", version, month)
        for i in range(6 if month == 0 else 20):  # published, but under the 10 answers a test needs
            small.respond(round_, small.person(), {"win_confidence": 1 if month == 0 else 5 - i % 2})
        rounds.append(round_)
    small.commit()
    result = long_run_changes(rounds[-1])["win_confidence"]
    six, twelve = result["windows"]
    assert six["status"] == TOO_FEW_ANSWERS and six["significant"] is None and six["delta"] == 3.5
    assert twelve["status"] == NOT_ENOUGH_ROUNDS and twelve["from_round"] is None
    assert result["slope"]["points"] == 5  # the first round is too small to weigh in


def test_a_held_round_tests_nothing_that_moves_with_its_answers(app):
    data = ScorecardData(confidentiality="confidential", hold_until_close=True)
    version = data.version([{"key": "win_confidence", "type": "scale"}])
    rounds = []
    for month in range(12):
        round_ = data.round(f"2026-{month + 1:02d}", version, month, status="open" if month == 11 else "closed")
        for i in range(20):
            data.respond(round_, data.person(), {"win_confidence": 1 + (i + month) % 5})
        rounds.append(round_)
    data.commit()
    before = long_run_changes(rounds[-1])
    data.respond(rounds[-1], data.person(), {"win_confidence": 5})
    data.commit()
    assert long_run_changes(rounds[-1]) == before
    assert all(change["status"] == WITHHELD for change in before["win_confidence"]["windows"])
    assert before["win_confidence"]["slope"]["points"] == 11
