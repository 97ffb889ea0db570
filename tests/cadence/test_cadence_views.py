"""The cadence pages and API: a PM schedules a published set for an audience."""

import re
from datetime import date

from sqlalchemy import func, select

from cadence.models import Cadence
from surveys.extensions import db
from tests.conftest import csrf_token_from
from tests.builders.loop import QUESTIONS, people_payload


def published_set(client, headers):
    assert client.post("/api/v1/people", json=people_payload(), headers=headers).status_code == 200
    created = client.post("/api/v1/question-sets", json={"name": "Pulse", "questions": QUESTIONS}, headers=headers)
    client.post(f"/api/v1/question-sets/{created.json['id']}/publish", headers=headers)
    return created.json["id"]


def test_pm_creates_a_monthly_cadence_for_an_audience_and_sees_the_preview(app, api_token, signed_in_client):
    set_id = published_set(app.test_client(), api_token())
    pm = signed_in_client(roles=("pm",))
    form = pm.get("/cadences/new")
    assert form.status_code == 200
    data = {
        "csrf_token": csrf_token_from(form.text), "name": "EMEA pulse", "question_set_id": str(set_id),
        "preset": "monthly_first_monday", "send_time": "09:00", "timezone": "Europe/Berlin", "open_days": "5",
        "reminder_days": "2, 4", "teams": ["Sales / EMEA"], "regions": ["EMEA"],
    }
    response = pm.post("/cadences/new", data=data)
    assert response.status_code == 302, response.text
    cadence = db.session.scalar(select(Cadence))
    assert cadence.rrule == "FREQ=MONTHLY;BYDAY=+1MO" and cadence.reminder_days == [2, 4]
    assert cadence.audience == {"teams": ["Sales / EMEA"], "regions": ["EMEA"], "segments": []}
    page = pm.get(response.headers["Location"])
    assert page.status_code == 200
    assert "Monthly on the first Monday" in page.text
    # Five upcoming rounds, each at 09:00 Berlin time, with UTC beside it.
    assert len(re.findall(r"Mon \d\d \w{3} \d{4}, 09:00 CES?T", page.text)) >= 5
    assert len(re.findall(r"Mon \d\d \w{3} \d{4}, 0[78]:00 UTC", page.text)) >= 5


def test_bad_cadence_input_shows_field_errors_keeps_input_and_stores_nothing(app, api_token, signed_in_client):
    set_id = published_set(app.test_client(), api_token())
    pm = signed_in_client(roles=("pm",))
    form = pm.get("/cadences/new")
    data = {
        "csrf_token": csrf_token_from(form.text), "name": "Broken <b>pulse</b>", "question_set_id": str(set_id),
        "preset": "custom", "rrule": "FREQ=SOMETIMES", "send_time": "25:99", "timezone": "Mars/Olympus",
        "open_days": "5", "reminder_days": "7",
    }
    response = pm.post("/cadences/new", data=data)
    assert response.status_code == 422
    assert "not a valid RRULE" in response.text
    assert "unknown time zone" in response.text
    assert "HH:MM" in response.text
    assert "before the round closes" in response.text
    assert "Broken &lt;b&gt;pulse&lt;/b&gt;" in response.text  # kept, and escaped
    assert db.session.scalar(select(func.count(Cadence.id))) == 0


