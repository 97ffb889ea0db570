"""Test data for triage: an attributed and a confidential set with comments,
built through tests.builders.scorecards (the models, no shortcuts)."""

from __future__ import annotations

from datetime import timedelta

from tests.builders.scorecards import ScorecardData

GAPS = {"key": "gaps", "type": "multi_choice", "prompt": "Which gaps hurt deals?",
        "settings": {"options": [{"key": "sso", "label": "SSO"}, {"key": "reporting", "label": "Reporting"}]}}
WHY = {"key": "why", "type": "text", "prompt": "What did customers ask for?", "required": False}


def attributed_round(comments: list[tuple[str, str]], period="2026-11", status="closed", data=None, hold=False):
    """A round of an attributed set; `comments` are (rep name, text), each written a minute after the one before."""
    data = data or ScorecardData(confidentiality="attributed", hold_until_close=hold)
    version = data.version([GAPS, WHY])
    round_ = data.round(period, version, 10, status=status)
    people = []
    for minutes, (name, text) in enumerate(comments):
        person = data.person(team="Field sales", region="EMEA", segment="Enterprise", name=name)
        response = data.respond(round_, person, {"gaps": ["sso"], "why": text})
        response.submitted_at = round_.opens_at + timedelta(minutes=minutes)  # later comments are newer
        people.append(person)
    data.commit()
    return data, round_, people
