"""Staff identity: passwords, server-side sessions, API tokens and password
reset, as plain functions the sign-in pages, the API and the workers share.

Reps never sign in: their invitation link is their credential (see
`surveys.respond`). Staff (pm, leader, admin) sign in with a password hashed
with argon2id; programs use per-user Bearer tokens stored as SHA-256 hashes.

A session is recorded on the server (`StaffSession`, by the SHA-256 of a
random id the signed cookie carries) and carries the person's
`session_version`: ending the record signs one browser out, bumping the
version ("sign out everywhere", a password reset) ends every session at once.
"""

import hashlib
import hmac
import re
import secrets
from email.message import EmailMessage
from functools import cache
from urllib.parse import urljoin, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, session
from flask_login import login_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update

from cadence import mail
from cadence.clock import utcnow
from surveys.org.models import ApiToken, Person, StaffSession
from surveys import audit as audit_log
from surveys.extensions import db

MIN_PASSWORD_LENGTH = 10
SESSION_VERSION_KEY = "_canary_session_version"
# The random id of this browser's StaffSession row (its SHA-256 is stored).
SESSION_ID_KEY = "_canary_sid"
PASSWORD_RESET_SALT = "canary.password-reset.v1"

# argon2-cffi's defaults follow RFC 9106's low-memory profile (argon2id,
# t=3, m=64 MiB, p=4), above OWASP's minimum.
password_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so timing does not reveal
    it. Made on first use, not at import: hashing takes 64 MiB and a quarter
    second that workers and CLI commands should not pay."""
    return password_hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def verify_password(person: Person | None, password: str) -> bool:
    stored = person.password_hash if person and person.password_hash else _dummy_hash()
    try:
        ok = password_hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and person is not None and person.password_hash is not None


def find_person_by_email(email: str) -> Person | None:
    return db.session.scalar(select(Person).where(Person.email == email.strip().lower()))


# -- Sessions -----------------------------------------------------------------


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def current_staff_session(person: Person) -> StaffSession | None:
    """This browser's session record, if it belongs to `person` and has not ended."""
    sid = session.get(SESSION_ID_KEY)
    if not isinstance(sid, str) or not sid:
        return None
    started_after = utcnow() - current_app.config["SESSION_ABSOLUTE_LIFETIME"]
    return db.session.scalar(
        select(StaffSession).where(
            StaffSession.sid_hash == _sid_hash(sid),
            StaffSession.person_id == person.id,
            StaffSession.ended_at.is_(None),
            StaffSession.created_at > started_after,
        )
    )


