"""Mail backends: SMTP for real delivery, the outbox for local use.

Both are context managers so a delivery batch shares one SMTP connection.
SMTP failures are sorted into two kinds the delivery code acts on:
- `TransientMailError` (4xx replies, dropped connections, timeouts): retry later;
- `PermanentMailError` (5xx replies, a refused address): mark failed, do not retry.
"""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage
from email.utils import formataddr
from urllib.parse import urlparse

from flask import current_app, render_template

from cadence.models import OutboxMessage
from surveys.extensions import db


def message_id(key: str) -> str:
    """A stable Message-ID for one message's identity (an invitation and its
    kind, a digest of one round for one leader), so a re-send is recognisably
    the same message."""
    domain = urlparse(current_app.config["BASE_URL"]).hostname or "canary.local"
    return f"<canary.{key}@{domain}>"


def compose(*, to: tuple[str, str] | str, subject: str, kind: str, key: str, template: str, **context) -> EmailMessage:
    """Every message Canary sends: text and HTML from `template` + .txt/.html,
    From, To (a (name, address) pair or a bare address), a stable Message-ID
    and the X-Canary-Kind header that tells invitations, reminders, digests
    and alerts apart."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = formataddr(to) if isinstance(to, tuple) else to
    message["Message-ID"] = message_id(key)
    message["X-Canary-Kind"] = kind
    message.set_content(render_template(f"{template}.txt", **context))
    message.add_alternative(render_template(f"{template}.html", **context), subtype="html")
    return message


class MailError(Exception):
    pass


class TransientMailError(MailError):
    pass


class PermanentMailError(MailError):
    pass


def mail_backend(app=None):
    app = app or current_app._get_current_object()
    name = app.config["MAIL_BACKEND"]
    if name == "smtp":
        return SmtpBackend(app.config)
    if name == "outbox":
        return OutboxBackend()
    raise RuntimeError(f"MAIL_BACKEND must be 'smtp' or 'outbox', got {name!r}")


class OutboxBackend:
    """Keeps messages in the database; admins read them at /cadences/outbox."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def send(self, message: EmailMessage) -> None:
        text_part = message.get_body(preferencelist=("plain",))
        html_part = message.get_body(preferencelist=("html",))
        db.session.add(
            OutboxMessage(
                to_address=message["To"],
                subject=message["Subject"],
                text_body=text_part.get_content() if text_part else "",
                html_body=html_part.get_content() if html_part else None,
                message_id=message["Message-ID"],
            )
        )
        db.session.flush()


class SmtpBackend:
    def __init__(self, config):
        self.host = config["MAIL_SERVER"]
        self.port = int(config["MAIL_PORT"])
        self.use_tls = config["MAIL_USE_TLS"]
        self.username = config.get("MAIL_USERNAME")
        self.password = config.get("MAIL_PASSWORD")
        self.timeout = config.get("MAIL_TIMEOUT", 30)
        self.connection: smtplib.SMTP | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _connect(self):
        try:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.use_tls:
                connection.starttls()
            if self.username:
                connection.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as error:
            raise PermanentMailError(f"SMTP login refused: {error.smtp_code} {_text(error.smtp_error)}") from error
        except smtplib.SMTPResponseException as error:
            raise _classify(error.smtp_code, error.smtp_error) from error
        except (OSError, smtplib.SMTPException) as error:
            raise TransientMailError(f"cannot reach the SMTP server {self.host}:{self.port}: {error}") from error
        self.connection = connection

    def close(self):
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None

    def send(self, message: EmailMessage) -> None:
        if self.connection is None:
            self._connect()
        try:
            refused = self.connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            self._reset()
            raise _classify(code, reply) from error
        except smtplib.SMTPResponseException as error:
            self._reset()
            raise _classify(error.smtp_code, error.smtp_error) from error
        except (smtplib.SMTPServerDisconnected, socket.timeout, OSError, smtplib.SMTPException) as error:
            self._drop()
            raise TransientMailError(f"connection to the SMTP server lost: {error}") from error
        if refused:
            code, reply = next(iter(refused.values()))
            raise _classify(code, reply)

    def _reset(self):
        """After a refused message, clear the transaction so the connection can
        carry the next one; drop it if that fails."""
        try:
            self.connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _classify(code: int, reply) -> MailError:
    message = f"{code} {_text(reply)}"
    if 400 <= code < 500:
        return TransientMailError(message)
    return PermanentMailError(message)
