"""Staff sign-in, roles, password reset and API tokens.

Reps never sign in: their invitation link is their credential (see
`surveys.respond`). Staff (pm, leader, admin) sign in with a password hashed
with argon2id; programs use per-user Bearer tokens stored as SHA-256 hashes.

Sessions carry the `Person.session_version` they were made with; the user
loader refuses any other, so bumping the version ("sign out everywhere", a
password reset) ends every session of that person at once.
"""

import hashlib
import hmac
import re
import secrets
from email.message import EmailMessage
from email.utils import make_msgid
from functools import cache, wraps
from urllib.parse import urljoin, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from wtforms import EmailField, PasswordField
from wtforms.validators import EqualTo, InputRequired, Length

from cadence.clock import utcnow
from cadence.models import STAFF_ROLES, ApiToken, Person, StaffSession
from surveys import security
from surveys.extensions import db, login_manager

auth_bp = Blueprint("auth", __name__)

# argon2-cffi's defaults follow RFC 9106's low-memory profile (argon2id,
# t=3, m=64 MiB, p=4), above OWASP's minimum.
password_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so timing does not reveal
    it. Made on first use, not at import: hashing takes 64 MiB and a quarter
    second that workers and CLI commands should not pay."""
    return password_hasher.hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 10
SESSION_VERSION_KEY = "_canary_session_version"
# The random id of this browser's StaffSession row (its SHA-256 is stored).
SESSION_ID_KEY = "_canary_sid"
PASSWORD_RESET_SALT = "canary.password-reset.v1"

login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Please sign in to see that page."
login_manager.login_message_category = "info"


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


@login_manager.user_loader
def load_user(user_id):
    try:
        person = db.session.get(Person, int(user_id))
    except (TypeError, ValueError):
        return None
    if person is None or not person.is_staff or not person.active:
        return None
    if session.get(SESSION_VERSION_KEY) != (person.session_version or 0):
        return None  # signed out everywhere (or password reset) since
    if current_staff_session(person) is None:
        return None  # signed out on the server, or from before sessions were recorded
    return person


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
    from sqlalchemy import update

    result = db.session.execute(
        update(StaffSession)
        .where(StaffSession.person_id == person.id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    return result.rowcount or 0


def roles_required(*roles):
    """Staff views: signed in (else redirect to sign-in) and holding a role (else 403)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator


# Any signed-in staff member (pm, leader or admin).
staff_required = roles_required(*STAFF_ROLES)


# -- API tokens ---------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(person: Person, actor: Person | None = None) -> str:
    """Create a token for `person` and return it; only its hash is stored.

    Audited as "token.created"; `actor` is who asked (None: the command line).
    The caller commits."""
    token = "cny_" + secrets.token_urlsafe(32)
    row = ApiToken(person_id=person.id, token_hash=token_digest(token), created_at=utcnow())
    db.session.add(row)
    db.session.flush()
    audit_log.record(actor, "token.created", row, {"owner": person.email})
    return token


def revoke_api_token(row: ApiToken, actor: Person | None) -> None:
    """Revoke a token now (audited as "token.revoked"); the caller commits."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit_log.record(actor, "token.revoked", row, {"owner": row.person.email})


def person_for_api_token(token: str) -> Person | None:
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.person.active:
        return None
    row.last_used_at = utcnow()
    return row.person


def token_fingerprint(row: ApiToken) -> str:
    """A short label for a token in lists: the start of its hash (the token
    itself is never stored, so it cannot be shown again)."""
    return row.token_hash[:10]


# -- Sign-in ------------------------------------------------------------------


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1000)])


def _throttled_sign_in(email: str, address: str) -> str | None:
    """The message to show when this account or address must wait, else None."""
    account_wait = security.retry_after("SIGN_IN_ACCOUNT_LIMIT", email)
    if account_wait:
        return (
            f"Too many failed sign-ins for this account. Wait {security.wait_in_words(account_wait)} "
            "and try again, or reset your password."
        )
    address_wait = security.retry_after("SIGN_IN_ADDRESS_LIMIT", address)
    if address_wait:
        return (
            f"Too many failed sign-ins from your network. Wait {security.wait_in_words(address_wait)} "
            "and try again."
        )
    return None


@auth_bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("staff.home"))
    form = SignInForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        address = security.client_address()
        throttled = _throttled_sign_in(email, address)
        if throttled:
            # The password is not even checked: guessing is pointless while throttled.
            form.password.errors.append(throttled)
            return render_template("auth/sign_in.html", form=form, throttled=True), 429
        person = find_person_by_email(email)
        if verify_password(person, form.password.data) and person.active and person.is_staff:
            security.forget_attempts("SIGN_IN_ACCOUNT_LIMIT", email)
            if password_hasher.check_needs_rehash(person.password_hash):
                person.password_hash = hash_password(form.password.data)
            audit_log.record(person, "sign_in", person)
            db.session.commit()
            start_session(person)
            return redirect(_safe_next(request.args.get("next")) or url_for("staff.home"))
        security.count_attempt("SIGN_IN_ACCOUNT_LIMIT", email)
        security.count_attempt("SIGN_IN_ADDRESS_LIMIT", address)
        audit_log.record(None, "sign_in.failed", f"email:{email}")
        db.session.commit()
        form.password.errors.append("That email and password do not match a staff account.")
    return render_template("auth/sign_in.html", form=form, throttled=False)


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


@auth_bp.route("/sign-out", methods=["POST"])
@staff_required
def sign_out():
    record = current_staff_session(current_user._get_current_object())
    if record is not None:
        record.ended_at = utcnow()  # a copy of this cookie stops working too
        audit_log.record(current_user._get_current_object(), "sign_out", current_user._get_current_object())
        db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))


# Characters a browser drops from, or trims around, a URL before resolving it
# (WHATWG URL: ASCII tab and newline anywhere, C0 controls and space at the
# ends), and the backslash it reads as a slash: `/\t/evil.example` and
# `/\\evil.example` both leave the site. Any of them in `next` refuses it.
_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x20\x7f\\]")
_NEXT_MAX_LENGTH = 2000


def _safe_next(target):
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


def sign_out_everywhere(person: Person, actor: Person | None) -> None:
    """End every session of `person` (this one too); the caller commits."""
    person.session_version = (person.session_version or 0) + 1
    end_sessions_of(person)
    audit_log.record(actor, "sign_out_everywhere", person)


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
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    context = {"person": person, "url": password_reset_url(person), "minutes": minutes}
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = person.email
    message["Subject"] = "Reset your Canary password"
    message["Message-ID"] = make_msgid(domain=current_app.config["MAIL_FROM"].rpartition("@")[2] or None)
    message.set_content(render_template("auth/password_reset_email.txt", **context))
    message.add_alternative(render_template("auth/password_reset_email.html", **context), subtype="html")
    return message


def send_password_reset_email(person_id: int) -> None:
    """RQ job on the mail queue: build a fresh link and send it. Mail errors
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


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=320)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[
            InputRequired(),
            Length(min=MIN_PASSWORD_LENGTH, max=1000, message=f"Use at least {MIN_PASSWORD_LENGTH} characters."),
        ],
    )
    confirm = PasswordField(
        "New password again", validators=[InputRequired(), EqualTo("password", message="The two passwords differ.")]
    )


