"""gunicorn settings for Canary: `gunicorn wsgi:app` reads this file itself.

A rep link (`/r/<token>`) and a password-reset link are credentials. gunicorn's
access log records the request line, the path, the Referer (a page opened from
a rep link sends it) and, with a custom format, any header or environ value;
its error log names the URL of a request that failed. The logger class below
replaces the token in every one of those fields with `[redacted]` before
anything is formatted, and filters the error log the same way.

Settings from the environment (or gunicorn's own command-line options and
GUNICORN_CMD_ARGS) still apply: this file only sets what it must.
"""

import os

from gunicorn.glogging import Logger

from surveys.security import SecretUrlFilter, scrub_secrets


class ScrubbingLogger(Logger):
    """gunicorn's logger with credentials in URLs scrubbed from every atom."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in list(atoms.items()):
            if isinstance(value, str):
                atoms[key] = scrub_secrets(value)
        return atoms

    def setup(self, cfg):
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            if not any(isinstance(existing, SecretUrlFilter) for existing in logger.filters):
                logger.addFilter(SecretUrlFilter())


logger_class = ScrubbingLogger

# Keep the access log on by default (stdout), as most platforms collect it.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
# Behind a reverse proxy, the app trusts X-Forwarded-* only as configured by
# TRUSTED_PROXY_COUNT (see config.py); gunicorn itself need not rewrite them.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
