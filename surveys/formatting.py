"""Jinja filters and globals shared by every template."""

from zoneinfo import ZoneInfo

from flask_login import current_user


def viewer_timezone() -> str:
    """The zone a signed-in person reads times in (their own), else UTC."""
    if current_user and current_user.is_authenticated:
        return current_user.timezone or "UTC"
    return "UTC"


def _zone(tz_name):
    try:
        return ZoneInfo(tz_name) if tz_name and tz_name != "recipient" else ZoneInfo("UTC")
    except Exception:
        return ZoneInfo("UTC")


def zone_label(instant, zone: ZoneInfo) -> str:
    """A zone as people name it: its abbreviation where it has one ("PST",
    "CET", "UTC"), else its city ("São Paulo" has only "-03", which reads as
    a typo)."""
    abbreviation = instant.astimezone(zone).tzname() or ""
    if abbreviation.isalpha():
        return abbreviation
    return zone.key.rsplit("/", 1)[-1].replace("_", " ") + " time"


def local_time(value, tz_name=None, fmt="%a %d %b %Y, %H:%M %Z"):
    """Show an instant in one zone, named ("%Z" becomes `zone_label`): the
    viewer's own unless a zone is given (a rep's pages and emails give the
    rep's); "recipient" falls back to UTC."""
    if value is None:
        return ""
    zone = _zone(tz_name or viewer_timezone())
    fmt = fmt.replace("%Z", zone_label(value, zone).replace("%", "%%"))
    return value.astimezone(zone).strftime(fmt)


def first_name(name: str | None) -> str:
    """What a greeting calls someone: the first word of their name."""
    return (name or "").split(" ")[0] or "there"


def percent(value, digits=1):
    if value is None:
        return "–"
    return f"{value:.{digits}f} %"


def signed(value, digits=1, unit=""):
    if value is None:
        return "–"
    return f"{value:+.{digits}f}{unit}"


def number(value, digits=1):
    if value is None:
        return "–"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def register(app):
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["first_name"] = first_name
    app.jinja_env.globals["viewer_timezone"] = viewer_timezone
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.filters["signed"] = signed
    app.jinja_env.filters["number"] = number
    app.jinja_env.globals["current_user"] = current_user
