"""The scorecard's summary (issue 14): the headline sentence that answers "what
changed?", the key-metric tiles with their 12-round charts, on the page and
through `GET /api/v1/rounds/<id>/summary`."""

from __future__ import annotations

import re

from surveys.charts import chart_segments, trend_chart_svg
from surveys.extensions import db
from surveys.scorecard.assembly import build_scorecard
from surveys.scorecard.longrun import long_run_changes
from surveys.scorecard.overview import key_metric_keys, round_overview
from surveys.direction import Direction
from surveys.scorecard_headline import headline_sentence
from tests.builders.scorecards import ScorecardData
from tests.surveys.scorecard.test_long_run import rising_year


def steady_rounds(months, questions=None, answers=None, **data_options):
    """`months` monthly rounds with the same answers each time (the last one open)."""
    data = ScorecardData(**data_options)
    version = data.version(questions or [{"key": "win_confidence", "type": "scale"}])
    rounds = []
    for month in range(months):
        round_ = data.round(f"2026-{month + 1:02d}", version, month, status="open" if month == months - 1 else "closed")
        for i in range(20):
            data.respond(round_, data.person(), answers(month, i) if answers else {"win_confidence": 1 + i % 5})
        rounds.append(round_)
    data.commit()
    return data, rounds


# -- The sentence ----------------------------------------------------------------------


def test_a_rising_year_is_headlined_as_rising_not_as_no_change(app):
    _data, rounds, _raw = rising_year()
    overview = round_overview(rounds[-1])
    win = next(r for r in overview["long_run"] if r["key"] == "win_confidence")
    twelve = win["windows"][1]
    assert twelve["significant"] is True
    # Every question of this set keeps the default direction: higher is better.
    assert overview["headline"].startswith(
        "Lost deal (share of yes) is down 37.5 points over 12 rounds (significant, worse)")
    assert f"win confidence is up {twelve['delta']:.1f} over 12 rounds (significant, better)" in overview["headline"]
    assert "since 2026-11" not in overview["headline"]  # the last step was not significant
    assert "No significant change" not in overview["headline"]
    assert "deals" not in overview["headline"]  # not significant over 6 or 12 rounds: not said


def test_both_a_step_and_a_long_run_change_are_said_with_their_directions():
    card = {
        "round": {"period_key": "2026-12"}, "previous_round": {"period_key": "2026-11"}, "held_until_close": False,
        "questions": [{"key": "win_confidence", "type": "scale", "scale_max": 5, "delta": {"mean": -0.42},
                       "significant": {"mean": True}, "previous": {"mean": 3.9}}],
        "choice_shifts": [
            {"key": "lost_to", "label": "Initech", "delta": 30.0, "significant": False},
            {"key": "lost_to", "label": "Globex", "delta": 12.0, "significant": True},
        ],
    }
    long_run = {"win_confidence": {
        "key": "win_confidence", "type": "scale", "metric": "mean",
        "windows": [{"rounds": 6, "status": "tested", "delta": 0.3, "significant": False, "from": 3.2},
                    {"rounds": 12, "status": "tested", "delta": 1.0, "significant": True, "from": 2.8}],
        "slope": {"status": "tested", "significant": True, "per_round": 0.09, "rounds": 12},
    }}
    assert headline_sentence(card, long_run) == (
        "Win confidence is down 0.42 since 2026-11 but up 1.0 over 12 rounds (both significant; worse, then better); "
        "lost to: Globex rose 12.0 points since 2026-11 (significant)."
    )
    # The meaning follows the question's direction of good and the option's sentiment.
    card["choice_shifts"][1]["meaning"] = "worse"
    lower_is_better = {"win_confidence": Direction(higher_is_better=False)}
    assert headline_sentence(card, long_run, lower_is_better) == (
        "Win confidence is down 0.42 since 2026-11 but up 1.0 over 12 rounds (both significant; better, then worse); "
        "lost to: Globex rose 12.0 points since 2026-11 (significant, worse)."
    )


def test_when_nothing_moved_the_headline_says_so_with_the_long_run_view(app):
    _data, rounds = steady_rounds(12)
    overview = round_overview(rounds[-1])
    assert overview["headline"] == (
        "No significant change since 2026-11, over the last 6 rounds or over the last 12 rounds.")
    assert round_overview(rounds[0])["headline"] == (
        "This is the first round of this cadence: there is nothing to compare with yet.")
    assert round_overview(rounds[2])["headline"] == "No significant change since 2026-02."


def test_a_steady_value_with_a_significant_trend_is_said_as_a_trend(app):
    # Five rounds: no 6- or 12-round window yet, the last step too small to test.
    # The mean rises by 0.15 a round: every step is far from significant, the line is not.
    _data, rounds = steady_rounds(5, answers=lambda month, i: {"win_confidence": 2 + i % 3 + (i < 3 * month)})
    overview = round_overview(rounds[-1])
    slope = overview["long_run"][0]["slope"]
    assert slope["significant"] is True
    assert slope["per_round"] == 0.15
    assert overview["headline"] == (
        "Win confidence is rising by 0.15 a round over the last 5 rounds (significant trend, better).")


