"""Recurrence: when does a cadence open its rounds? Pure functions, no database.

A cadence's RRULE (RFC 5545, python-dateutil) is expanded in *local wall-clock
time* from its start date and send time, then each local occurrence is placed
in its time zone. Expanding in local time is what keeps "09:00 on the first
Monday" at 09:00 across daylight-saving changes. A local time that does not
exist (spring-forward gap) moves forward by the gap; an ambiguous one (the
repeated autumn hour) takes its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

# With "send at 09:00 in each recipient's own zone" a round opens when the
# earliest zone on Earth reaches the send time and closes when the latest one
# reaches the close, so everyone gets the whole window.
EARLIEST_ZONE = ZoneInfo("Etc/GMT-14")
LATEST_ZONE = ZoneInfo("Etc/GMT+12")
RECIPIENT = "recipient"

PRESETS = {
    "weekly_monday": ("Weekly on Monday", "FREQ=WEEKLY;BYDAY=MO"),
    "biweekly_friday": ("Every other Friday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"),
    "monthly_first_monday": ("Monthly on the first Monday", "FREQ=MONTHLY;BYDAY=+1MO"),
    "monthly_1st": ("Monthly on the 1st", "FREQ=MONTHLY;BYMONTHDAY=1"),
    "monthly_last_friday": ("Monthly on the last Friday", "FREQ=MONTHLY;BYDAY=-1FR"),
    "monthly_last_business_day": (
        "Monthly on the last business day",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    ),
    "quarterly_first_weekday": (
        "Quarterly on the first weekday of the quarter",
        "FREQ=MONTHLY;INTERVAL=3;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1",
    ),
}


class RecurrenceError(ValueError):
    """A recurrence the user gave that cannot be used; the message says why."""


# A single occurrence may be moved by at most this many days either way.
MAX_MOVE_DAYS = 31


@dataclass(frozen=True)
class Override:
    """A PM's change to one occurrence: skip it, or open it on another date."""

    action: str  # "skip" or "move"
    opens_on: date | None = None


@dataclass(frozen=True)
class Occurrence:
    period_key: str
    scheduled_at: datetime  # aware UTC: when the round opens
    closes_at: datetime  # aware UTC
    local_date: date  # the occurrence's date in the cadence's zone
    skip: bool = False  # a PM skipped it: record it, send nothing
    moved_from: date | None = None  # the date the series gave, when moved

    def reminder_times(self, reminder_days, zone: ZoneInfo) -> list[datetime]:
        """Reminder instants at the same local time N days after opening,
        capped before the close."""
        local_open = self.scheduled_at.astimezone(zone)
        times = []
        for days in sorted(set(reminder_days)):
            due = place_local(local_open.replace(tzinfo=None) + timedelta(days=days), zone)
            if due < self.closes_at:
                times.append(due)
        return times


