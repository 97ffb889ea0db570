"""An org and a cadence set up through the public API, and the rep's side of
a round (the link in an email, answering through it): what the loop, planner
and fault tests build on."""

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from tests.conftest import csrf_token_from

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")

REPS = [
    ("ana.rep@example.com", "Ana Rep", "Sales / EMEA / Enterprise", "EMEA", "Enterprise", "Europe/Berlin"),
    ("ben.rep@example.com", "Ben Rep", "Sales / EMEA / Enterprise", "EMEA", "Enterprise", "Europe/London"),
    ("cai.rep@example.com", "Cai Rep", "Sales / EMEA / Mid-Market", "EMEA", "Mid-Market", "Europe/Paris"),
    ("dee.rep@example.com", "Dee Rep", "Sales / NA / SMB", "NA", "SMB", "America/Chicago"),
    ("eve.rep@example.com", "Eve Rep", "Sales / NA / SMB", "NA", "SMB", "America/New_York"),
    ("fay.rep@example.com", "Fay Rep", "Sales / NA / SMB", "NA", "SMB", "America/Denver"),
]

QUESTIONS = [
    {"key": "confidence", "type": "scale", "prompt": "How confident are you?", "scale_max": 5, "favorable_min": 4,
     "low_label": "Not at all", "high_label": "Very"},
    {"key": "recommend", "type": "nps", "prompt": "Would you recommend us?"},
    {"key": "lost_deal", "type": "yes_no", "prompt": "Did you lose a deal?"},
    {"key": "lost_to", "type": "single_choice", "prompt": "Lost to whom?",
     "options": [{"key": "acme", "label": "Acme"}, {"key": "globex", "label": "Globex"}],
     "show_if": {"question": "lost_deal", "equals": "yes"}},
    {"key": "gaps", "type": "multi_choice", "prompt": "Missing features?", "required": False,
     "options": [{"key": "sso", "label": "SSO"}, {"key": "api", "label": "API"}, {"key": "mobile", "label": "Mobile"}]},
    {"key": "deals", "type": "number", "prompt": "Deals closed?", "min": 0, "max": 50, "unit": "deals"},
    {"key": "notes", "type": "text", "prompt": "Anything else?", "required": False, "max_length": 500},
]


def people_payload():
    return [
        {"email": e, "name": n, "roles": ["rep"], "team": t, "region": r, "segment": s, "timezone": z}
        for e, n, t, r, s, z in REPS
    ]


def set_up_org_and_cadence(client, headers, confidentiality="attributed", reminder_days=(2,), **cadence_fields):
    response = client.post("/api/v1/people", json=people_payload(), headers=headers)
    assert response.status_code == 200, response.text
    assert (response.json["created"], response.json["updated"]) == (len(REPS), 0)
    response = client.post(
        "/api/v1/question-sets",
        json={"name": "Pulse", "description": "Monthly", "confidentiality": confidentiality,
              "min_group_size": 3, "questions": QUESTIONS},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    set_id = response.json["id"]
    response = client.post(f"/api/v1/question-sets/{set_id}/publish", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json["number"] == 1 and response.json["status"] == "published"
    response = client.post(
        "/api/v1/cadences",
        json={"name": "Monthly pulse", "question_set_id": set_id, "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
              "send_time": "09:00", "timezone": "America/New_York", "open_days": 5,
              "reminder_days": list(reminder_days), "audience": {"teams": ["Sales"]}, "starts_on": "2026-01-01",
              **cadence_fields},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def first_opening(client, headers) -> datetime:
    """Set up the org and cadence; when does its first round open?"""
    cadence = set_up_org_and_cadence(client, headers)
    preview = client.get(f"/api/v1/cadences/{cadence['id']}/preview?count=1", headers=headers)
    return instant(preview.json["occurrences"][0]["opens_at"])


def link_path(message) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"http://canary\.test(/r/[A-Za-z0-9_.\-]+)", text)
    assert match, text
    return match.group(1)


def answer_through_link(client, path, answers: dict):
    page = client.get(path)
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_token_from(page.text), **answers}
    return client.post(path, data=data)
