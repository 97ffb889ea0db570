"""The one clock. Code that decides by time takes `now` as an argument; only
entry points (the tick job, views, model defaults) read the clock, through
`utcnow()`.

An app may be given its own clock (`CLOCK` in its config: a callable that
returns an aware datetime). The tests pass one in so that the suite's result
never depends on the day it runs; production never sets it.
"""

from datetime import datetime, timedelta, timezone

from flask import current_app, has_app_context


def system_now() -> datetime:
    return datetime.now(timezone.utc)


def utcnow() -> datetime:
    if has_app_context():
        clock = current_app.config.get("CLOCK")
        if clock is not None:
            return clock()
    return system_now()


class FixedClock:
    """A clock that stands still at one instant until it is moved."""

    def __init__(self, instant: datetime):
        self.instant = instant.astimezone(timezone.utc)

    def __call__(self) -> datetime:
        return self.instant

    def set(self, instant: datetime) -> None:
        self.instant = instant.astimezone(timezone.utc)

    def advance(self, delta: timedelta) -> None:
        self.instant += delta


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; a value without an offset is taken as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def isoformat_z(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as the API promises."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
