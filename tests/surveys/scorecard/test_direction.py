"""Meaning follows the direction of good (issue 14): movers and choice shifts
say whether a change is better or worse, change cells and the heatmap are
coloured by it, whole-number questions show no spurious decimals."""

import html
import re
import statistics

import pytest

from surveys.direction import Direction
from surveys.scorecard.assembly import build_scorecard
from surveys.scorecard_text import change_text, delta_text, format_metric
from tests.builders.scorecards import ScorecardData

QUESTIONS = [
    {"key": "confidence", "type": "scale", "prompt": "How confident are you in hitting your number this quarter?",
     "settings": {"scale_max": 5, "favorable_min": 4}},
    {"key": "recommend", "type": "nps", "prompt": "Would you recommend us?"},
    {"key": "lost_deal", "type": "yes_no", "prompt": "Did you lose a deal?", "settings": {"higher_is_better": False}},
    {"key": "lost_to", "type": "single_choice", "prompt": "Lost to whom?",
     "settings": {"options": [{"key": "globex", "label": "Globex", "sentiment": "bad"},
                              {"key": "acme", "label": "Acme", "sentiment": "bad"},
                              {"key": "no_decision", "label": "No decision"}]}},
    {"key": "deals", "type": "number", "prompt": "Deals closed?",
     "settings": {"unit": "deals", "min": 0, "whole_numbers": True}},
]


def answers(index, *, confidence, recommend, lost, lost_to, deals):
    return {"confidence": confidence[index % len(confidence)], "recommend": recommend[index % len(recommend)],
            "lost_deal": index % 10 < lost, "lost_to": lost_to[index % len(lost_to)], "deals": deals[index % len(deals)]}


# Region by region, the March answers: EMEA is confident and loses little, AMER the opposite.
MARCH = {
    "EMEA": dict(confidence=[5, 4, 5, 4], recommend=[9, 10, 9, 8], lost=1, lost_to=["no_decision"] * 4 + ["acme"],
                 deals=[4, 5, 6, 5]),
    "AMER": dict(confidence=[2, 3, 3, 2], recommend=[9, 7, 8, 9], lost=4, lost_to=["no_decision", "globex", "acme"],
                 deals=[1, 2, 1, 3]),
}
JANUARY = dict(confidence=[3, 3, 2, 4], recommend=[3, 5, 6, 9], lost=8, lost_to=["globex", "globex", "acme"],
               deals=[2, 2, 3, 1])
PER_REGION = 20


@pytest.fixture
def losses(app):
    data = ScorecardData(confidentiality="attributed")
    version = data.version(QUESTIONS)
    january = data.round("2026-01", version, 0)
    march = data.round("2026-03", version, 2)
    raw = {"January": [], "EMEA": [], "AMER": []}
    for region in ("EMEA", "AMER"):
        for index in range(PER_REGION):
            before = answers(index, **JANUARY)
            data.respond(january, data.person(region=region), before)
            raw["January"].append(before)
            now = answers(index, **MARCH[region])
            data.respond(march, data.person(region=region), now)
            raw[region].append(now)
    data.commit()
    return data, january, march, raw