# -- Tiles --------------------------------------------------------------------------------


def test_key_metrics_are_the_pinned_questions_else_the_first_four_quantitative(app):
    questions = [{"key": "why", "type": "text"}, {"key": "a", "type": "scale"}, {"key": "b", "type": "nps"},
                 {"key": "c", "type": "single_choice", "settings": {}}, {"key": "d", "type": "yes_no"},
                 {"key": "e", "type": "number"}, {"key": "f", "type": "scale"}]
    data = ScorecardData()
    plain = data.version(questions)
    pinned = data.version([dict(q, settings={"pinned": True}) if q["key"] in ("f", "b", "why") else q
                           for q in questions])
    first, second = data.round("2026-01", plain, 0), data.round("2026-02", pinned, 1)
    data.commit()
    assert key_metric_keys(first) == ["a", "b", "d", "e"]
    assert key_metric_keys(second) == ["b", "f"]  # a pinned text question has no number for a tile


def test_a_tile_has_its_value_changes_and_12_points_with_intervals(app):
    _data, rounds, raw = rising_year()
    overview = round_overview(rounds[-1])
    assert [tile["key"] for tile in overview["tiles"]] == ["win_confidence", "lost_deal", "recommend", "deals"]
    tile = overview["tiles"][0]
    card = build_scorecard(rounds[-1])
    entry = card["questions"][0]
    assert (tile["value"], tile["n"], tile["ci95"]) == (entry["metrics"]["mean"], 24, entry["ci95"]["mean"])
    assert tile["since_previous"] == {"period_key": "2026-11", "delta": entry["delta"]["mean"], "significant": False,
                                      "meaning": "better" if entry["delta"]["mean"] > 0 else "worse"}
    assert tile["over_12_rounds"]["meaning"] == "better"
    assert tile["over_12_rounds"]["significant"] is True
    assert [p["period_key"] for p in tile["points"]] == [f"2026-{m:02d}" for m in range(1, 13)]
    closed = build_scorecard(rounds[3])["questions"][0]  # a closed round's own card shows the same interval
    assert tile["points"][3]["ci95"] == closed["ci95"]["mean"] and tile["points"][3]["value"] == closed["metrics"]["mean"]


def test_the_chart_breaks_its_line_at_a_change_of_measure_and_leaves_withheld_rounds_out():
    points = [{"period_key": f"2026-{m:02d}", "value": v, "ci95": [v - 0.5, v + 0.5] if v else None, "break": b}
              for m, v, b in ((1, 3.0, False), (2, 3.2, False), (3, None, False), (4, 3.4, False), (5, 3.1, True),
                              (6, 3.3, False))]
    assert chart_segments(points) == [[0, 1], [3], [4, 5]]
    svg = str(trend_chart_svg(points, "t", "Win <confidence>", lambda v: f"{v:.2f}", "2026-01: 3.00"))
    assert svg.count("<polyline") == 2 and svg.count('class="chart-break"') == 1 and ">changed<" in svg
    assert "<title id=\"t-title\">Win &lt;confidence&gt;</title>" in svg and "<desc id=\"t-desc\">2026-01: 3.00</desc>" in svg
    assert ">2026-06<" in svg  # the latest round is always labelled
    assert str(trend_chart_svg([dict(points[2])], "u", "x", str, "")) == ""


# -- The page ----------------------------------------------------------------------------


def test_the_scorecard_page_leads_with_the_sentence_and_the_tiles(app, signed_in_client):
    _data, rounds, _raw = rising_year()
    client = signed_in_client(roles=("leader",))
    page = client.get(f"/scorecards/rounds/{rounds[-1].id}").text
    overview = round_overview(rounds[-1])
    assert page.index('id="summary"') < page.index('id="headline"') < page.index('id="questions"')
    assert re.search(r'<p class="summary-sentence">(.*?)</p>', page).group(1) == overview["headline"]
    assert page.count('class="tile"') == 4
    assert page.count('<svg class="trend-chart"') == 4
    assert "Win confidence by round, 2026-01 to 2026-12, with 95 % intervals" not in page  # named with its metric
    assert "Win confidence (mean) by round, 2026-01 to 2026-12, with 95 % intervals" in page
    assert 'href="/static/scorecard-summary.css"' in page
    printed = client.get(f"/scorecards/rounds/{rounds[-1].id}/print").text
    assert overview["headline"] in printed and printed.count('class="tile"') == 4


