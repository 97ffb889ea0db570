"""Occurrences around a cadence's creation: what the preview promises is what
the tick does, at whatever instant the suite runs (`pytest --calendar-sweep`
runs this module at a dozen instants across a year)."""

from datetime import timedelta

from sqlalchemy import select

from cadence.models import Round
from cadence.planner import tick
from surveys.extensions import db
from tests.builders.loop import instant, set_up_org_and_cadence

WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def weekly_on(day) -> str:
    return f"FREQ=WEEKLY;BYDAY={WEEKDAYS[day.weekday()]}"


def preview(client, headers, cadence_id, count=3):
    response = client.get(f"/api/v1/cadences/{cadence_id}/preview?count={count}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json["occurrences"]


def test_an_occurrence_whose_window_was_open_at_creation_is_previewed_as_due_and_opened_late_by_the_next_tick(
        app, client, api_token, clock, smtp, redis_conn):
    headers = api_token()
    now = clock()
    yesterday = (now - timedelta(days=1)).date()
    # Weekly on yesterday's weekday at 09:00 UTC, open three days: yesterday's window is open now,
    # last week's closed days before the cadence existed.
    cadence = set_up_org_and_cadence(client, headers, rrule=weekly_on(yesterday), timezone="UTC",
                                     open_days=3, reminder_days=[])
    first, second, third = preview(client, headers, cadence["id"])
    assert instant(first["opens_at"]).date() == yesterday and first["due_now"] is True
    assert instant(first["closes_at"]) > now
    assert second["due_now"] is False and instant(second["opens_at"]) == instant(first["opens_at"]) + timedelta(days=7)

    report = tick(now)
    assert report.opened == [f"Monthly pulse {first['period_key']} (late)"] and report.skipped == []
    rounds = db.session.scalars(select(Round)).all()
    assert [(r.period_key, r.status, r.late) for r in rounds] == [(first["period_key"], "open", True)]

    # A period with a round is never offered again; the next is the one after.
    assert [o["period_key"] for o in preview(client, headers, cadence["id"], count=2)] == [
        second["period_key"], third["period_key"]]
    assert not tick(now + timedelta(minutes=1)).opened


def test_an_occurrence_that_closed_before_the_cadence_existed_is_neither_offered_nor_recorded(
        app, client, api_token, clock, smtp, redis_conn):
    headers = api_token()
    now = clock()
    four_days_ago = (now - timedelta(days=4)).date()
    # Its window (three days from 09:00 four days ago) closed before now.
    cadence = set_up_org_and_cadence(client, headers, rrule=weekly_on(four_days_ago), timezone="UTC",
                                     open_days=3, reminder_days=[])
    first = preview(client, headers, cadence["id"], count=1)[0]
    assert first["due_now"] is False and instant(first["opens_at"]).date() == four_days_ago + timedelta(days=7)
    report = tick(now)
    assert report.opened == [] and report.skipped == []
    assert db.session.scalars(select(Round)).all() == []
    assert tick(instant(first["opens_at"])).opened == [f"Monthly pulse {first['period_key']}"]


def test_a_cadence_started_years_before_it_was_created_opens_its_current_round_without_recording_the_past(
        app, client, api_token, clock, smtp, redis_conn):
    headers = api_token()
    now = clock()
    # Daily since 2020: more than the tick's catch-up limit of past occurrences, none ever missed.
    cadence = set_up_org_and_cadence(client, headers, rrule="FREQ=DAILY", timezone="UTC", open_days=2,
                                     reminder_days=[], starts_on="2020-01-01")
    due = [o for o in preview(client, headers, cadence["id"], count=5) if o["due_now"]]
    assert len(due) == 2  # two windows are open at any instant: they last two days
    report = tick(now)
    assert report.skipped == []
    assert report.opened == [f"Monthly pulse {o['period_key']} (late)" if now - instant(o["opens_at"]) > timedelta(minutes=15)
                             else f"Monthly pulse {o['period_key']}" for o in due]
