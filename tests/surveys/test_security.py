"""Sign-in, sessions, password reset, throttles, API tokens, rep links, CSRF,
logs, headers, escaping, bad input and the audit log (issue 6)."""

import csv
import hashlib
import io
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from itsdangerous import URLSafeSerializer
from sqlalchemy import delete, func, select, update

from cadence.links import invitation_token
from surveys.org.models import ApiToken, Person
from config import ProductionConfig
from surveys.app import create_app
from surveys.audit import AuditEvent, AuditLogIsAppendOnly, record
from surveys.auth.service import hash_password, password_reset_token
from surveys.extensions import db
from surveys.models import Response
from surveys.security import SecretUrlFilter, scrub_secrets
from tests.conftest import MESSY_PEOPLE, csrf_token_from, run_worker
from tests.builders.scorecards import ScorecardData

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def sign_in(client, email, password=PASSWORD):
    page = client.get("/sign-in")
    return client.post("/sign-in", data={"email": email, "password": password, "csrf_token": csrf_token_from(page.text)})


def audit_actions():
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# -- Passwords and sessions ---------------------------------------------------


def test_passwords_are_hashed_with_argon2id_at_owasp_grade_parameters():
    stored = hash_password("a long passphrase")
    # RFC 9106 low-memory profile: 64 MiB, 3 passes, 4 lanes (OWASP asks at
    # least 19 MiB with 2 passes).
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "a long passphrase" not in stored


def test_sign_in_starts_a_fresh_session_and_records_it(app, client, make_person):
    make_person(email="pm@example.com")
    client.get("/sign-in")
    with client.session_transaction() as session:
        session["planted_by_an_attacker"] = "fixation"
    response = sign_in(client, "pm@example.com")
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "planted_by_an_attacker" not in session
        assert session.permanent
    assert client.get("/home").status_code == 200
    assert audit_actions() == ["sign_in"]


def test_wrong_password_unknown_email_and_rep_get_the_same_refusal(app, client, make_person, redis_conn):
    make_person(email="pm@example.com")
    make_person(email="rep@example.com", roles=("rep",))
    for email, password in (("pm@example.com", "wrong password"), ("nobody@example.com", PASSWORD),
                            ("rep@example.com", PASSWORD)):
        response = sign_in(client, email, password)
        assert response.status_code == 200
        assert "That email and password do not match a staff account." in response.text
    assert client.get("/home").headers["Location"].startswith("/sign-in")
    assert audit_actions() == ["sign_in.failed"] * 3


def production_app(app_config, tmp_path):
    """The app as production configures it, on the test database and Redis."""

    class Production(ProductionConfig):
        SECRET_KEY = "p" * 48
        INSTANCE_DIR = str(tmp_path)
        SQLALCHEMY_DATABASE_URI = app_config["SQLALCHEMY_DATABASE_URI"]
        REDIS_URL = app_config["REDIS_URL"]
        MAIL_BACKEND = "smtp"  # production refuses the outbox (issue 13)

    return create_app(Production)


def test_production_cookies_are_secure_httponly_samesite_and_host_only(app_config, tmp_path):
    production = production_app(app_config, tmp_path)
    response = production.test_client().get("/sign-in", base_url="https://canary.example")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-canary-session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.parametrize("setting, value", [("SESSION_COOKIE_SECURE", False), ("SESSION_COOKIE_HTTPONLY", False),
                                            ("SESSION_COOKIE_SAMESITE", None)])
def test_production_refuses_insecure_session_cookies(tmp_path, setting, value):
    class Insecure(ProductionConfig):
        SECRET_KEY = "p" * 48
        INSTANCE_DIR = str(tmp_path)

    setattr(Insecure, setting, value)
    with pytest.raises(RuntimeError, match=setting):
        create_app(Insecure)


