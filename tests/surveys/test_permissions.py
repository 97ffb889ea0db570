"""Every route and API endpoint, for every role: the permission matrix.

The rule for a route is the `required_roles` its decorator sets
(`surveys.auth.access.roles_required`, `surveys.api.base.api_roles`), or its place in the
explicit list of public routes below. A route added without either fails
`test_every_route_answers_every_role_as_its_rule_says`, and one missing from
the written matrix (docs/permissions.md) fails
`test_the_written_matrix_matches_the_code`.
"""

import re
from pathlib import Path

from flask import Flask
from werkzeug.routing import AnyConverter, FloatConverter, IntegerConverter, PathConverter

from surveys.org.models import STAFF_ROLES
from surveys.auth.service import issue_api_token
from surveys.extensions import db
from tests.conftest import csrf_token_from

ROOT = Path(__file__).resolve().parents[2]

# Open to everyone, signed in or not: signing in, password reset, rep links
# (the signed link is the credential), static files, the API description,
# and the root (which sends people to sign-in or home).
PUBLIC_ENDPOINTS = {
    "auth.sign_in",
    "auth.forgot_password",
    "auth.reset_password",
    "respond.respond",
    "respond.thanks",
    # Deal moments (issue 15): the rep's deal link; Salesforce's outbound
    # messages, which carry their organisation id (checked against an
    # allow-list) in the envelope rather than a signature.
    "deals.respond",
    "deals.thanks",
    "api.deal_events_salesforce",
    "static",
    "api.openapi_document",
    "staff.root",
    "health.web",
    "health.workers",
}

# No bearer token or session: a signature over the request authenticates it,
# so without one every caller gets 401, whatever their roles (issue 15).
SIGNED_ENDPOINTS = {"api.deal_events_generic", "api.deal_events_hubspot"}

ROLES = ("anonymous", "rep", "pm", "leader", "admin")
SKIPPED_METHODS = {"HEAD", "OPTIONS"}


def placeholder(converter):
    """A value each URL converter accepts: ids that exist nowhere, a real static file."""
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    if isinstance(converter, (IntegerConverter, FloatConverter)):
        return 999999
    if isinstance(converter, PathConverter):
        return "canary.css"
    return "placeholder"


def rule_for(app: Flask, endpoint: str):
    """("public", None) or ("roles", roles); None when the route has no rule."""
    if endpoint in PUBLIC_ENDPOINTS:
        return ("public", None)
    if endpoint in SIGNED_ENDPOINTS:
        return ("signed", None)
    roles = getattr(app.view_functions[endpoint], "required_roles", None)
    return ("roles", tuple(roles)) if roles else None


def routes(app: Flask):
    """(endpoint, method, path) for every registered route, with placeholder values."""
    for endpoint, method, path, _pattern in routes_with_patterns(app):
        yield endpoint, method, path


def routes_with_patterns(app: Flask):
    """(endpoint, method, path, pattern): `pattern` is the rule as registered."""
    adapter = app.url_map.bind("canary.test")
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        values = {name: placeholder(rule._converters[name]) for name in rule.arguments}
        for method in sorted(rule.methods - SKIPPED_METHODS):
            yield rule.endpoint, method, adapter.build(rule.endpoint, values, method=method), rule.rule


def expected_outcome(rule, role: str, is_api: bool) -> str:
    kind, roles = rule
    if kind == "public":
        return "allowed"
    if kind == "signed":
        return "401"
    if role == "anonymous":
        return "401" if is_api else "sign-in"
    if role == "rep":
        # A rep cannot sign in; a token issued to a rep carries no staff role.
        return "403" if is_api else "sign-in"
    return "allowed" if role in roles else "403"


def outcome_of(response, path: str | None = None) -> str:
    """What a route did with a request: "allowed", "401", "403", "sign-in" (a
    redirect to sign in) or a server error. `response` is a Flask test or a
    requests response (then give the `path` asked for)."""
    path = path if path is not None else response.request.path
    status = response.status_code
    # A health check answers 503 when what it checks is down (no worker runs
    # in these tests): that is the route working, and it is open to everyone.
    if status == 503 and path.startswith("/healthz"):
        return "allowed"
    if status >= 500:
        return f"server error {status}"
    if status in (401, 403):
        return str(status)
    # Flask-Login's refusal carries ?next=; sign-out's own redirect to the
    # sign-in page (the route working as meant) does not.
    location = response.headers.get("Location", "")
    if status in (301, 302, 303) and location.split("?")[0].endswith("/sign-in") and "next=" in location:
        return "sign-in"
    return "allowed"
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    if response.status_code in (401, 403):
        return str(response.status_code)
    # Flask-Login's refusal carries ?next=; sign-out's own redirect to the
    # sign-in page (the route working as meant) does not.
    location = response.headers.get("Location", "")
    if response.status_code in (301, 302, 303) and location.split("?")[0].endswith("/sign-in") and "next=" in location:
        return "sign-in"
    return "allowed"