def test_the_page_marks_a_break_and_says_nothing_is_compared_across_it(app, signed_in_client):
    data = ScorecardData()
    five = data.version([{"key": "score", "type": "scale"}])
    seven = data.version([{"key": "score", "type": "scale", "settings": {"scale_max": 7}}])
    rounds = [data.round(f"2026-{m + 1:02d}", five if m < 3 else seven, m) for m in range(6)]
    for round_ in rounds:
        for i in range(12):
            data.respond(round_, data.person(), {"score": 2 + i % 3})
    data.commit()
    page = signed_in_client(roles=("pm",)).get(f"/scorecards/rounds/{rounds[-1].id}").text
    tile = page[page.index('id="tile-score"'):page.index("</li>", page.index('id="tile-score"'))]
    assert 'class="chart-break"' in tile and "where the measure changed (nothing is compared across it)" in tile
    assert "not enough rounds yet" in tile  # six rounds: no 12-round change
    after_break = re.search(r'<p class="summary-sentence">(.*?)</p>',
                            signed_in_client(roles=("leader",), email="l@example.com").get(
                                f"/scorecards/rounds/{rounds[3].id}").text).group(1)
    assert after_break == "Nothing is compared with 2026-03: the measure changed since."
    assert "<td>measure changed</td>" in tile.split("2026-04</th>")[1].split("</tr>")[0]


# -- The API ----------------------------------------------------------------------------


def test_the_summary_endpoint_answers_staff_with_the_page_numbers(app, client, api_token):
    _data, rounds, _raw = rising_year()
    expected = round_overview(rounds[-1])
    for roles in (("pm",), ("leader",), ("admin",)):
        response = client.get(f"/api/v1/rounds/{rounds[-1].id}/summary", headers=api_token(roles=roles))
        assert response.status_code == 200, roles
        assert response.get_json() == expected
    body = response.get_json()
    assert set(body) == {"round", "previous_round", "headline", "tiles", "long_run"}
    assert [r["key"] for r in body["long_run"]] == ["win_confidence", "lost_deal", "recommend", "deals"]
    assert len(body["tiles"][0]["points"]) == 12 and body["tiles"][0]["points"][0]["ci95"]
    assert body["long_run"][0]["windows"][1]["significant"] is True
    rep = client.get(f"/api/v1/rounds/{rounds[-1].id}/summary", headers=api_token(roles=("rep",)))
    assert rep.status_code == 403
    missing = client.get("/api/v1/rounds/999999/summary", headers=api_token(roles=("pm",), email="other@example.com"))
    assert missing.status_code == 404 and missing.content_type.startswith("application/problem+json")
    assert client.get(f"/api/v1/rounds/{rounds[-1].id}/summary").status_code == 401
    # The scorecard payload itself stays as it was: no long-run data in it.
    card = client.get(f"/api/v1/rounds/{rounds[-1].id}/scorecard", headers=api_token(roles=("pm",),
                                                                                      email="pm2@example.com"))
    assert "long_run" not in card.get_json() and "tiles" not in card.get_json()


def test_openapi_declares_the_summary(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert "/rounds/{round_id}/summary" in document["paths"]
    assert {"RoundSummary", "LongRunChange", "TrendSlope"} <= set(document["components"]["schemas"])


def test_a_held_rounds_summary_does_not_change_with_answers(app, client, api_token):
    data, rounds = steady_rounds(12, confidentiality="confidential", hold_until_close=True)
    headers = api_token(roles=("leader",))
    before = client.get(f"/api/v1/rounds/{rounds[-1].id}/summary", headers=headers).get_json()
    for value in (5, 5, 5, 5, 5, 5, 5, 5, 5, 5):
        data.respond(rounds[-1], data.person(), {"win_confidence": value})
    data.commit()
    after = client.get(f"/api/v1/rounds/{rounds[-1].id}/summary", headers=headers).get_json()
    assert after == before
    tile = before["tiles"][0]
    assert tile["value"] is None and tile["n"] is None and tile["points"][-1]["withheld"] is True
    assert before["headline"].startswith("Results for 2026-12 are held until the round closes")
    assert all(w["status"] == "withheld" for w in before["long_run"][0]["windows"])
    assert db.session.get(type(rounds[-1]), rounds[-1].id).status == "open"
    assert long_run_changes(rounds[-1])["win_confidence"]["slope"]["points"] == 11


def test_the_page_summary_reads_no_answers_the_card_and_snapshots_already_hold(app):
    """A live round's sums come with its card; closed rounds' from their
    snapshots: the summary runs no query over answers (B1's page budget)."""
    from sqlalchemy import event

    from surveys.scorecard.assembly import scorecard_and_sums
    from surveys.scorecard.trends import trends

    _data, rounds, _raw = rising_year(finalized=range(11))
    card, sums = scorecard_and_sums(rounds[-1], "team")
    series = trends(rounds[-1].cadence, until=rounds[-1], keys=[q["key"] for q in card["questions"]],
                    until_card=card)
    statements = []

    def remember(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        overview = round_overview(rounds[-1], card, series, sums)
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    assert overview == round_overview(rounds[-1])
    assert statements and not [s for s in statements if "FROM answers" in s]
