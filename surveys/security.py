"""Security plumbing every request shares: cookies, sizes, throttles, logs.

- Session cookie: HttpOnly and SameSite=Lax everywhere; in production also
  Secure (the app refuses to start without it). Staff sessions are permanent
  with a lifetime (PERMANENT_SESSION_LIFETIME), so a copied cookie stops
  working; "sign out everywhere" is `Person.session_version` (surveys.auth.service).
- Request size: MAX_CONTENT_LENGTH caps bodies, MAX_FORM_MEMORY_SIZE and
  MAX_FORM_PARTS cap form parsing; oversize requests get 413 (problem details
  under /api/).
- Throttles: Flask-Limiter's rate limiter with Redis storage, so every
  gunicorn worker and every machine counts against the same numbers (its
  in-memory storage counts per process). `retry_after`, `count_attempt` and
  `forget_attempts` are what sign-in and password reset use.
- Logs: URLs that are credentials (rep links `/r/<token>`, password-reset
  links) are replaced by `[redacted]` in every record of the werkzeug, app and
  gunicorn loggers, including tracebacks; gunicorn.conf.py scrubs the access
  log's request line, Referer and every other field the same way.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time

from flask import abort, current_app, request
from flask_limiter import Limiter
from limits import parse as parse_limit
from limits.errors import StorageError
from werkzeug.middleware.proxy_fix import ProxyFix

from surveys.limits import MAX_ID


# -- Secrets in URLs ----------------------------------------------------------

# A rep link or a password-reset link is a credential: whoever holds it can
# answer as that rep or take over that account.
SECRET_URL_PATTERN = re.compile(r"(/(?:r|password/reset)/)[^/\s?#\"'<>\\]+")
REDACTED = "[redacted]"


def scrub_secrets(text: str) -> str:
    """`text` with the token of every rep or password-reset link replaced."""
    if not text:
        return text
    return SECRET_URL_PATTERN.sub(r"\1" + REDACTED, text)


class SecretUrlFilter(logging.Filter):
    """Rewrites a record so neither its message nor its traceback holds a token.

    The message is rendered (msg % args) and scrubbed; the traceback is
    rendered into exc_text, which formatters reuse instead of formatting it
    again from exc_info.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        scrubbed = scrub_secrets(message)
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub_secrets(record.stack_info)
        return True


# Loggers that can see a request's URL: the development server's request log,
# the app's error reports, and gunicorn's (the custom logger class in
# gunicorn.conf.py also scrubs gunicorn's access log before formatting).
SCRUBBED_LOGGERS = ("werkzeug", "gunicorn.error", "gunicorn.access", "rq.worker")


def install_log_scrubbing(app) -> None:
    for logger in [logging.getLogger(name) for name in SCRUBBED_LOGGERS] + [app.logger]:
        if not any(isinstance(existing, SecretUrlFilter) for existing in logger.filters):
            logger.addFilter(SecretUrlFilter())
    # Handlers see records that propagate from child loggers without passing
    # the parent logger's filters, so the handlers get the filter too.
    for handler in app.logger.handlers + logging.getLogger("werkzeug").handlers:
        if not any(isinstance(existing, SecretUrlFilter) for existing in handler.filters):
            handler.addFilter(SecretUrlFilter())


# -- Throttles ----------------------------------------------------------------


def client_address() -> str:
    """The client's address: the peer, or what a trusted proxy reports (see
    TRUSTED_PROXY_COUNT, which installs ProxyFix)."""
    return request.remote_addr or "unknown"


def _limiter(app=None) -> Limiter:
    app = app or current_app._get_current_object()
    return app.extensions["canary_security"]["limiter"]


def _limiter_storage_uri(app) -> str:
    """limits' URI for the app's Redis, computed without connecting: the
    embedded server (REDIS_URL unset) is started on first use instead."""
    url = app.config.get("REDIS_URL") or f"unix://{app.config['EMBEDDED_REDIS_SOCKET']}"
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://"):]
    return url


def _ensure_storage_server(app) -> None:
    state = app.extensions["canary_security"]
    if state["storage_ready"]:
        return
    from cadence.redis_server import redis_url

    redis_url(app)  # starts the embedded Redis when REDIS_URL is unset
    state["storage_ready"] = True


def _identifiers(rule: str, keys) -> list[str]:
    """Keys for one throttle. Values are hashed so Redis holds no emails or
    addresses; the queue prefix keeps installations sharing a Redis apart."""
    prefix = current_app.config.get("RQ_QUEUE_PREFIX", "canary")
    hashed = [hashlib.sha256(str(key).strip().lower().encode()).hexdigest()[:32] for key in keys]
    return [prefix, rule.lower(), *hashed]


def _run(operation, default):
    """Run a throttle operation. When Redis cannot be reached the attempt is
    allowed and the failure logged: Redis also carries every job, so an outage
    is already loud, and locking every staff member out would make it worse."""
    app = current_app._get_current_object()
    try:
        _ensure_storage_server(app)
        return operation(_limiter(app).limiter)
    except (StorageError, OSError) as error:
        app.logger.error("rate-limit storage unavailable, not throttling: %s", error)
        return default