def end_sessions_of(person: Person) -> int:
    """End every open session of `person` on the server, for good (a later
    reactivation or role change does not bring them back); the caller commits."""
    result = db.session.execute(
        update(StaffSession)
        .where(StaffSession.person_id == person.id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    return result.rowcount or 0


def start_session(person: Person) -> None:
    """A fresh session (no fixation), bound to the person's session version
    and recorded on the server, so signing out can end it there."""
    session.clear()
    sid = secrets.token_urlsafe(32)
    db.session.add(StaffSession(person_id=person.id, sid_hash=_sid_hash(sid), created_at=utcnow()))
    db.session.commit()
    login_user(person)
    session[SESSION_VERSION_KEY] = person.session_version or 0
    session[SESSION_ID_KEY] = sid
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME idle


def sign_out_everywhere(person: Person, actor: Person | None) -> None:
    """End every session of `person` (this one too); the caller commits."""
    person.session_version = (person.session_version or 0) + 1
    end_sessions_of(person)
    audit_log.record(actor, "sign_out_everywhere", person)


# Characters a browser drops from, or trims around, a URL before resolving it
# (WHATWG URL: ASCII tab and newline anywhere, C0 controls and space at the
# ends), and the backslash it reads as a slash: `/\t/evil.example` and
# `/\\evil.example` both leave the site. Any of them in `next` refuses it.
_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x20\x7f\\]")
_NEXT_MAX_LENGTH = 2000


def safe_next(target):
    """Only a path on this site, judged as a browser would read it, so sign-in
    cannot redirect elsewhere; anything doubtful is dropped (sign-in then goes
    home) rather than repaired."""
    if not target or len(target) > _NEXT_MAX_LENGTH or _UNSAFE_IN_NEXT.search(target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    # Resolved against this site, it must stay here.
    resolved = urlsplit(urljoin("http://canary.invalid/sign-in", target))
    if resolved.scheme != "http" or resolved.netloc != "canary.invalid":
        return None
    return target


def set_own_timezone(person: Person, zone: str) -> None:
    """A person chooses the zone their pages show times in (audited when it
    changes; the caller validated the name and commits). A later people import
    that names a zone for them sets it again."""
    if zone != person.timezone:
        audit_log.record(person, "person.timezone_changed", person, {"from": person.timezone, "to": zone})
        person.timezone = zone


# -- API tokens ---------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A token starts "cny_" and its next characters are kept as its visible
# prefix: enough to tell tokens apart in a list, far too few to guess the rest
# (the remaining 35 characters carry over 200 random bits).
TOKEN_PREFIX_LENGTH = 12
TOKEN_NAME_MAX = 80
DEFAULT_TOKEN_NAME = "API token"


def issue_api_token(person: Person, actor: Person | None = None, name: str = DEFAULT_TOKEN_NAME) -> str:
    """Create a token for `person`, named `name`, and return it; only its hash
    and its visible prefix are stored.

    Audited as "token.created"; `actor` is who asked (None: the command line).
    The caller commits."""
    name = " ".join(name.split())
    if not name or len(name) > TOKEN_NAME_MAX:
        raise ValueError(f"A token's name must have 1 to {TOKEN_NAME_MAX} characters.")
    token = "cny_" + secrets.token_urlsafe(32)
    row = ApiToken(person_id=person.id, token_hash=token_digest(token), name=name,
                   prefix=token[:TOKEN_PREFIX_LENGTH], created_at=utcnow())
    db.session.add(row)
    db.session.flush()
    audit_log.record(actor, "token.created", row, {"owner": person.email, "name": name, "prefix": row.prefix})
    return token


def revoke_api_token(row: ApiToken, actor: Person | None) -> None:
    """Revoke a token now (audited as "token.revoked"); the caller commits."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit_log.record(actor, "token.revoked", row, {"owner": row.person.email, "name": row.name,
                                                      "prefix": row.prefix})


def person_for_api_token(token: str) -> Person | None:
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.person.active:
        return None
    row.last_used_at = utcnow()
    return row.person


def token_label(row: ApiToken) -> str:
    """How a list shows a token: its visible prefix, as the owner saw it when it
    was made (tokens made before prefixes were kept show the start of their
    hash, marked as such)."""
    if row.prefix:
        return f"{row.prefix}…"
    return f"hash {row.token_hash[:10]}…"


# -- Password reset -----------------------------------------------------------
#
# The link carries the person's id and a fingerprint of their current password
# hash, signed and timed. Setting a password changes the hash, so a link works
# once; it also expires after PASSWORD_RESET_MAX_AGE seconds.


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=PASSWORD_RESET_SALT)


def password_fingerprint(person: Person) -> str:
    return hashlib.sha256(f"{person.id}:{person.password_hash or ''}".encode()).hexdigest()[:32]


def password_reset_token(person: Person) -> str:
    return _reset_serializer().dumps([person.id, password_fingerprint(person)])


def person_for_reset_token(token: str) -> Person | None:
    """The staff member a reset link is for, or None when it is forged,
    expired, already used, or the person can no longer sign in."""
    try:
        person_id, fingerprint = _reset_serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
        person_id, fingerprint = int(person_id), str(fingerprint)
    except (BadSignature, ValueError, TypeError):
        return None
    person = db.session.get(Person, person_id)
    if person is None or not person.active or not person.is_staff:
        return None
    if not hmac.compare_digest(password_fingerprint(person).encode(), fingerprint.encode()):
        return None
    return person


def password_reset_url(person: Person) -> str:
    return f"{current_app.config['BASE_URL']}/password/reset/{password_reset_token(person)}"


def compose_password_reset(person: Person) -> EmailMessage:
    # A fresh Message-ID each time: every request sends a new, different link.
    return mail.compose(to=person.email, subject="Reset your Canary password", kind="password-reset",
                        key=f"password-reset.{person.id}.{secrets.token_hex(8)}", template="auth/password_reset_email",
                        person=person, url=password_reset_url(person),
                        minutes=current_app.config["PASSWORD_RESET_MAX_AGE"] // 60)


def send_password_reset_email(person_id: int) -> None:
    """Build a fresh link and send it (in a worker). Mail errors
    propagate so RQ's Retry (transient) and failed registry (permanent) see them."""
    from cadence.mail import mail_backend

    person = db.session.get(Person, person_id)
    if person is None or not person.active or not person.is_staff:
        return
    with mail_backend() as backend:
        backend.send(compose_password_reset(person))
    db.session.commit()  # the outbox backend keeps the message in the database


def handle_password_reset_request(email: str, address: str | None = None) -> None:
    """The job behind every reset request: send the link when `email` is an
    active staff member's, else do nothing."""
    person = find_person_by_email(email)
    if person is None or not person.active or not person.is_staff:
        return
    audit_log.record(None, "password.reset_requested", person, {"address": address} if address else None)
    db.session.commit()
    send_password_reset_email(person.id)
