"""Jinja filters and globals shared by every template."""

from zoneinfo import ZoneInfo

from flask_login import current_user


def local_time(value, tz_name="UTC", fmt="%a %d %b %Y, %H:%M %Z"):
    """Show an instant in a zone people read; "recipient" falls back to UTC."""
    if value is None:
        return ""
    try:
        zone = ZoneInfo(tz_name) if tz_name and tz_name != "recipient" else ZoneInfo("UTC")
    except Exception:
        zone = ZoneInfo("UTC")
    return value.astimezone(zone).strftime(fmt)


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
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.filters["signed"] = signed
    app.jinja_env.filters["number"] = number
    app.jinja_env.globals["current_user"] = current_user