def retry_after(rule: str, *keys) -> int:
    """Seconds to wait before one more attempt under `rule` (a config key such
    as SIGN_IN_ACCOUNT_LIMIT holding e.g. "5 per 15 minutes"); 0 when allowed."""
    item = parse_limit(current_app.config[rule])
    identifiers = _identifiers(rule, keys)

    def check(limiter):
        if limiter.test(item, *identifiers):
            return 0
        reset_at, _remaining = limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(reset_at - time.time()))

    return _run(check, 0)


def count_attempt(rule: str, *keys) -> None:
    item = parse_limit(current_app.config[rule])
    identifiers = _identifiers(rule, keys)
    _run(lambda limiter: limiter.hit(item, *identifiers), None)


def forget_attempts(rule: str, *keys) -> None:
    item = parse_limit(current_app.config[rule])
    identifiers = _identifiers(rule, keys)
    _run(lambda limiter: limiter.clear(item, *identifiers), None)


def wait_in_words(seconds: int) -> str:
    if seconds < 60:
        return "a minute"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes" if minutes > 1 else "a minute"


# -- Identifiers in URLs ------------------------------------------------------

# The widest id our tables hold: ids are INTEGER columns, 32-bit on PostgreSQL.


def refuse_out_of_range_ids(endpoint, values) -> None:
    """An `<int:...>` URL value no database could hold names nothing: 404,
    rather than a driver overflow (a 500) deep inside the view."""
    for value in (values or {}).values():
        if isinstance(value, int) and not -MAX_ID <= value <= MAX_ID:
            abort(404)


# -- Setup --------------------------------------------------------------------


def check_production_cookies(app) -> None:
    if app.config["CANARY_ENV"] != "production":
        return
    for name in ("SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY"):
        if not app.config.get(name):
            raise RuntimeError(f"{name} must be on in production")
    if app.config.get("SESSION_COOKIE_SAMESITE") not in ("Lax", "Strict"):
        raise RuntimeError("SESSION_COOKIE_SAMESITE must be 'Lax' or 'Strict' in production")


def check_production_mail(app) -> None:
    """The outbox is a development and trial tool: it keeps every message,
    password-reset links included, where admins can read it."""
    if app.config["CANARY_ENV"] != "production" or app.config.get("MAIL_BACKEND") != "outbox":
        return
    if not app.config.get("MAIL_OUTBOX_IN_PRODUCTION"):
        raise RuntimeError(
            "MAIL_BACKEND=outbox in production: the outbox sends nothing and keeps every message, "
            "password-reset links included, in the database for admins to read. Set MAIL_BACKEND=smtp "
            "and the MAIL_* settings, or set MAIL_OUTBOX_IN_PRODUCTION=1 for a trial installation "
            "that must send no mail."
        )


def refuse_nul_characters():
    """NUL has no place in any text Canary keeps, and PostgreSQL cannot store
    it: refuse it at the door (400) instead of failing deep inside (500)."""
    from flask import abort

    if any("\x00" in value for values in request.args.listvalues() for value in values):
        abort(400, description="The address contains a NUL character.")
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if request.mimetype == "multipart/form-data":
        # Uploads (issue 13): the parsed fields and every file's content,
        # including a JSON file's \u0000 escape.
        if any("\x00" in value for values in request.form.listvalues() for value in values):
            abort(400, description="The form contains a NUL character.")
        for upload in request.files.values():
            content = upload.stream.read()
            upload.stream.seek(0)
            if b"\x00" in content or b"\\u0000" in content:
                abort(400, description=f"The file {upload.filename or ''} contains a NUL character.".replace("  ", " "))
        return
    body = request.get_data(cache=True)
    if b"\x00" in body or b"\\u0000" in body or b"%00" in body:
        abort(400, description="The request contains a NUL character.")


def init_app(app) -> None:
    check_production_cookies(app)
    check_production_mail(app)
    proxies = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if proxies > 0:
        # Only behind that many proxies that set X-Forwarded-*: otherwise any
        # client could claim another address and dodge the throttles.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies)
    limiter = Limiter(
        key_func=client_address,
        storage_uri=_limiter_storage_uri(app),
        # Errors surface as limits' StorageError, handled in `_run`; a short
        # timeout keeps a dead Redis from hanging sign-in.
        storage_options={"wrap_exceptions": True, "socket_timeout": 2, "socket_connect_timeout": 2},
        strategy="moving-window",
        headers_enabled=False,
    )
    limiter.init_app(app)
    app.url_value_preprocessor(refuse_out_of_range_ids)
    app.before_request(refuse_nul_characters)
    app.extensions["canary_security"] = {"limiter": limiter, "storage_ready": False}
    install_log_scrubbing(app)