def test_a_falling_bad_share_and_a_falling_loss_rate_are_better(losses, client, api_token):
    _data, _january, march, _raw = losses
    card = build_scorecard(march)
    movers = {(m["key"], m["option"]): m for m in card["top_movers"]}
    # Fewer lost deals (higher is not better here) and fewer losses to Globex (bad news) are better.
    assert movers[("lost_deal", None)]["delta"] < 0 and movers[("lost_deal", None)]["meaning"] == "better"
    assert movers[("recommend", None)]["delta"] > 0 and movers[("recommend", None)]["meaning"] == "better"
    shifts = {s["option"]: s for s in card["choice_shifts"] if s["key"] == "lost_to"}
    assert shifts["globex"]["delta"] < 0 and shifts["globex"]["meaning"] == "better"
    assert shifts["no_decision"]["delta"] > 0 and shifts["no_decision"]["meaning"] == "neutral"

    # The API's card carries the same meaning.
    answer = client.get(f"/api/v1/rounds/{march.id}/scorecard", headers=api_token(roles=("leader",)))
    assert answer.status_code == 200
    assert {(m["key"], m["option"], m["meaning"]) for m in answer.json["top_movers"]} == {
        (m["key"], m["option"], m["meaning"]) for m in card["top_movers"]}
    assert all(s["meaning"] in ("better", "worse", "neutral") for s in answer.json["choice_shifts"])

    # A falling detractor share is better: its change cell says so and is coloured so.
    recommend = next(q for q in card["questions"] if q["key"] == "recommend")
    direction = Direction.of(march.version.questions[1])
    detractors = change_text(recommend, "detractors_pct", direction=direction)
    assert detractors["delta"] < 0 and detractors["meaning"] == "better"
    assert change_text(recommend, "passives_pct", direction=direction)["meaning"] == "neutral"


def test_the_meaning_of_a_change_follows_the_direction_of_good():
    higher, lower = Direction(), Direction(higher_is_better=False)
    assert higher.meaning("mean", 0.4) == "better" and lower.meaning("mean", 0.4) == "worse"
    assert higher.meaning("detractors_pct", -3.0) == "better" and lower.meaning("detractors_pct", -3.0) == "worse"
    assert higher.meaning("yes_pct", -5.0) == "worse" and lower.meaning("yes_pct", -5.0) == "better"
    assert higher.meaning("count", 5) == "neutral" and higher.meaning("mean", 0) == "neutral"
    options = Direction(sentiments={"globex": "bad", "won": "good", "other": "neutral"})
    assert options.meaning("option_pct", 4.0, "globex") == "worse"
    assert options.meaning("option_pct", -4.0, "globex") == "better"
    assert options.meaning("option_pct", 4.0, "won") == "better"
    assert options.meaning("option_pct", 4.0, "other") == "neutral"
    assert options.meaning("option_pct", 4.0, "unknown") == "neutral"


def test_the_page_words_and_colours_changes_by_meaning(losses, signed_in_client):
    _data, _january, march, _raw = losses
    page = signed_in_client(roles=("leader",)).get(f"/scorecards/rounds/{march.id}").text
    section = page.split('id="q-lost_deal"', 1)[1].split("</section>", 1)[0]
    cell = re.search(r'<td>(<span class="change (\w+)[^"]*">.*?)</td>', section, re.S)
    words = re.sub(r"<[^>]+>", "", cell.group(1))
    # Fewer lost deals: the arrow points down, the word and the colour say better.
    assert cell.group(2) == "better" and re.fullmatch(r"▼ -[\d.]+ pts better\* \(significant\)", words), words
    movers = page.split('<ol class="movers">', 1)[1].split("</ol>", 1)[0]
    lost_line = next(item for item in re.findall(r"<li[^>]*>.*?</li>", movers, re.S) if "Did you lose" in item)
    assert 'class="change better sig"' in lost_line and ", better (significant)" in html.unescape(lost_line)


def test_whole_number_questions_show_no_spurious_decimals(losses, signed_in_client):
    _data, _january, march, raw = losses
    deals = [a["deals"] for region in ("EMEA", "AMER") for a in raw[region]]
    card = build_scorecard(march)
    metrics = next(q for q in card["questions"] if q["key"] == "deals")["metrics"]
    assert metrics["sum"] == sum(deals)
    page = signed_in_client(roles=("leader",)).get(f"/scorecards/rounds/{march.id}").text
    section = page.split('id="q-deals"', 1)[1].split("</section>", 1)[0]
    cells = [html.unescape(c) for c in re.findall(r'<td class="num">(.*?)</td>', section)]
    assert f"{sum(deals)} deals" in cells  # not "145.00 deals"
    assert f"{statistics.median(deals):g} deals" in cells
    assert f"{statistics.mean(deals):.1f} deals" in cells  # a mean keeps one decimal
    assert not any(re.search(r"\.\d\d", cell) for cell in cells)

    assert format_metric("sum", 184.0, whole_numbers=True) == "184"
    assert format_metric("sum", 1840.0, whole_numbers=True) == "1,840"
    assert format_metric("median", 2.5, whole_numbers=True) == "2.5"
    assert format_metric("mean", 3.456, whole_numbers=True) == "3.5"
    assert format_metric("sum", 184.0) == "184.00"  # a question that takes any number keeps its decimals
    assert delta_text("sum", 12.0, whole_numbers=True) == "+12"
    assert delta_text("mean", -0.25, whole_numbers=True) == "-0.2"