def test_sign_out_everywhere_ends_every_session_of_that_person_only(app, make_person):
    make_person(email="pm@example.com")
    make_person(email="other@example.com")
    laptop, phone, colleague = app.test_client(), app.test_client(), app.test_client()
    for client, email in ((laptop, "pm@example.com"), (phone, "pm@example.com"), (colleague, "other@example.com")):
        assert sign_in(client, email).status_code == 302
    page = laptop.get("/account/")
    response = laptop.post("/account/sign-out-everywhere", data={"csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    assert phone.get("/home").headers["Location"].startswith("/sign-in?next=")
    assert laptop.get("/home").headers["Location"].startswith("/sign-in?next=")
    assert colleague.get("/home").status_code == 200
    # A new sign-in works and carries the new version.
    assert sign_in(phone, "pm@example.com").status_code == 302
    assert phone.get("/home").status_code == 200
    assert "sign_out_everywhere" in audit_actions()


def test_a_person_who_loses_every_staff_role_is_signed_out(app, client, make_person):
    person = make_person(email="pm@example.com")
    assert sign_in(client, "pm@example.com").status_code == 302
    person.set_roles(["rep"])
    db.session.commit()
    assert client.get("/home").headers["Location"].startswith("/sign-in")


# -- Password reset -------------------------------------------------------------


def reset_link_from(message) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"http://canary\.test(/password/reset/[A-Za-z0-9_.\-]+)", text)
    assert match, text
    return match.group(1)


def request_reset(client, email):
    page = client.get("/password/forgot")
    return client.post("/password/forgot", data={"email": email, "csrf_token": csrf_token_from(page.text)})


def test_password_reset_by_emailed_single_use_link(app, client, make_person, smtp, redis_conn):
    make_person(email="pm@example.com")
    other_session = app.test_client()
    assert sign_in(other_session, "pm@example.com").status_code == 302

    response = request_reset(client, "PM@example.com")
    assert response.status_code == 200 and "If pm@example.com belongs to a staff account" in response.text
    run_worker(app, ["mail"])
    assert smtp.wait_for(1) == 1
    message = smtp.messages[0]
    assert message["To"] == "pm@example.com" and message["Subject"] == "Reset your Canary password"
    link = reset_link_from(message)
    assert link in message.get_body(preferencelist=("html",)).get_content()

    page = client.get(link)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    mismatch = client.post(link, data={"password": "a brand new secret", "confirm": "something else",
                                       "csrf_token": csrf_token_from(page.text)})
    assert mismatch.status_code == 200 and "The two passwords differ." in mismatch.text
    done = client.post(link, data={"password": "a brand new secret", "confirm": "a brand new secret",
                                   "csrf_token": csrf_token_from(page.text)})
    assert done.status_code == 302 and done.headers["Location"] == "/sign-in"

    assert "Sign in with the new password" in client.get("/sign-in").text
    assert sign_in(client, "pm@example.com", PASSWORD).status_code == 200
    assert sign_in(client, "pm@example.com", "a brand new secret").status_code == 302
    # The link worked once; other sessions were signed out by the reset.
    used = app.test_client().get(link)
    assert used.status_code == 404 and "does not work any more" in used.text
    assert other_session.get("/home").headers["Location"].startswith("/sign-in")
    assert audit_actions().count("password.reset") == 1


def test_reset_requests_for_unknown_and_rep_addresses_look_the_same_and_send_nothing(app, client, make_person, smtp, redis_conn):
    make_person(email="rep@example.com", roles=("rep",))
    make_person(email="pm@example.com")
    answers = []
    for email in ("nobody@example.com", "rep@example.com", "pm@example.com"):
        response = request_reset(client, email)
        answers.append(response.text.replace(email, "EMAIL"))
    assert answers[0] == answers[1] == answers[2]
    run_worker(app, ["mail"])
    smtp.wait_for(1, timeout=2)
    assert [m["To"] for m in smtp.messages] == ["pm@example.com"]


def test_reset_links_forged_expired_or_for_a_deactivated_person_do_not_work(app, client, make_person, monkeypatch):
    person = make_person(email="pm@example.com")
    token = password_reset_token(person)
    assert client.get(f"/password/reset/{token}").status_code == 200
    assert client.get(f"/password/reset/{token[:-4]}").status_code == 404
    forged = URLSafeSerializer("another-secret", salt="canary.password-reset.v1").dumps([person.id, "x"])
    assert client.get(f"/password/reset/{forged}").status_code == 404
    monkeypatch.setitem(app.config, "PASSWORD_RESET_MAX_AGE", -1)
    assert client.get(f"/password/reset/{token}").status_code == 404
    monkeypatch.setitem(app.config, "PASSWORD_RESET_MAX_AGE", 3600)
    person.active = False
    db.session.commit()
    assert client.get(f"/password/reset/{token}").status_code == 404


# -- Throttles ------------------------------------------------------------------


def test_sign_in_is_throttled_per_account_with_a_clear_message(app, client, make_person, redis_conn):
    make_person(email="pm@example.com")
    make_person(email="other@example.com")
    for _ in range(5):
        assert sign_in(client, "pm@example.com", "guess").status_code == 200
    throttled = sign_in(client, "pm@example.com", PASSWORD)  # even the right password waits
    assert throttled.status_code == 429
    assert "Too many failed sign-ins for this account. Wait 15 minutes" in throttled.text
    assert client.get("/home").headers["Location"].startswith("/sign-in")
    # Another account from the same address is not locked out by this one.
    assert sign_in(app.test_client(), "other@example.com").status_code == 302
    # The counts live in Redis: another app (another gunicorn worker) sees them.
    from tests.conftest import FreshContextClient

    worker = create_app(dict(app.config))
    worker.test_client_class = FreshContextClient
    assert sign_in(worker.test_client(), "pm@example.com", PASSWORD).status_code == 429
    assert any(key.startswith(b"LIMITS") for key in redis_conn.keys("*"))
    assert not any(b"pm@example.com" in key for key in redis_conn.keys("*"))  # keys are hashed


def test_sign_in_is_throttled_per_address(app, make_person, redis_conn, monkeypatch):
    monkeypatch.setitem(app.config, "SIGN_IN_ADDRESS_LIMIT", "3 per 15 minutes")
    make_person(email="pm@example.com")
    attacker = app.test_client()
    for number in range(3):
        assert sign_in(attacker, f"guess{number}@example.com", "guess").status_code == 200
    throttled = sign_in(attacker, "pm@example.com", PASSWORD)
    assert throttled.status_code == 429 and "Too many failed sign-ins from your network" in throttled.text
    elsewhere = app.test_client()
    assert sign_in(elsewhere, "pm@example.com", PASSWORD).status_code == 429  # same address in tests
    # A different address is not affected.
    page = elsewhere.get("/sign-in", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    response = elsewhere.post("/sign-in", environ_base={"REMOTE_ADDR": "10.1.2.3"},
                              data={"email": "pm@example.com", "password": PASSWORD, "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 302


def test_a_successful_sign_in_clears_the_accounts_failures(app, client, make_person, redis_conn):
    make_person(email="pm@example.com")
    for _ in range(4):
        sign_in(client, "pm@example.com", "guess")
    assert sign_in(client, "pm@example.com").status_code == 302
    other = app.test_client()
    for _ in range(4):
        assert sign_in(other, "pm@example.com", "guess").status_code == 200
    assert sign_in(other, "pm@example.com").status_code == 302


def test_password_reset_requests_are_throttled(app, client, make_person, smtp, redis_conn):
    make_person(email="pm@example.com")
    for _ in range(3):
        assert request_reset(client, "pm@example.com").status_code == 200
    throttled = request_reset(client, "pm@example.com")
    assert throttled.status_code == 429 and "Too many reset requests" in throttled.text


# -- API tokens -----------------------------------------------------------------


def test_api_token_page_shows_a_token_once_stores_its_hash_records_use_and_revokes(app, signed_in_client):
    client = signed_in_client(roles=("pm",), email="pm@example.com")
    page = client.get("/account/")
    assert "No API tokens yet" in page.text
    created = client.post("/account/tokens", data={"name": " Salesforce   sync ", "csrf_token": csrf_token_from(page.text)})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    token = re.search(r'value="(cny_[A-Za-z0-9_\-]+)"', created.text).group(1)
    row = db.session.scalar(select(ApiToken))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and row.last_used_at is None
    assert row.name == "Salesforce sync" and row.prefix == token[:12]

    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/question-sets", headers=headers).status_code == 200
    assert client.post("/api/v1/people", json=[], headers=headers).status_code == 403  # scoped to pm's roles
    listing = client.get("/account/")
    assert token not in listing.text and "never" not in listing.text  # last use is shown
    # Listed by its name and the prefix its owner saw, never by a hash they did not.
    assert "Salesforce sync" in listing.text and f"{token[:12]}…" in listing.text
    assert row.token_hash[:10] not in listing.text
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).last_used_at is not None

    revoked = client.post(f"/account/tokens/{row.id}/revoke", data={"csrf_token": csrf_token_from(listing.text)})
    assert revoked.status_code == 302
    assert client.get("/api/v1/question-sets", headers=headers).status_code == 401
    assert "revoked" in client.get("/account/").text
    actions = audit_actions()
    assert actions.index("token.created") < actions.index("token.revoked")


def test_nobody_can_revoke_or_see_someone_elses_token(app, signed_in_client, make_person):
    from surveys.auth.service import issue_api_token

    owner = make_person(email="owner@example.com", roles=("admin",))
    issue_api_token(owner)
    db.session.commit()
    row = db.session.scalar(select(ApiToken))
    intruder = signed_in_client(roles=("admin",), email="intruder@example.com")
    page = intruder.get("/account/")
    assert "No API tokens yet" in page.text
    response = intruder.post(f"/account/tokens/{row.id}/revoke", data={"csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).revoked_at is None


def test_tokens_of_a_deactivated_person_stop_working(app, client, api_token):
    headers = api_token(roles=("pm",), email="leaver@example.com")
    assert client.get("/api/v1/question-sets", headers=headers).status_code == 200
    person = db.session.scalar(select(Person).where(Person.email == "leaver@example.com"))
    person.active = False
    db.session.commit()
    assert client.get("/api/v1/question-sets", headers=headers).status_code == 401


def test_flask_users_token_still_prints_a_token_and_is_audited(app, make_person):
    make_person(email="pm@example.com")
    result = app.test_cli_runner().invoke(args=["users", "token", "--email", "pm@example.com"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("cny_")
    assert app.test_client().get("/api/v1/question-sets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "token.created"))
    assert event.actor_email is None
    assert event.details == {"owner": "pm@example.com", "name": "Command line token", "prefix": token[:12]}

    named = app.test_cli_runner().invoke(args=["users", "token", "--email", "pm@example.com", "--name", "n8n flows"])
    assert named.exit_code == 0 and db.session.scalar(select(ApiToken).where(ApiToken.name == "n8n flows"))
    blank = app.test_cli_runner().invoke(args=["users", "token", "--email", "pm@example.com", "--name", "  "])
    assert blank.exit_code != 0 and "name" in blank.output
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 2


def test_a_token_needs_a_name_and_the_form_keeps_what_was_typed(app, signed_in_client):
    client = signed_in_client(roles=("leader",), email="leader@example.com")
    page = client.get("/account/")
    blank = client.post("/account/tokens", data={"name": "   ", "csrf_token": csrf_token_from(page.text)})
    assert blank.status_code == 422 and "Give the token a name." in blank.text
    assert 'id="error-summary"' in blank.text and 'aria-invalid="true"' in blank.text
    too_long = client.post("/account/tokens", data={"name": "x" * 81, "csrf_token": csrf_token_from(page.text)})
    assert too_long.status_code == 422 and 'value="' + "x" * 81 + '"' in too_long.text
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0
    assert "token.created" not in audit_actions()


def test_tokens_made_before_prefixes_were_kept_are_listed_by_a_marked_hash(app, signed_in_client):
    client = signed_in_client(roles=("pm",), email="pm@example.com")
    person = db.session.scalar(select(Person).where(Person.email == "pm@example.com"))
    old = ApiToken(person_id=person.id, token_hash=hashlib.sha256(b"cny_old").hexdigest(), prefix=None)
    db.session.add(old)
    db.session.commit()
    listing = client.get("/account/").text
    assert "API token" in listing and f"hash {old.token_hash[:10]}…" in listing


# -- Rep links --------------------------------------------------------------------


@pytest.fixture
def rep_links(app):
    """Two reps invited to an open round, and a third to a closed one."""
    data = ScorecardData()
    version = data.version([
        {"key": "confidence", "type": "scale", "settings": {"scale_max": 5}},
        {"key": "notes", "type": "text", "required": False, "settings": {"max_length": 500}},
    ])
    open_round = data.round("2026-01", version, status="open")
    closed_round = data.round("2025-12", version, months_after_first=-1, status="closed")
    first = data.invite(open_round, data.person(name="First Rep"))
    second = data.invite(open_round, data.person(name="Second Rep"))
    late = data.invite(closed_round, data.person(name="Late Rep"))
    data.commit()
    return {name: f"/r/{invitation_token(invitation)}" for name, invitation in
            (("first", first), ("second", second), ("closed", late))}, (first, second, late)


def test_forged_truncated_foreign_and_revoked_links_all_answer_the_same_404(app, client, rep_links):
    paths, (first, second, _late) = rep_links
    assert client.get(paths["first"]).status_code == 200
    unknown = client.get("/r/not-a-token")
    assert unknown.status_code == 404
    signer = URLSafeSerializer(app.config["SECRET_KEY"], salt="canary.rep-link.v1")
    foreign = URLSafeSerializer("another-installation", salt="canary.rep-link.v1").dumps([first.id, first.nonce])
    attempts = {
        "truncated": paths["first"][:-5],
        "extended": paths["first"] + "A",
        "foreign key": f"/r/{foreign}",
        "no such invitation": f"/r/{signer.dumps([999999, 'nonce'])}",
        "another invitation's nonce": f"/r/{signer.dumps([first.id, second.nonce])}",
        "not a number": f"/r/{signer.dumps(['one', first.nonce])}",
    }
    for reason, path in attempts.items():
        response = client.get(path)
        assert response.status_code == 404, reason
        assert response.text == unknown.text, reason  # nothing tells them apart
        assert client.post(path, data={"confidence": "3"}).status_code == 404, reason
    first.nonce = "a-new-nonce"  # revoking: every link sent for it dies
    db.session.commit()
    assert client.get(paths["first"]).status_code == 404
    assert client.get(paths["second"]).status_code == 200


def test_a_link_for_a_closed_round_says_so_and_accepts_nothing(app, client, rep_links):
    paths, _ = rep_links
    page = client.get(paths["closed"])
    assert page.status_code == 200 and "closed" in page.text.lower()
    late = client.post(paths["closed"], data={"confidence": "4"})
    assert late.status_code == 410
    assert db.session.scalar(select(Response)) is None


def test_a_rep_link_grants_nothing_beyond_its_invitation(app, client, rep_links):
    paths, (first, second, _late) = rep_links
    page = client.get(paths["first"])
    stored = client.post(paths["first"], data={"csrf_token": csrf_token_from(page.text), "confidence": "5",
                                               "notes": "first rep's secret"})
    assert stored.status_code == 303
    with client.session_transaction() as session:
        assert "_user_id" not in session
    assert client.get("/home").headers["Location"].startswith("/sign-in")
    assert client.get("/scorecards/").headers["Location"].startswith("/sign-in")
    assert client.get("/api/v1/people").status_code == 401
    # The same browser opening another rep's link sees none of the first one's answers.
    assert "first rep&#39;s secret" in client.get(paths["first"]).text
    assert "first rep" not in client.get(paths["second"]).text


def test_the_rep_form_keeps_answers_when_its_csrf_token_is_missing_or_expired(app, client, rep_links, monkeypatch):
    paths, _ = rep_links
    missing = client.post(paths["first"], data={"confidence": "4", "notes": "kept <b>safe</b>"})
    assert missing.status_code == 400
    assert "Your answers are still here" in missing.text
    assert "kept &lt;b&gt;safe&lt;/b&gt;" in missing.text
    page = client.get(paths["first"])
    token = csrf_token_from(page.text)
    monkeypatch.setitem(app.config, "REP_FORM_CSRF_TIME_LIMIT", -1)
    expired = client.post(paths["first"], data={"csrf_token": token, "confidence": "4", "notes": "still here"})
    assert expired.status_code == 400 and "still here" in expired.text
    assert db.session.scalar(select(Response)) is None
    monkeypatch.setitem(app.config, "REP_FORM_CSRF_TIME_LIMIT", 7 * 24 * 3600)
    # The default one-hour limit of other forms does not apply to the rep form.
    monkeypatch.setitem(app.config, "WTF_CSRF_TIME_LIMIT", -1)
    fresh = client.get(paths["first"])
    sent = client.post(paths["first"], data={"csrf_token": csrf_token_from(fresh.text), "confidence": "4"})
    assert sent.status_code == 303


# -- CSRF on every form --------------------------------------------------------------


def test_every_form_post_without_a_csrf_token_is_refused(app, signed_in_client):
    """Every non-API route that accepts POST (or PUT, PATCH, DELETE) refuses a
    request without the token, before the view runs: 400, nothing changed."""
    client = signed_in_client(roles=("pm", "leader", "admin"), email="all@example.com")
    from tests.surveys.test_permissions import routes

    checked = []
    for endpoint, method, path in routes(app):
        if method == "GET" or path.startswith("/api/"):
            continue
        response = client.open(path, method=method, data={"anything": "x"})
        if endpoint in ("respond.respond", "deals.respond"):
            # The placeholder link; the form's own check is tested above (and in test_deals_moments).
            assert response.status_code == 404
            continue
        assert response.status_code == 400, f"{method} {path} ({endpoint}) accepted a post without CSRF token"
        checked.append(endpoint)
    assert {"auth.sign_in", "auth.sign_out", "auth.create_token", "people.import_csv", "designer.new"} <= set(checked)
    assert client.get("/home").status_code == 200  # still signed in: sign-out refused too
    assert db.session.scalar(select(ApiToken)) is None


# -- Logs ------------------------------------------------------------------------------


def test_secrets_in_urls_are_scrubbed():
    assert scrub_secrets('"GET /r/eyJhbGciOi.abc-DEF_1 HTTP/1.1" 200') == '"GET /r/[redacted] HTTP/1.1" 200'
    assert scrub_secrets("http://x.test/r/tok/thanks?q=1") == "http://x.test/r/[redacted]/thanks?q=1"
    assert scrub_secrets("/password/reset/WzEsImFiYyJd.Zz.sig") == "/password/reset/[redacted]"
    assert scrub_secrets("/scorecards/rounds/12 and /api/v1/rounds/3") == "/scorecards/rounds/12 and /api/v1/rounds/3"


def test_log_records_and_tracebacks_lose_their_tokens(app, client, rep_links, caplog):
    paths, _ = rep_links
    token = paths["first"].split("/")[-1]
    werkzeug = logging.getLogger("werkzeug")
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        werkzeug.info('%s - - "%s" %s', "127.0.0.1", f"GET {paths['first']} HTTP/1.1", 200)
    assert token not in caplog.text and "/r/[redacted]" in caplog.text
    record = logging.LogRecord("canary", logging.ERROR, __file__, 1, "failed on %s", (paths["first"],), None)
    try:
        raise ValueError(f"bad link {paths['first']}")
    except ValueError:
        record.exc_info = sys.exc_info()
    SecretUrlFilter().filter(record)
    assert token not in record.getMessage() and token not in record.exc_text
    # The installed filter is on the app's logger too.
    assert any(isinstance(f, SecretUrlFilter) for f in app.logger.filters)


@pytest.mark.slow
def test_gunicorn_access_log_scrubs_the_request_line_and_referer(app_config, tmp_path):
    env = {**os.environ, "CANARY_ENV": "development", "SECRET_KEY": "g" * 48, "CANARY_INSTANCE_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}", "REDIS_URL": app_config["REDIS_URL"]}
    port_probe = __import__("socket").socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    access_log = tmp_path / "access.log"
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--access-logfile", str(access_log), "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = requests.get(
                    f"http://127.0.0.1:{port}/r/SECRET-REP-TOKEN.abc?x=1",
                    headers={"Referer": f"http://127.0.0.1:{port}/r/OTHER-SECRET-TOKEN/thanks"}, timeout=10,
                )
                break
            except (requests.ConnectionError, requests.Timeout):  # still starting (slowly on a busy machine)
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert response.status_code == 404
        deadline = time.monotonic() + 5
        while "/r/" not in (access_log.read_text() if access_log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=20)
    logged = access_log.read_text() + stderr.decode()
    assert "GET /r/[redacted]?x=1 HTTP/1.1" in logged
    assert "/r/[redacted]/thanks" in logged
    assert "SECRET" not in logged


# -- Headers, escaping, exports ---------------------------------------------------------


def test_every_template_is_autoescaped_or_plain_text_email(app):
    for path in (ROOT / "templates").rglob("*"):
        if path.is_dir():
            continue
        name = str(path.relative_to(ROOT / "templates"))
        if name.endswith(".txt"):
            assert name.startswith(("email/", "auth/password_reset_email")), f"{name}: plain text outside email"
            continue
        assert app.jinja_env.autoescape(name), f"{name} would render without escaping"


def test_markup_and_formulas_from_the_messy_people_file_stay_text(app, signed_in_client):
    from surveys.org.people import import_people

    report = import_people(MESSY_PEOPLE.read_bytes(), skip_bad=True)
    assert report.imported
    admin = signed_in_client(roles=("admin",), email="admin@example.com")
    page = admin.get("/people/")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    export = admin.get("/people/export.csv")
    names = {row["name"] for row in csv.DictReader(io.StringIO(export.text))}
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in names
    assert not any(name.startswith(("=", "+", "-", "@", "\t", "\r")) for name in names)


def test_answers_with_markup_and_formulas_are_escaped_and_neutralised(app, client, api_token, rep_links):
    paths, (first, _second, _late) = rep_links
    page = client.get(paths["first"])
    client.post(paths["first"], data={"csrf_token": csrf_token_from(page.text), "confidence": "4",
                                      "notes": "=HYPERLINK(\"http://evil.example\") <img src=x onerror=alert(1)>"})
    headers = api_token(roles=("leader",))
    export = client.get(f"/api/v1/rounds/{first.round_id}/responses?format=csv", headers=headers)
    assert export.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(export.text)) for cell in row]
    assert any(cell.startswith("'=HYPERLINK") for cell in cells)
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in cells)
    again = client.get(paths["first"])
    assert "<img src=x" not in again.text and "&lt;img src=x onerror=alert(1)&gt;" in again.text


# -- Bad input ---------------------------------------------------------------------------


def test_oversized_and_malformed_api_bodies_get_problem_details(app, client, api_token):
    headers = api_token(roles=("admin",))
    too_big = b"[" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"]"
    response = client.post("/api/v1/people", data=too_big, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == 413 and "nothing was stored" in response.json["detail"]
    malformed = client.post("/api/v1/people", data=b'[{"email": ', headers={**headers, "Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.content_type == "application/problem+json"
    wrong_shape = client.post("/api/v1/question-sets", json=["not", "an", "object"], headers=headers)
    assert wrong_shape.status_code in (400, 422) and wrong_shape.content_type == "application/problem+json"


def test_oversized_form_posts_get_a_plain_page(app, client):
    page = client.get("/sign-in")
    response = client.post("/sign-in", data={"email": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10),
                                             "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 413
    assert "larger than 2 MB" in response.text and "Traceback" not in response.text


def test_production_shows_no_stack_trace(app_config, tmp_path):
    production = production_app(app_config, tmp_path)

    def explode():
        raise RuntimeError("secret internals /r/some-rep-token")

    production.add_url_rule("/boom", "boom", explode)
    production.add_url_rule("/api/v1/boom", "api_boom", explode)
    client = production.test_client()
    page = client.get("/boom", base_url="https://canary.example")
    assert page.status_code == 500
    assert "Something went wrong on our side" in page.text
    assert "Traceback" not in page.text and "secret internals" not in page.text
    api = client.get("/api/v1/boom", base_url="https://canary.example")
    assert api.status_code == 500 and api.content_type == "application/problem+json"
    assert "secret internals" not in api.text


# -- Audit log ------------------------------------------------------------------------------


def test_the_audit_log_is_append_only_from_the_application(app, make_person):
    actor = make_person(email="admin@example.com", roles=("admin",))
    event = record(actor, "question_set.published", "question_sets:1", {"version": 2})
    db.session.commit()
    event.action = "nothing.happened"
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, event.id))
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.execute(update(AuditEvent).values(action="rewritten"))
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.execute(delete(AuditEvent))
    db.session.rollback()
    assert audit_actions() == ["question_set.published"]
    with pytest.raises(ValueError):
        record(actor, "<script>", None)


def test_admins_read_the_audit_log_escaped_and_filtered(app, client, make_person, signed_in_client, redis_conn):
    sign_in(client, "<b>bold</b>@example.com", "guess")
    admin = signed_in_client(roles=("admin",), email="admin@example.com")
    page = admin.get("/admin/audit/")
    assert page.status_code == 200
    assert "sign_in.failed" in page.text and "sign_in" in page.text
    assert "<b>bold</b>" not in page.text and "&lt;b&gt;bold&lt;/b&gt;" in page.text
    filtered = admin.get("/admin/audit/?action=sign_in.failed")
    assert "email:&lt;b&gt;bold" in filtered.text and "admin@example.com</td>" not in filtered.text
    leader = signed_in_client(roles=("leader",), email="leader@example.com")
    assert leader.get("/admin/audit/").status_code == 403


def test_nul_characters_are_refused_at_the_door(app, client, api_token):
    """PostgreSQL cannot store NUL: it is refused with 400, never a 500."""
    headers = api_token()
    assert client.get("/api/v1/people?team=Sales%00", headers=headers).status_code == 400
    response = client.post("/api/v1/people", headers=headers,
                           json=[{"email": "nul@example.com", "name": "Nul\u0000Name", "roles": ["rep"]}])
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    page = client.get("/sign-in")
    assert client.post("/sign-in", data={"email": "a\x00@example.com", "password": "x"}).status_code == 400
    assert page.status_code == 200