class Actor:
    """One role's web client and API header, signing in again whenever a
    route (sign-out, sign-out everywhere) ended the session."""

    def __init__(self, app, make_person, role):
        self.app, self.role = app, role
        self.client = app.test_client()
        self.email = f"{role}.matrix@example.com"
        self.api_headers = {}
        if role == "anonymous":
            return
        person = make_person(email=self.email, name=f"{role.title()} Matrix", roles=(role,))
        self.api_headers = {"Authorization": f"Bearer {issue_api_token(person)}"}
        db.session.commit()

    def signed_in(self) -> bool:
        with self.client.session_transaction() as session:
            return "_user_id" in session

    def ensure_signed_in(self) -> None:
        if self.role in STAFF_ROLES and not self.signed_in():
            page = self.client.get("/sign-in")
            response = self.client.post(
                "/sign-in",
                data={"email": self.email, "password": "correct horse battery", "csrf_token": csrf_token_from(page.text)},
            )
            assert response.status_code == 302, response.text

    def csrf_token(self) -> str:
        """A CSRF token for this client's next form post."""
        return csrf_token_from(self.client.get("/account/" if self.role in STAFF_ROLES else "/sign-in").text)

    def request(self, method: str, path: str, is_api: bool):
        if is_api:
            return self.client.open(path, method=method, headers=self.api_headers)
        self.ensure_signed_in()
        data = {"csrf_token": self.csrf_token()} if method != "GET" else None
        return self.client.open(path, method=method, data=data)


def test_every_route_answers_every_role_as_its_rule_says(app, make_person, redis_conn):
    # A rep exists but cannot sign in: the web treats them as anonymous.
    make_person(email="rep.only@example.com", name="Rep Only", roles=("rep",), password=None)
    actors = {role: Actor(app, make_person, role) for role in ROLES}
    page = actors["anonymous"].client.get("/sign-in")
    refused = actors["anonymous"].client.post(
        "/sign-in", data={"email": "rep.only@example.com", "password": "anything at all", "csrf_token": csrf_token_from(page.text)}
    )
    assert refused.status_code == 200 and "do not match a staff account" in refused.text

    without_rule, wrong = [], []
    checked = 0
    for endpoint, method, path in routes(app):
        rule = rule_for(app, endpoint)
        if rule is None:
            without_rule.append(f"{method} {path} ({endpoint})")
            continue
        is_api = path.startswith("/api/")
        for role in ROLES:
            response = actors[role].request(method, path, is_api)
            expected, got = expected_outcome(rule, role, is_api), outcome_of(response)
            checked += 1
            if expected != got:
                wrong.append(f"{role:9} {method:4} {path} ({endpoint}): expected {expected}, got {got}")
    assert not without_rule, "routes without a permission rule (use roles_required/api_roles, or list them as public):\n" + "\n".join(without_rule)
    assert not wrong, "\n".join(wrong)
    assert checked >= 5 * 40  # every role, every route: the loop really ran


def test_the_api_never_accepts_a_session_cookie(app, signed_in_client):
    client = signed_in_client(roles=("pm", "leader", "admin"), email="cookie@example.com")
    api_endpoints = [(method, path) for endpoint, method, path in routes(app) if path.startswith("/api/")
                     and rule_for(app, endpoint)[0] == "roles"]
    assert api_endpoints
    for method, path in api_endpoints:
        assert client.open(path, method=method).status_code == 401, path


MATRIX_ROW = re.compile(r"^\|\s*`(?P<endpoint>[\w.]+)`\s*\|\s*(?P<method>[A-Z]+)\s*\|[^|]*\|\s*(?P<who>[^|]+?)\s*\|")


def test_the_written_matrix_matches_the_code(app):
    """docs/permissions.md lists every route with who may use it."""
    written = {}
    for line in (ROOT / "docs" / "permissions.md").read_text().splitlines():
        match = MATRIX_ROW.match(line)
        if match:
            written[(match["endpoint"], match["method"])] = match["who"]
    problems = []
    for endpoint, method, _path, pattern in routes_with_patterns(app):
        rule = rule_for(app, endpoint)
        if rule is None:
            continue
        expected = {"public": "everyone", "signed": "a valid signature"}.get(rule[0]) or ", ".join(sorted(rule[1]))
        got = written.pop((endpoint, method), None)
        if got != expected:
            problems.append(f"| `{endpoint}` | {method} | `{pattern}` | {expected} |  (the doc says: {got})")
    problems += [f"{endpoint} {method}: in the doc but not registered" for endpoint, method in written]
    assert not problems, "docs/permissions.md is out of date:\n" + "\n".join(problems)


def test_a_route_added_without_a_rule_is_caught(app_config):
    from surveys.app import create_app

    probe = create_app(app_config)
    probe.add_url_rule("/unguarded", "unguarded", lambda: "open to all")
    assert rule_for(probe, "unguarded") is None
    assert rule_for(probe, "audit.index") == ("roles", ("admin",))
    assert rule_for(probe, "static") == ("public", None)
