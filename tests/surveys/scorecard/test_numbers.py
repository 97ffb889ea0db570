"""Numbers that do not mislead (issue 12): the smallest detectable change is a
power calculation for the test the scorecard runs, checked against
statsmodels; intervals stay inside the measure's range and never claim zero
width; no comparison crosses a version that changed the measure, and a
number's unit is part of its measure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import power_proportions_2indep

from surveys import stats
from surveys.extensions import db
from surveys.scorecard.assembly import build_scorecard
from surveys.scorecard.detectable import detectable_changes_for_sizes
from tests.builders.scorecards import trend
from tests.builders.scorecards import ScorecardData

BASELINES = [i / 100 for i in range(1, 100)]


def statsmodels_power(start, change, n):
    """statsmodels' power of the pooled two-proportion z-test, two-sided, 5 %."""
    return power_proportions_2indep(change, start, n, alpha=0.05, return_results=True).power


# -- The smallest detectable change -----------------------------------------------------------


@given(p1=st.floats(0.01, 0.99), p2=st.floats(0.01, 0.99), n=st.integers(2, 5000))
def test_the_power_of_canarys_test_is_statsmodels_power(p1, p2, n):
    assert stats.proportion_test_power(p1, p2, n) == pytest.approx(statsmodels_power(p1, p2 - p1, n), abs=1e-9)


def best_power(start, change, n):
    """The power of the likelier direction for a shift of at most `change`
    from `start` (a shift cannot leave 0-100 %)."""
    return max(statsmodels_power(start, min(change, 1 - start), n), statsmodels_power(start, -min(change, start), n))


@pytest.mark.parametrize("n", [11, 15, 20, 35, 60, 120, 500, 2000])
def test_the_detectable_change_is_found_with_80_percent_power_from_every_baseline(n):
    """From any starting share, some shift of at most the figure shown is found
    at least 80 % of the time; at the least favourable start, nothing smaller is."""
    change = stats.detectable_change_pts(n) / 100
    assert all(best_power(start, change, n) >= 0.8 - 1e-6 for start in BASELINES), n
    assert any(best_power(start, change - 0.002, n) < 0.8 for start in BASELINES), n


def test_ten_answers_a_round_cannot_promise_any_change():
    """The old figure for 10 respondents was 62.6 points, a move no share at 50 %
    can make; with Canary's own test even 50 % -> 100 % is missed over 20 % of the time."""
    assert stats.detectable_change_pts(10) is None
    assert statsmodels_power(0.5, 0.5, 10) < 0.8
    sizes = detectable_changes_for_sizes([("region", "Tiny", 14), ("region", "Small", 30)], 0.75)
    assert sizes[0]["respondents"] == 10 and sizes[0]["min_change_pts"] is None
    assert sizes[1]["min_change_pts"] < 50


def test_the_old_shortcut_overstated_the_change_most_at_small_n():
    for n in (12, 20, 50, 200):
        shortcut = 100 * (stats.Z_95 + stats.normal_quantile(0.8)) * (0.5 / n) ** 0.5
        assert stats.detectable_change_pts(n) < shortcut


# -- Intervals -------------------------------------------------------------------------------


def card_for(questions, answer_sets):
    data = ScorecardData()
    version = data.version(questions)
    round_ = data.round("2026-01", version, 0)
    for answers in answer_sets:
        data.respond(round_, data.person(), answers)
    data.commit()
    return {q["key"]: q for q in build_scorecard(round_)["questions"]}


def test_a_mean_interval_stays_on_the_scale(app):
    card = card_for([{"key": "score", "type": "scale"}], [{"score": 1}, {"score": 5}])
    low, high = card["score"]["ci95"]["mean"]
    # The t interval at n = 2 is 3 ± 25.4: [-22.4, 28.4] before issue 12.
    assert (low, high) == (1.0, 5.0)


def test_a_number_interval_stays_within_its_bounds(app):
    question = {"key": "deals", "type": "number", "settings": {"min": 0, "max": 10, "unit": "deals"}}
    card = card_for([question], [{"deals": 0}, {"deals": 1}, {"deals": 10}])
    low, high = card["deals"]["ci95"]["mean"]
    assert 0.0 <= low < card["deals"]["metrics"]["mean"] < high <= 10.0


def test_unanimous_answers_claim_no_zero_width_interval(app, signed_in_client):
    card = card_for([{"key": "score", "type": "scale"}], [{"score": 4}] * 12)
    entry = card["score"]
    assert entry["ci95"]["mean"] is None  # not [4.0, 4.0]
    assert entry["unanimous"] == {"n": 12, "value": 4}
    round_id = db.session.scalar(db.text("SELECT id FROM rounds"))
    page = signed_in_client(roles=("leader",)).get(f"/scorecards/rounds/{round_id}")
    assert "all 12 answers were 4" in page.text and "4.00 to 4.00" not in page.text


# -- Breaks ------------------------------------------------------------------------------------


def test_no_comparison_across_a_version_that_changed_the_measure_and_back(app):
    """v2 changed the scale and v3 changed it back; v2 was never sent. v3's
    round compared with v1's (the previous round, and the same month a year
    earlier) crosses two breaks: no delta, and the trend breaks."""
    data = ScorecardData()
    v1 = data.version([{"key": "score", "type": "scale"}])
    data.version([{"key": "score", "type": "scale", "settings": {"scale_max": 7}}])
    v3 = data.version([{"key": "score", "type": "scale"}])
    then = data.round("2025-01", v1, 0)
    now = data.round("2026-01", v3, 12)
    for round_, score in ((then, 2), (now, 4)):
        for i in range(12):
            data.respond(round_, data.person(), {"score": score if i % 3 else score + 1})
    data.commit()
    card = build_scorecard(now)
    (entry,) = card["questions"]
    assert card["previous_round"]["id"] == then.id
    assert entry["comparable"] is False and entry["delta"] is None and entry["previous"] is None
    assert entry["significant"] is None
    points = trend(data.cadence, "score")
    assert [p["round_id"] for p in points] == [then.id, now.id] and points[1]["break"] is True


def test_a_numbers_unit_is_part_of_its_measure(app):
    data = ScorecardData()
    deals = data.version([{"key": "pipeline", "type": "number", "settings": {"unit": "deals"}}])
    opportunities = data.version([{"key": "pipeline", "type": "number", "settings": {"unit": "opportunities"}}])
    first, second = data.round("2026-01", deals, 0), data.round("2026-02", opportunities, 1)
    for round_ in (first, second):
        for i in range(12):
            data.respond(round_, data.person(), {"pipeline": i})
    data.commit()
    (entry,) = build_scorecard(second)["questions"]
    assert entry["comparable"] is False and entry["delta"] is None
    assert trend(data.cadence, "pipeline")[1]["break"] is True