@auth_bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        address = security.client_address()
        wait = max(
            security.retry_after("PASSWORD_RESET_EMAIL_LIMIT", email),
            security.retry_after("PASSWORD_RESET_ADDRESS_LIMIT", address),
        )
        if wait:
            form.email.errors.append(
                f"Too many reset requests. Wait {security.wait_in_words(wait)} and try again, "
                "or check your inbox for the link we already sent."
            )
            return render_template("auth/forgot_password.html", form=form), 429
        security.count_attempt("PASSWORD_RESET_EMAIL_LIMIT", email)
        security.count_attempt("PASSWORD_RESET_ADDRESS_LIMIT", address)
        # The same work and the same answer whether or not the address has an
        # account: the request only queues a job; the worker looks the email
        # up, and sends (and audits) only for active staff.
        from cadence import dispatch

        dispatch.password_reset_request(email, address)
        return render_template("auth/forgot_password_sent.html", email=email)
    return render_template("auth/forgot_password.html", form=form)


@auth_bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token):
    person = person_for_reset_token(token)
    if person is None:
        return render_template("auth/reset_password_invalid.html"), 404
    form = ResetPasswordForm()
    if form.validate_on_submit():
        person.password_hash = hash_password(form.password.data)
        sign_out_everywhere(person, actor=person)
        audit_log.record(person, "password.reset", person)
        db.session.commit()
        logout_user()
        session.clear()
        flash("Your password is changed and every other session is signed out. Sign in with the new password.", "success")
        return redirect(url_for("auth.sign_in"))
    return render_template("auth/reset_password.html", form=form, person=person)


# -- Account: API tokens and sign-out everywhere ------------------------------


def _tokens_of(person: Person) -> list[ApiToken]:
    return list(
        db.session.scalars(select(ApiToken).where(ApiToken.person_id == person.id).order_by(ApiToken.id.desc()))
    )


def _account_page(new_token: str | None = None):
    person = current_user._get_current_object()
    return render_template(
        "auth/account.html",
        person=person,
        tokens=_tokens_of(person),
        new_token=new_token,
        fingerprint=token_fingerprint,
    )


@auth_bp.get("/account/")
@staff_required
def account():
    return _account_page()


@auth_bp.post("/account/tokens")
@staff_required
def create_token():
    person = current_user._get_current_object()
    token = issue_api_token(person, actor=person)
    db.session.commit()
    return _account_page(new_token=token), 201


@auth_bp.post("/account/tokens/<int:token_id>/revoke")
@staff_required
def revoke_token(token_id):
    row = db.session.get(ApiToken, token_id)
    if row is None or row.person_id != current_user.id:
        abort(404)  # someone else's token is as absent as an unknown one
    if row.revoked_at is not None:
        flash("That token was already revoked.", "info")
    else:
        revoke_api_token(row, actor=current_user._get_current_object())
        db.session.commit()
        flash("Token revoked: programs using it now get 401.", "success")
    return redirect(url_for("auth.account"))


@auth_bp.post("/account/sign-out-everywhere")
@staff_required
def sign_out_everywhere_view():
    person = current_user._get_current_object()
    sign_out_everywhere(person, actor=person)
    db.session.commit()
    logout_user()
    session.clear()
    flash("Every session of your account is signed out, this one included. API tokens still work: revoke them on your account page.", "success")
    return redirect(url_for("auth.sign_in"))


@auth_bp.after_request
def _never_cache_credentials(response):
    """Pages that show a token, a reset form or an account must not be kept
    by the browser's or a proxy's cache."""
    if request.endpoint in ("auth.account", "auth.create_token", "auth.reset_password", "auth.sign_in"):
        response.headers["Cache-Control"] = "no-store"
    return response


# Imported last: surveys.audit imports `roles_required` from this module.
from surveys import audit as audit_log  # noqa: E402
