"""Recurrence in local wall-clock time: DST, half-hour zones, gaps, period keys."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.recurrence import PRESETS, RecurrenceError, occurrences, validate_rule

UTC = timezone.utc


def local_times(rule, start, send, zone, count=12, open_days=5):
    return [o.scheduled_at.astimezone(ZoneInfo(zone)) for o in occurrences(rule, start, send, zone, open_days, limit=count)]


def test_new_york_monthly_opens_at_nine_local_across_both_dst_changes():
    found = {o.period_key: o for o in occurrences("FREQ=MONTHLY;BYMONTHDAY=10", date(2026, 1, 1), "09:00", "America/New_York", 5, limit=12)}
    # 10 March 2026 is after the spring change (8 March): EDT, UTC-4.
    assert found["2026-03"].scheduled_at == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
    # 10 November 2026 is after the autumn change (1 November): EST, UTC-5.
    assert found["2026-11"].scheduled_at == datetime(2026, 11, 10, 14, 0, tzinfo=UTC)
    for item in found.values():
        assert item.scheduled_at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "09:00"


def test_window_that_spans_a_dst_change_closes_at_local_send_time():
    # Opens 5 March (EST), closes 5 days later on 10 March (EDT), both 09:00 local.
    item = occurrences("FREQ=MONTHLY;BYMONTHDAY=5", date(2026, 3, 1), "09:00", "America/New_York", 5, limit=1)[0]
    assert item.closes_at.astimezone(ZoneInfo("America/New_York")).strftime("%d %H:%M") == "10 09:00"
    assert item.closes_at - item.scheduled_at == timedelta(days=5) - timedelta(hours=1)


def test_sydney_and_kolkata_half_hour_offset():
    sydney = local_times("FREQ=MONTHLY;BYMONTHDAY=15", date(2026, 1, 1), "09:00", "Australia/Sydney")
    assert {t.strftime("%H:%M") for t in sydney} == {"09:00"}
    assert {t.utcoffset() for t in sydney} == {timedelta(hours=11), timedelta(hours=10)}
    kolkata = occurrences("FREQ=WEEKLY;BYDAY=MO", date(2026, 1, 1), "09:00", "Asia/Kolkata", 3, limit=2)
    assert kolkata[0].scheduled_at == datetime(2026, 1, 5, 3, 30, tzinfo=UTC)
    assert kolkata[0].period_key == "2026-W02"


def test_send_time_in_the_spring_gap_moves_forward_and_the_overlap_takes_the_first():
    # 02:30 does not exist in New York on 8 March 2026: it becomes 03:30 EDT.
    gap = occurrences("FREQ=DAILY", date(2026, 3, 8), "02:30", "America/New_York", 1, limit=1)[0]
    assert gap.scheduled_at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert gap.scheduled_at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "03:30"
    # 01:30 happens twice on 1 November 2026: the first one (EDT) is used.
    overlap = occurrences("FREQ=DAILY", date(2026, 11, 1), "01:30", "America/New_York", 1, limit=1)[0]
    assert overlap.scheduled_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_period_keys_follow_the_rule():
    monthly = occurrences(PRESETS["monthly_first_monday"][1], date(2026, 1, 1), "09:00", "UTC", 5, limit=3)
    assert [o.period_key for o in monthly] == ["2026-01", "2026-02", "2026-03"]
    quarterly = occurrences(PRESETS["quarterly_first_weekday"][1], date(2026, 1, 1), "09:00", "UTC", 5, limit=3)
    assert [o.period_key for o in quarterly] == ["2026-Q1", "2026-Q2", "2026-Q3"]
    assert [o.local_date for o in quarterly] == [date(2026, 1, 1), date(2026, 4, 1), date(2026, 7, 1)]
    weekly = occurrences(PRESETS["biweekly_friday"][1], date(2026, 11, 23), "09:00", "UTC", 5, limit=2)
    assert [o.period_key for o in weekly] == ["2026-W48", "2026-W50"]
    twice_a_month = occurrences("FREQ=MONTHLY;BYMONTHDAY=1,15", date(2026, 1, 1), "09:00", "UTC", 5, limit=2)
    assert [o.period_key for o in twice_a_month] == ["2026-01-01", "2026-01-15"]
    last_business = occurrences(PRESETS["monthly_last_business_day"][1], date(2026, 1, 1), "09:00", "UTC", 3, limit=3)
    assert [o.local_date for o in last_business] == [date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 31)]


def test_bad_rules_are_refused_with_a_reason():
    for rule, reason in [("", "empty"), ("FREQ=SOMETIMES", "not a valid RRULE"), ("FREQ=HOURLY", "daily, weekly"),
                         ("DTSTART:20260101T000000\nRRULE:FREQ=DAILY", "start date")]:
        with pytest.raises(RecurrenceError, match=reason):
            validate_rule(rule)


ZONES = ["America/New_York", "Australia/Sydney", "Asia/Kolkata", "Europe/London", "Pacific/Chatham", "UTC"]


@settings(max_examples=60, deadline=None)
@given(
    preset=st.sampled_from(sorted(PRESETS)),
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45]),
    start=st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31)),
)
def test_every_occurrence_lands_at_the_local_send_time_with_unique_ordered_keys(preset, zone, hour, minute, start):
    send = f"{hour:02d}:{minute:02d}"
    items = occurrences(PRESETS[preset][1], start, send, zone, 3, limit=15)
    assert items
    keys = [o.period_key for o in items]
    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys)
    instants = [o.scheduled_at for o in items]
    assert instants == sorted(instants)
    tz = ZoneInfo(zone)
    for item in items:
        local = item.scheduled_at.astimezone(tz)
        naive = datetime.combine(item.local_date, datetime.strptime(send, "%H:%M").time())
        if local.replace(tzinfo=None) != naive:
            # Only a send time inside a DST gap may move, and only forward.
            assert local.replace(tzinfo=None) > naive
            assert local.replace(tzinfo=None) - naive <= timedelta(hours=1)
        assert item.closes_at > item.scheduled_at