def test_cadence_api_validates_and_answers_problem_details(app, client, api_token):
    headers = api_token()
    set_id = published_set(client, headers)
    response = client.post("/api/v1/cadences", json={"name": "", "question_set_id": set_id, "rrule": "FREQ=MONTHLY",
                                                     "timezone": "Nowhere/City", "open_days": 0,
                                                     "audience": {"teams": ["No Such Team"]}}, headers=headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert set(response.json["errors"]) >= {"name", "timezone", "open_days", "audience.teams"}
    assert db.session.scalar(select(func.count(Cadence.id))) == 0

    good = client.post("/api/v1/cadences", json={"name": "Pulse", "question_set_id": set_id, "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
                                                 "timezone": "recipient", "reminder_days": [2]}, headers=headers)
    assert good.status_code == 201
    cadence_id = good.json["id"]
    assert good.json["next_open_at"].endswith("Z")
    paused = client.post(f"/api/v1/cadences/{cadence_id}/pause", headers=headers)
    assert paused.json["status"] == "paused"
    resumed = client.post(f"/api/v1/cadences/{cadence_id}/resume", headers=headers)
    assert resumed.json["status"] == "active"
    assert client.get(f"/api/v1/cadences/{cadence_id}/preview?count=0", headers=headers).status_code == 400
    assert client.get("/api/v1/cadences/999/preview", headers=headers).status_code == 404


def test_cadence_routes_check_roles(app, client, api_token, signed_in_client):
    assert client.get("/cadences/").status_code == 302  # to sign-in
    assert client.get("/api/v1/cadences").status_code == 401
    leader_headers = api_token(roles=("leader",), email="leader@example.com")
    assert client.get("/api/v1/cadences", headers=leader_headers).status_code == 200
    response = client.post("/api/v1/cadences", json={}, headers=leader_headers)
    assert response.status_code == 403 and response.mimetype == "application/problem+json"
    leader = signed_in_client(roles=("leader",), email="leader2@example.com")
    assert leader.get("/cadences/").status_code == 403
    assert leader.get("/cadences/outbox").status_code == 403


def summary_links(page_html):
    """The error summary's entries: (the field it links to, its text)."""
    summary = re.search(r'<div class="error-summary".*?</div>', page_html, re.S)
    assert summary, "no error summary on the page"
    return re.findall(r'<a href="#([^"]+)">([^<]*)</a>', summary.group(0))


def test_the_cadence_form_reports_every_error_in_one_pass(app, api_token, signed_in_client):
    """A blank name used to hide every other fault until it was fixed (issue 14)."""
    set_id = published_set(app.test_client(), api_token())
    pm = signed_in_client(roles=("pm",))
    form = pm.get("/cadences/new")
    data = {
        "csrf_token": csrf_token_from(form.text), "name": "", "question_set_id": str(set_id),
        "preset": "custom", "rrule": "", "send_time": "25:99", "timezone": "Mars/Olympus",
        "open_days": "5", "reminder_days": "7", "starts_on": "2027-03-01", "ends_on": "2027-01-01",
    }
    response = pm.post("/cadences/new", data=data)
    assert response.status_code == 422
    linked = dict(summary_links(response.text))
    assert set(linked) == {"name", "rrule", "send_time", "timezone", "reminder_days", "ends_on"}
    assert "Write the RRULE" in linked["rrule"] and "unknown time zone" in linked["timezone"]
    assert "before the round closes" in linked["reminder_days"] and "before the start date" in linked["ends_on"]
    assert response.text.index('id="error-summary"') < response.text.index('<form method="post" class="panel"')
    assert 'value="Mars/Olympus"' in response.text and 'value="2027-03-01"' in response.text  # kept
    assert db.session.scalar(select(func.count(Cadence.id))) == 0


def test_a_cadence_is_edited_on_its_page_and_the_change_is_audited(app, api_token, signed_in_client):
    from surveys.audit import AuditEvent

    headers = api_token()
    client = app.test_client()
    set_id = published_set(client, headers)
    created = client.post("/api/v1/cadences", json={"name": "Pulse", "question_set_id": set_id,
                                                    "rrule": "FREQ=MONTHLY;BYDAY=+1MO", "reminder_days": [2]},
                          headers=headers)
    cadence_id = created.json["id"]
    pm = signed_in_client(roles=("pm",))
    url = f"/cadences/{cadence_id}/edit"
    page = pm.get(url)
    assert page.status_code == 200
    assert 'value="Pulse"' in page.text and 'value="2"' in page.text
    assert '<option selected value="monthly_first_monday">' in page.text
    data = {"csrf_token": csrf_token_from(page.text), "name": "EMEA pulse", "question_set_id": str(set_id),
            "preset": "monthly_first_monday", "send_time": "09:00", "timezone": "UTC", "open_days": "",
            "reminder_days": "2, 4",
            # Unchanged: the day it was created, whatever the test's instant.
            "starts_on": db.session.get(Cadence, cadence_id).starts_on.isoformat()}
    db.session.get(Cadence, cadence_id).ends_on = date(2027, 12, 31)
    db.session.commit()
    refused = pm.post(url, data=data)
    assert refused.status_code == 422 and dict(summary_links(refused.text)).keys() == {"open_days"}
    assert 'value="EMEA pulse"' in refused.text  # kept
    saved = pm.post(url, data={**data, "open_days": "7"})
    assert saved.status_code == 302
    cadence = db.session.get(Cadence, cadence_id)
    db.session.refresh(cadence)
    assert (cadence.name, cadence.open_days, cadence.reminder_days) == ("EMEA pulse", 7, [2, 4])
    assert cadence.ends_on is None
    details = db.session.scalar(select(AuditEvent.details).where(AuditEvent.action == "cadence.updated"))
    assert details == {"changed": ["ends_on", "name", "open_days", "reminder_days"]}  # a blank end date clears it
    leader = signed_in_client(roles=("leader",), email="leader@example.com")
    assert leader.get(url).status_code == 403


def test_a_cadence_is_edited_through_the_api_field_by_field(app, client, api_token):
    from surveys.audit import AuditEvent

    headers = api_token()
    set_id = published_set(client, headers)
    created = client.post("/api/v1/cadences", json={"name": "Pulse", "question_set_id": set_id,
                                                    "rrule": "FREQ=MONTHLY;BYDAY=+1MO", "reminder_days": [2]},
                          headers=headers)
    url = f"/api/v1/cadences/{created.json['id']}"
    refused = client.patch(url, json={"timezone": "Mars/Olympus", "open_days": 0, "colour": "red"}, headers=headers)
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert set(refused.json["errors"]) >= {"open_days", "colour"}
    unknown_zone = client.patch(url, json={"timezone": "Mars/Olympus"}, headers=headers)
    assert unknown_zone.status_code == 422 and "timezone" in unknown_zone.json["errors"]
    leader = api_token(roles=("leader",), email="leader@example.com")
    assert client.patch(url, json={"name": "Mine"}, headers=leader).status_code == 403

    changed = client.patch(url, json={"name": "EMEA pulse", "reminder_days": [1, 3]}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json["name"], changed.json["reminder_days"]) == ("EMEA pulse", [1, 3])
    assert (changed.json["rrule"], changed.json["starts_on"]) == (created.json["rrule"], created.json["starts_on"])
    details = db.session.scalar(select(AuditEvent.details).where(AuditEvent.action == "cadence.updated"))
    assert details == {"changed": ["name", "reminder_days"]}
