"""Configuration comes from the environment; production refuses weak setups."""

import pytest

from config import ProductionConfig, database_url
from surveys.app import create_app


def test_postgres_urls_use_psycopg3():
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_local_use_generates_a_secret_key_once(tmp_path):
    settings = {"CANARY_ENV": "development", "SECRET_KEY": None, "INSTANCE_DIR": str(tmp_path),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    first = create_app(dict(settings)).config["SECRET_KEY"]
    second = create_app(dict(settings)).config["SECRET_KEY"]
    assert len(first) >= 64 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("key", [None, "", "change-me", "short"])
def test_production_refuses_a_missing_or_weak_secret_key(tmp_path, key):
    class Weak(ProductionConfig):
        SECRET_KEY = key
        INSTANCE_DIR = str(tmp_path)

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(Weak)


def test_production_refuses_debug(tmp_path):
    class Debugging(ProductionConfig):
        SECRET_KEY = "x" * 40
        DEBUG = True
        INSTANCE_DIR = str(tmp_path)

    with pytest.raises(RuntimeError, match="DEBUG"):
        create_app(Debugging)


def test_behind_a_transaction_pooler_psycopg_prepares_no_statement(tmp_path):
    settings = {"CANARY_ENV": "development", "SECRET_KEY": "x" * 40, "INSTANCE_DIR": str(tmp_path),
                "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://canary@db.example/canary"}
    direct = create_app(dict(settings, DATABASE_POOLER="none")).config["SQLALCHEMY_ENGINE_OPTIONS"]
    pooled = create_app(dict(settings, DATABASE_POOLER="transaction")).config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert "prepare_threshold" not in direct.get("connect_args", {})
    assert pooled["connect_args"]["prepare_threshold"] is None and pooled["pool_pre_ping"] is True
    with pytest.raises(RuntimeError, match="DATABASE_POOLER"):
        create_app(dict(settings, DATABASE_POOLER="session"))


def test_security_headers_on_every_page(client):
    response = client.get("/sign-in")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