def zone_for(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(f"unknown time zone {name!r}") from None


def parse_send_time(text: str) -> time:
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise RecurrenceError(f"send time must be HH:MM, got {text!r}") from None


def place_local(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time in `zone`, as aware UTC.

    Nonexistent times (DST gap) move forward by the gap; ambiguous ones take
    the first occurrence (fold=0)."""
    # zoneinfo resolves a gap time with fold=0 using the offset from before the
    # change, which lands just after the gap: exactly "moved forward".
    return local.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)


def parse_rule(rule_text: str, dtstart: datetime) -> rrule:
    text = (rule_text or "").strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text:
        raise RecurrenceError("the recurrence is empty")
    if "DTSTART" in text.upper():
        raise RecurrenceError("give the start date separately, not as DTSTART in the rule")
    try:
        rule = rrulestr(text, dtstart=dtstart)
    except (ValueError, TypeError) as error:
        raise RecurrenceError(f"not a valid RRULE: {error}") from None
    if not isinstance(rule, rrule):
        raise RecurrenceError("give one RRULE, not a set")
    if rule._freq not in (YEARLY, MONTHLY, WEEKLY, DAILY):
        raise RecurrenceError("the recurrence must be daily, weekly, monthly or yearly")
    return rule


# How many periods of each frequency make 400 Gregorian years: the calendar,
# weekdays included, repeats exactly after that.
_PERIODS_PER_400_YEARS = {DAILY: 146_097, WEEKLY: 20_871, MONTHLY: 4_800, YEARLY: 400}
_MAX_CYCLES = 19


def validate_rule(rule_text: str) -> None:
    """Raise RecurrenceError unless the rule yields at least one occurrence.

    dateutil looks for a first occurrence up to the year 9999: for a rule that
    never occurs (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) that is seconds of CPU
    (issue 13). The calendar repeats every 400 years, so the same question is
    asked k*400 years later, where a whole number of intervals fits in the
    shift (k = INTERVAL always does for an interval up to 19): dateutil then
    has at most a few centuries left to search. A larger interval is searched
    where it is, at a cost divided by the interval."""
    start = datetime(2026, 1, 1, 9, 0)
    rule = parse_rule(rule_text, start)
    period = _PERIODS_PER_400_YEARS[rule._freq]
    interval = rule._interval
    cycles = next((k for k in range(_MAX_CYCLES, 0, -1) if (k * period) % interval == 0), 0)
    if cycles:
        shifted_start = start.replace(year=start.year + 400 * cycles)
        until = rule._until
        if until is not None:
            if until < start:
                raise RecurrenceError("the recurrence never occurs")
            if until.year + 400 * cycles > 9999:
                until = None  # beyond the shifted search anyway
            else:
                until = until.replace(year=until.year + 400 * cycles)
        rule = rule.replace(dtstart=shifted_start, until=until)
    if rule[0:1] == []:
        raise RecurrenceError("the recurrence never occurs")


# -- Period keys ----------------------------------------------------------------


def _month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _quarter_key(d: date) -> str:
    return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"


def _week_key(d: date) -> str:
    year, week, _ = d.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _year_key(d: date) -> str:
    return f"{d.year:04d}"


def _date_key(d: date) -> str:
    return d.isoformat()


def period_key_function(rule: rrule):
    """Pick the coarsest period naming that is unique for this rule: a monthly
    pulse is "2026-11", quarterly "2026-Q4", weekly "2026-W48"; a rule with
    several occurrences per period falls back to the open date."""
    interval = rule._interval
    candidates = {
        YEARLY: [_year_key],
        MONTHLY: ([_quarter_key] if interval % 3 == 0 else []) + [_month_key],
        WEEKLY: [_week_key],
        DAILY: [],
    }[rule._freq]
    sample = [d.date() for d in rule[0:60]]
    for key_of in candidates:
        keys = [key_of(d) for d in sample]
        if len(set(keys)) == len(keys):
            return key_of
    return _date_key


# -- Expansion --------------------------------------------------------------------


def occurrences(
    rule_text: str,
    starts_on: date,
    send_time: str,
    tz_name: str,
    open_days: int,
    *,
    after: datetime | None = None,
    until: datetime | None = None,
    ends_on: date | None = None,
    limit: int = 100,
    overrides: dict[str, Override] | None = None,
) -> list[Occurrence]:
    """Occurrences whose open instant is > `after` (or all from the start) and
    <= `until`, at most `limit` of them, in order. `overrides` (by period key)
    skip an occurrence or move it to another date without shifting the rest."""
    send = parse_send_time(send_time)
    zone = EARLIEST_ZONE if tz_name == RECIPIENT else zone_for(tz_name)
    close_zone = LATEST_ZONE if tz_name == RECIPIENT else zone
    overrides = overrides or {}
    dtstart = datetime.combine(starts_on, send)
    rule = parse_rule(rule_text, dtstart)
    key_of = period_key_function(rule)
    # A moved occurrence may land up to MAX_MOVE_DAYS away from where the
    # series put it, so look that much further either way, then sort.
    margin = timedelta(days=MAX_MOVE_DAYS + 2) if overrides else timedelta(days=2)
    cursor = dtstart
    if after is not None:
        cursor = max(dtstart, after.astimezone(zone).replace(tzinfo=None) - margin)
    horizon = until.astimezone(zone).replace(tzinfo=None) + margin if until is not None else None
    result = []
    for natural in rule.xafter(cursor, inc=True):
        if ends_on is not None and natural.date() > ends_on:
            break
        if horizon is not None and natural > horizon:
            break
        key = key_of(natural.date())
        override = overrides.get(key)
        local = natural
        if override is not None and override.action == "move" and override.opens_on is not None:
            local = datetime.combine(override.opens_on, send)
        opens = place_local(local, zone)
        if (after is not None and opens <= after) or (until is not None and opens > until):
            continue
        closes = place_local(local + timedelta(days=open_days), close_zone)
        result.append(
            Occurrence(
                key,
                opens,
                closes,
                local.date(),
                skip=override is not None and override.action == "skip",
                moved_from=natural.date() if local is not natural else None,
            )
        )
        if horizon is None and len(result) >= limit + (MAX_MOVE_DAYS if overrides else 0):
            break
    result.sort(key=lambda o: o.scheduled_at)
    return result[:limit]


def recipient_send_instant(local_date: date, send_time: str, tz_name: str) -> datetime:
    """The instant a person in `tz_name` gets the invitation for `local_date`."""
    return place_local(datetime.combine(local_date, parse_send_time(send_time)), zone_for(tz_name))


def describe(rule_text: str) -> str:
    for label, preset in PRESETS.values():
        if preset == rule_text:
            return label
    return rule_text
