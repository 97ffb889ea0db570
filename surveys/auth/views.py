"""The sign-in, sign-out, password-reset and account pages."""

from zoneinfo import available_timezones

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length

from cadence import dispatch
from cadence.clock import utcnow
from surveys.org.models import ApiToken, Person
from surveys import audit as audit_log
from surveys import security
from surveys.auth.access import staff_required
from surveys.auth.service import (
    MIN_PASSWORD_LENGTH,
    TOKEN_NAME_MAX,
    current_staff_session,
    find_person_by_email,
    hash_password,
    issue_api_token,
    password_hasher,
    person_for_reset_token,
    revoke_api_token,
    safe_next,
    set_own_timezone,
    sign_out_everywhere,
    start_session,
    token_label,
    verify_password,
)
from surveys.extensions import db

auth_bp = Blueprint("auth", __name__)


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
            return redirect(safe_next(request.args.get("next")) or url_for("staff.home"))
        security.count_attempt("SIGN_IN_ACCOUNT_LIMIT", email)
        security.count_attempt("SIGN_IN_ADDRESS_LIMIT", address)
        audit_log.record(None, "sign_in.failed", f"email:{email}")
        db.session.commit()
        form.password.errors.append("That email and password do not match a staff account.")
    return render_template("auth/sign_in.html", form=form, throttled=False)


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


# -- Password reset -----------------------------------------------------------


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


class TokenForm(FlaskForm):
    name = StringField(
        "Name", filters=[lambda value: " ".join(value.split()) if value else value],
        validators=[DataRequired(message="Give the token a name."), Length(max=TOKEN_NAME_MAX)],
        description="What uses it, so you know which one to revoke later (e.g. \"Salesforce sync\").",
    )


class TimeZoneForm(FlaskForm):
    timezone = SelectField("Time zone", description="Every page shows times in it; invitations use it too.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = sorted(available_timezones() - {"localtime", "Factory"})


def _account_page(new_token: tuple[str, str] | None = None, form: TokenForm | None = None,
                  zone_form: TimeZoneForm | None = None):
    """The account page; `new_token` is (name, token) right after it was made, the one time it is shown."""
    person = current_user._get_current_object()
    return render_template(
        "auth/account.html",
        person=person,
        tokens=_tokens_of(person),
        new_token=new_token,
        form=form or TokenForm(formdata=None),
        zone_form=zone_form or TimeZoneForm(formdata=None, data={"timezone": person.timezone or "UTC"}),
        token_label=token_label,
    )


@auth_bp.get("/account/")
@staff_required
def account():
    return _account_page()


@auth_bp.post("/account/tokens")
@staff_required
def create_token():
    form = TokenForm()
    if not form.validate():
        return _account_page(form=form), 422
    person = current_user._get_current_object()
    token = issue_api_token(person, actor=person, name=form.name.data)
    db.session.commit()
    return _account_page(new_token=(form.name.data, token)), 201


@auth_bp.post("/account/time-zone")
@staff_required
def change_time_zone():
    form = TimeZoneForm()
    if not form.validate():
        return _account_page(zone_form=form), 422
    person = current_user._get_current_object()
    set_own_timezone(person, form.timezone.data)
    db.session.commit()
    flash(f"Times are now shown in {person.timezone}.", "success")
    return redirect(url_for("auth.account"))


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
