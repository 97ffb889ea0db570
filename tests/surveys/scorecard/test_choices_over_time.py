"""Sales views on the scorecard (issue 14): losses by competitor over the last
rounds, stacked; feature gaps ranked round by round, linked to what reps wrote
under "Other"; each option's share with its own 95 % interval. Every number is
checked against a computation from the answers this test posts."""

import re
from collections import Counter

from statsmodels.stats.proportion import proportion_confint

from surveys.scorecard_text import format_metric
from tests.builders.scorecards import ScorecardData

LOST_TO = {"key": "lost_to", "type": "single_choice", "prompt": "Lost to?",
           "settings": {"options": [{"key": "globex", "label": "Globex"}, {"key": "acme", "label": "Acme"},
                                    {"key": "none", "label": "Nobody"}]}}
GAPS = {"key": "gaps", "type": "multi_choice", "required": False, "prompt": "Which gaps hurt?",
        "settings": {"options": [{"key": "sso", "label": "SSO"}, {"key": "api", "label": "API"}],
                     "allow_other": True}}

# Per round: each rep's (lost_to, gaps).
ROUNDS = {
    "2026-01": [("globex", ["sso"]), ("acme", ["sso", "api"]), ("none", []), ("globex", ["api"])],
    "2026-02": [("globex", ["sso"]), ("globex", ["sso"]), ("acme", []), ("none", ["api"]), ("globex", ["sso"])],
    "2026-03": [("acme", ["api"]), ("acme", ["api", "sso"]), ("globex", ["api"]), ("none", [])],
}


def _scorecard_page(signed_in_client):
    data = ScorecardData()
    version = data.version([LOST_TO, GAPS])
    people = [data.person(name=f"Rep {i}") for i in range(5)]
    latest = None
    for index, (period, answers) in enumerate(ROUNDS.items()):
        latest = data.round(period, version, index)
        for person, (lost_to, gaps) in zip(people, answers):
            data.respond(latest, person, {"lost_to": lost_to, "gaps": gaps})
    data.commit()
    leader = signed_in_client(roles=("leader",), email="leader@example.com")
    page = leader.get(f"/scorecards/rounds/{latest.id}")
    assert page.status_code == 200
    return page.text


def _table(html, key):
    """{option label: [cell text per round]} of a question's over-time table."""
    section = html.split(f'id="over-time-table-{key}"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for label, cells in re.findall(r'<th scope="row">(.*?)</th>(.*?)</tr>', section, re.S):
        rows[label] = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
    return rows


def _expected_shares(key, option):
    out = []
    for answers in ROUNDS.values():
        if key == "lost_to":
            out.append(100.0 * sum(1 for lost, _ in answers if lost == option) / len(answers))
        else:  # the share of those who answered the (optional) question
            answered = [gaps for _, gaps in answers if gaps]
            out.append(100.0 * sum(1 for gaps in answered if option in gaps) / len(answered))
    return out


def _ranks(key, options):
    """Rank per round (1 = largest share, ties share a rank)."""
    per_round = []
    for index in range(len(ROUNDS)):
        shares = {option: _expected_shares(key, option)[index] for option in options}
        distinct = sorted(set(shares.values()), reverse=True)
        per_round.append({option: distinct.index(share) + 1 for option, share in shares.items()})
    return per_round


def test_losses_by_competitor_stacked_and_gaps_ranked_over_the_rounds(app, signed_in_client):
    html = _scorecard_page(signed_in_client)
    for key, options in (("lost_to", {"globex": "Globex", "acme": "Acme", "none": "Nobody"}),
                         ("gaps", {"sso": "SSO", "api": "API", "other": "Other"})):
        table = _table(html, key)
        assert set(table) == set(options.values())
        ranks = _ranks(key, options)
        for option, label in options.items():
            expected = [f"{format_metric('option_pct', share)} #{ranks[i][option]}"
                        for i, share in enumerate(_expected_shares(key, option))]
            assert table[label] == expected, (key, label)
        # Rows in the order of the latest round's shares, largest first.
        latest = {label: _expected_shares(key, option)[-1] for option, label in options.items()}
        assert list(table) == sorted(latest, key=lambda label: -latest[label])

    # The single choice is stacked: per round, its blocks fill the column in proportion to the shares.
    chart = html.split('id="over-time-lost_to"', 1)[1].split("</svg>", 1)[0]
    heights = [float(h) for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="28" height="([\d.]+)"', chart)]
    assert len(heights) == sum(len(Counter(lost for lost, _ in answers)) for answers in ROUNDS.values())
    assert abs(sum(heights) - 3 * 160) < 0.05  # three full columns
    # The multi choice is drawn as lines (its shares need not add up to 100).
    gaps_chart = html.split('id="over-time-gaps"', 1)[1].split("</svg>", 1)[0]
    assert gaps_chart.count('class="option-line"') == 3  # SSO, API and Other
    # "Other" texts of the gaps question are one link away.
    assert "/comments?question=gaps" in html and "/comments?question=lost_to" not in html


def test_each_options_share_carries_its_own_wilson_interval(app, signed_in_client):
    html = _scorecard_page(signed_in_client)
    latest = list(ROUNDS.values())[-1]
    n = len(latest)
    section = html.split('id="q-lost_to"', 1)[1].split('class="choices-over-time"', 1)[0]
    for option, label in (("globex", "Globex"), ("acme", "Acme"), ("none", "Nobody")):
        count = sum(1 for lost, _ in latest if lost == option)
        low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
        row = section.split(f'<th scope="row">{label}</th>', 1)[1].split("</tr>", 1)[0]
        interval = re.search(r'<td class="interval">(.*?)</td>', row, re.S).group(1)
        assert re.sub(r"<[^>]+>", "", interval).strip() == (
            f"95 % interval {format_metric('option_pct', 100 * low)} to {format_metric('option_pct', 100 * high)}")