# -- The heatmap against an independent computation ------------------------------------


def _value(metric, answer_sets):
    if metric == "mean_confidence":
        return statistics.mean(a["confidence"] for a in answer_sets)
    if metric == "nps":
        n = len(answer_sets)
        return 100.0 * (sum(a["recommend"] >= 9 for a in answer_sets) - sum(a["recommend"] <= 6 for a in answer_sets)) / n
    if metric == "yes_pct":
        return 100.0 * sum(a["lost_deal"] for a in answer_sets) / len(answer_sets)
    return statistics.mean(a["deals"] for a in answer_sets)


def _expected_class(metric, region, overall, higher_is_better):
    """Gap from the whole on a 0-100 footing: points of a percentage, half an
    NPS point, a scale mean as points of its 1-5 range, a number's mean
    relative to the whole; bands at 2.5, 5 and 10."""
    gap = region - overall
    size = {"mean_confidence": abs(gap) / 4 * 100, "nps": abs(gap) / 2, "yes_pct": abs(gap),
            "mean_deals": abs(gap) / abs(overall) * 100}[metric]
    band = sum(size >= step for step in (2.5, 5.0, 10.0))
    if band == 0:
        return "heat-even"
    better = (gap > 0) == higher_is_better
    return f"heat-{'better' if better else 'worse'}-{band}"


def test_heatmap_cells_are_shaded_by_their_gap_from_the_whole(losses, signed_in_client):
    _data, _january, march, raw = losses
    everyone = raw["EMEA"] + raw["AMER"]
    page = signed_in_client(roles=("leader",)).get(f"/scorecards/rounds/{march.id}?slice=region").text
    table = page.split('<table class="heatmap">', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in table.split("<tbody>", 1)[1].split("<tr>")[1:]:
        name = re.search(r'<th scope="row">(.*?)</th>', row).group(1)
        rows[name] = re.findall(r'<td class="(heat-[^"]*)" data-label', row)
    metrics = [("mean_confidence", True), ("nps", True), ("yes_pct", False), (None, None), ("mean_deals", True)]
    expected = {}
    for region in ("AMER", "EMEA"):
        expected[region] = [
            "heat-even" if metric is None else _expected_class(metric, _value(metric, raw[region]),
                                                              _value(metric, everyone), better)
            for metric, better in metrics
        ]
    actual = {region: [c.replace(" heat-sig", "") for c in classes] for region, classes in rows.items()}
    assert actual == expected
    # The data has gaps of every kind: better and worse, and more than one band.
    shades = {c for classes in expected.values() for c in classes}
    assert {"heat-better-3", "heat-worse-3"} <= shades and len(shades) >= 4
    # Column titles are the prompt cut short, the whole prompt kept for screen readers and hover.
    assert '<span aria-hidden="true" title="How confident are you in hitting your number this quarter?">' \
           "How confident are you in…</span>" in page
    assert '<span class="visually-hidden">How confident are you in hitting your number this quarter?</span>' in page
    # A significant change since January is bold with a mark, whatever the shade.
    assert "heat-sig" in table and '<span class="sig-mark" aria-hidden="true">*</span>' in table
