"""One named time zone per viewer: staff pages show every time in the
viewer's own zone, named as people name it; a rep's pages and emails use the
rep's zone; greetings use first names."""

import re
from datetime import timedelta

from sqlalchemy import select

from cadence.planner import tick
from surveys.audit import AuditEvent
from surveys.extensions import db
from surveys.formatting import local_time
from surveys.org.models import Person
from tests.builders.loop import first_opening, link_path, set_up_org_and_cadence
from tests.conftest import csrf_token_from, run_worker

# A time as pages print it: "Tue 01 Dec 2026, 09:00 <zone>".
PRINTED_TIME = re.compile(r"\w{3} \d\d \w{3} \d{4}, \d\d:\d\d ([A-Za-z][\w ]*?)(?=<|\)|$|\s·|;|\.|,)")


def _viewer(signed_in_client, zone, roles=("pm", "leader", "admin"), email="viewer@example.com"):
    client = signed_in_client(roles=roles, email=email)
    person = db.session.scalar(select(Person).where(Person.email == email))
    person.timezone = zone
    db.session.commit()
    return client


def _zones_printed(html: str) -> set[str]:
    return {match.group(1).strip() for match in PRINTED_TIME.finditer(html)}


def test_a_zone_without_an_abbreviation_is_named_by_its_city_not_by_an_offset():
    from datetime import datetime, timezone

    instant = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    assert local_time(instant, "America/Sao_Paulo") == "Tue 01 Dec 2026, 09:00 Sao Paulo time"
    assert local_time(instant, "America/Los_Angeles") == "Tue 01 Dec 2026, 04:00 PST"
    assert local_time(instant, "Europe/Berlin") == "Tue 01 Dec 2026, 13:00 CET"
    assert local_time(instant, "Asia/Kolkata") == "Tue 01 Dec 2026, 17:30 IST"


def test_staff_pages_show_every_time_in_the_viewers_zone(app, client, api_token, signed_in_client, smtp, redis_conn):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers)  # sent at 09:00 New York time
    opening = client.get(f"/api/v1/cadences/{cadence['id']}/preview?count=1", headers=headers).json
    tick(datetime_of(opening["occurrences"][0]["opens_at"]) + timedelta(minutes=1))
    run_worker(app)
    viewer = _viewer(signed_in_client, "America/Sao_Paulo")

    cadence_page = viewer.get(f"/cadences/{cadence['id']}").text
    # The viewer's zone first; the cadence's own zone beside it, since its rule is written in it.
    assert _zones_printed(cadence_page) - {"EST", "EDT"} == {"Sao Paulo time"}
    assert _zones_printed(cadence_page) & {"EST", "EDT"}
    assert not re.search(r"\d\d:\d\d -03", cadence_page)
    for path in ("/cadences/", "/cadences/operations", "/cadences/outbox", "/admin/audit/", "/account/", "/"):
        page = viewer.get(path, follow_redirects=True)
        assert page.status_code == 200, path
        assert _zones_printed(page.text) <= {"Sao Paulo time"}, (path, _zones_printed(page.text))
        assert "Times are shown in your time zone, America/Sao_Paulo" in page.text, path
    assert _zones_printed(viewer.get("/admin/audit/").text) == {"Sao Paulo time"}

    # Someone in another zone reads the same instants in theirs.
    other = _viewer(signed_in_client, "Europe/Berlin", email="berlin@example.com")
    assert _zones_printed(other.get(f"/cadences/{cadence['id']}").text) - {"EST", "EDT"} <= {"CET", "CEST"}


def test_a_rep_reads_times_in_their_own_zone_and_is_greeted_by_first_name(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    opens = first_opening(client, headers)
    rep = db.session.scalar(select(Person).where(Person.email == "dee.rep@example.com"))
    rep.timezone, rep.name = "America/Sao_Paulo", "Dee Ramos Silva"
    db.session.commit()
    tick(opens + timedelta(minutes=1))
    run_worker(app)
    smtp.wait_for(6)
    message = next(m for m in smtp.messages if m["To"].addresses[0].addr_spec == "dee.rep@example.com")
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert text.startswith("Hi Dee,")
    form = client.get(link_path(message)).text
    assert _zones_printed(form) == {"Sao Paulo time"} and not re.search(r"\d\d:\d\d -03", form)


def test_a_person_chooses_their_zone_and_a_bad_one_changes_nothing(app, signed_in_client):
    viewer = _viewer(signed_in_client, "UTC")
    page = viewer.get("/account/")
    bad = viewer.post("/account/time-zone", data={"timezone": "Mars/Olympus", "csrf_token": csrf_token_from(page.text)})
    assert bad.status_code == 422 and 'id="error-summary"' in bad.text
    person = db.session.scalar(select(Person).where(Person.email == "viewer@example.com"))
    assert person.timezone == "UTC"
    good = viewer.post("/account/time-zone", data={"timezone": "Asia/Tokyo", "csrf_token": csrf_token_from(page.text)})
    assert good.status_code == 302
    db.session.expire_all()
    assert db.session.get(Person, person.id).timezone == "Asia/Tokyo"
    assert "Times are shown in your time zone, Asia/Tokyo" in viewer.get("/account/").text
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "person.timezone_changed"))
    assert event.details == {"from": "UTC", "to": "Asia/Tokyo"}


def datetime_of(text):
    from tests.builders.loop import instant

    return instant(text)
