"""Canary's web application: the app factory.

`create_app` binds the extensions, registers blueprints, CLI commands, error
handlers and security headers. It does no I/O beyond reading configuration:
no create_all, no migrations, no Redis connection (that is made on first use).
"""

import secrets
from pathlib import Path

from flask import Flask, request

import config as config_module
from surveys.extensions import csrf, db, login_manager, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config=None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(config_module.INSTANCE_DIR),
    )
    load_config(app, config)
    register_extensions(app)
    register_models()
    register_blueprints(app)
    register_commands(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_template_helpers(app)
    return app


def load_config(app, config):
    if config is None:
        config = config_module.config_for_environment()
    if isinstance(config, dict):
        base = config_module.CONFIGS[config.get("CANARY_ENV", "testing" if config.get("TESTING") else "development")]
        app.config.from_object(base)
        app.config.update(config)
    else:
        app.config.from_object(config)
    app.config["SECRET_KEY"] = resolve_secret_key(app)
    configure_database_pooler(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


POOLERS = ("none", "transaction")


def configure_database_pooler(app):
    """Behind a transaction-mode pooler each transaction may run on another
    server connection, and a prepared statement lives on one: psycopg must
    not prepare any (it does after a query's fifth run by default). Canary
    keeps no other state between transactions (no SET, advisory locks,
    LISTEN or temporary tables)."""
    pooler = app.config.get("DATABASE_POOLER") or "none"
    if pooler not in POOLERS:
        raise RuntimeError(f"DATABASE_POOLER must be one of {', '.join(POOLERS)}, got {pooler!r}")
    if pooler == "transaction" and app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def resolve_secret_key(app) -> str:
    """Production must be given a real key; local use keeps one in instance/."""
    key = app.config.get("SECRET_KEY")
    if app.config["CANARY_ENV"] == "production":
        if not key or len(key) < 32 or key in ("change-me", "dev", "secret"):
            raise RuntimeError("SECRET_KEY must be set to a random value of 32+ characters in production")
        if app.config.get("DEBUG"):
            raise RuntimeError("DEBUG must be off in production")
        return key
    if key:
        return key
    key_file = Path(app.config["INSTANCE_DIR"]) / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def register_extensions(app):
    from flask.json.provider import DefaultJSONProvider

    from surveys import limits

    class LimitedJSONProvider(DefaultJSONProvider):
        """Every request.get_json parses within surveys.limits (issue 13)."""

        def loads(self, s, **kwargs):
            return limits.loads(s)

    app.json = LimitedJSONProvider(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    from surveys.auth import access  # noqa: F401  (registers the user loader)
    csrf.init_app(app)
    from surveys import security, sqlite_pragmas

    sqlite_pragmas.install()
    security.init_app(app)


def register_models():
    # Import every model module so metadata (and Flask-Migrate) sees all tables.
    import cadence.models  # noqa: F401
    import surveys.org.models  # noqa: F401
    import surveys.alert_models  # noqa: F401
    import surveys.audit  # noqa: F401
    import surveys.deals.models  # noqa: F401
    import surveys.feedback  # noqa: F401
    import surveys.models  # noqa: F401
    import surveys.triage.models  # noqa: F401


def register_blueprints(app):
    from surveys.org.views import people_bp
    from cadence.views import cadences_bp
    from surveys.alert_views import alerts_bp
    from surveys.api import openapi  # noqa: F401  (registers every API resource on api_bp)
    from surveys.api.base import api_bp
    from surveys.audit_views import audit_bp
    from surveys.auth.views import auth_bp
    from surveys.deals.pages import deal_pages_bp
    from surveys.deals.views import deals_bp
    from surveys.designer import designer_bp
    from surveys.health import health_bp
    from surveys.respond import respond_bp
    from surveys.scorecard_views import scorecards_bp
    from surveys.home import staff_bp
    from surveys.triage.views import triage_bp

    for blueprint in (auth_bp, staff_bp, designer_bp, scorecards_bp, cadences_bp, people_bp, audit_bp, respond_bp, api_bp,
                      health_bp, alerts_bp, triage_bp, deals_bp, deal_pages_bp):
        app.register_blueprint(blueprint)
    # The API authenticates with Bearer tokens only, never cookies: no CSRF.
    csrf.exempt(api_bp)


def register_commands(app):
    from cadence.commands import register_cadence_commands
    from surveys.org.commands import register_people_commands
    from surveys.commands import register_survey_commands
    from surveys.deals.commands import register_deal_commands

    register_survey_commands(app)
    register_people_commands(app)
    register_cadence_commands(app)
    register_deal_commands(app)


def register_errorhandlers(app):
    from surveys.errors import register

    register(app)


def register_security_headers(app):
    @app.after_request
    def security_headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Pages and API answers carry answers, comments, people or links
        # (issue 13): no browser or proxy cache keeps them. Static files keep
        # their own caching; a view that sets Cache-Control itself wins.
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        if app.config["CANARY_ENV"] == "production":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


def register_template_helpers(app):
    from surveys import formatting

    formatting.register(app)
