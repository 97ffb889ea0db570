"""Hand-built closed rounds for the alert tests: counts chosen per round, so
every expected number can be computed independently."""

from __future__ import annotations

from cadence.models import Round
from surveys.extensions import db
from tests.builders.scorecards import ScorecardData

SCALE = {"key": "confidence", "type": "scale"}  # 1-5, favourable 4-5
CHOICE = {"key": "lost_to", "type": "single_choice",
          "settings": {"options": [{"key": "acme", "label": "Acme"}, {"key": "globex", "label": "Globex"}]}}


def build_rounds(plan, questions=(SCALE,), confidentiality="confidential", min_group_size=5, versions=None):
    """`plan` is a list of rounds, each a list of (region, answers dict, count):
    `count` respondents in that region give those answers. `versions` maps a
    round index to a new question list (a new version from that round on).
    Returns (data, [Round])."""
    data = ScorecardData(confidentiality=confidentiality, min_group_size=min_group_size)
    version = data.version(list(questions))
    rounds = []
    for index, groups in enumerate(plan):
        if versions and index in versions:
            version = data.version(versions[index])
        round_ = data.round(f"2026-{index + 1:02d}", version, index)
        for region, answers, count in groups:
            for _ in range(count):
                data.respond(round_, data.person(region=region), answers)
        rounds.append(round_)
    data.commit()
    return data, rounds


def watch_all(rounds):
    from surveys.alerts import watch_round

    out = []
    for round_ in rounds:
        out.append(watch_round(db.session.get(Round, round_.id)))
    return out
