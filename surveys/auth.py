"""Staff sign-in, roles and API tokens.

Reps never sign in: their invitation link is their credential (see
`surveys.respond`). Staff (pm, leader, admin) sign in with a password hashed
with argon2id; programs use per-user Bearer tokens stored as SHA-256 hashes.
"""

import hashlib
import secrets
from functools import wraps

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from cadence.clock import utcnow
from cadence.models import ApiToken, Person
from surveys.extensions import db, login_manager

auth_bp = Blueprint("auth", __name__)

# argon2-cffi's defaults follow RFC 9106's low-memory profile (argon2id,
# t=3, m=64 MiB, p=4), above OWASP's minimum.
password_hasher = PasswordHasher()
# Verified against when the email is unknown, so timing does not reveal it.
_DUMMY_HASH = password_hasher.hash("not-a-real-password")

login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Please sign in to see that page."
login_manager.login_message_category = "info"


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def verify_password(person: Person | None, password: str) -> bool:
    stored = person.password_hash if person and person.password_hash else _DUMMY_HASH
    try:
        ok = password_hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and person is not None and person.password_hash is not None


def find_person_by_email(email: str) -> Person | None:
    return db.session.scalar(select(Person).where(Person.email == email.strip().lower()))


@login_manager.user_loader
def load_user(user_id):
    person = db.session.get(Person, int(user_id))
    if person is None or not person.is_staff:
        return None
    return person


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


# -- API tokens ---------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(person: Person) -> str:
    """Create a token for `person` and return it; only its hash is stored."""
    token = "cny_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(person_id=person.id, token_hash=token_digest(token)))
    return token


def person_for_api_token(token: str) -> Person | None:
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.person.active:
        return None
    row.last_used_at = utcnow()
    return row.person


# -- Sign-in ------------------------------------------------------------------


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1000)])


@auth_bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("staff.home"))
    form = SignInForm()
    if form.validate_on_submit():
        person = find_person_by_email(form.email.data)
        if verify_password(person, form.password.data) and person.active and person.is_staff:
            session.clear()  # a fresh session at sign-in: no fixation
            login_user(person)
            return redirect(_safe_next(request.args.get("next")) or url_for("staff.home"))
        form.password.errors.append("That email and password do not match a staff account.")
    return render_template("auth/sign_in.html", form=form)


@auth_bp.route("/sign-out", methods=["POST"])
@login_required
def sign_out():
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))


def _safe_next(target):
    """Only same-site relative paths, so sign-in cannot redirect elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def count_staff() -> int:
    from cadence.models import PersonRole

    return db.session.scalar(
        select(func.count(func.distinct(PersonRole.person_id))).where(PersonRole.role.in_(("pm", "leader", "admin")))
    )
