"""The black-box security suite (issue 13): a real gunicorn process with the
production configuration, probed over HTTP as an attacker would, with only
what an outsider has plus staff accounts and API tokens of each role.

- every route x role x method of docs/permissions.md, web pages and every API
  operation with a token of each role;
- the open-redirect corpus; CSRF variants; session end on sign-out and on
  deactivation; rep-link revocation; password-reset requests doing the same
  work for known and unknown emails (checked by the jobs they queue);
- a hostile-input corpus: each a 4xx within a bounded time;
- and after each test, nothing in the server's logs: no traceback, no 5xx.

Data is set up in-process (the same database and Redis the server uses).
Production cookies are Secure and `__Host-` prefixed; the probe speaks plain
HTTP on loopback, so its client sends them back anyway (as a proxy
terminating TLS would).
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import func, select

from cadence.links import invitation_token
from surveys.org.models import Person
from surveys.auth.service import issue_api_token
from surveys.extensions import db
from tests.conftest import csrf_token_from, run_worker
from tests.builders.scorecards import ScorecardData
from tests.servers import gunicorn_server
from tests.test_processes import flask_env
from tests.surveys.test_security_probe import RAW_REDIRECT_BYPASSES, REDIRECT_BYPASSES, browser_resolves
from tests.surveys.test_permissions import outcome_of

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
BOUND = 3.0  # seconds any hostile request may take
MATRIX_ROW = re.compile(r"^\|\s*`(?P<endpoint>[\w.]+)`\s*\|\s*(?P<method>[A-Z]+)\s*\|\s*`(?P<path>[^`]+)`\s*\|"
                        r"\s*(?P<who>[^|]+?)\s*\|")
ROLES = ("anonymous", "rep", "pm", "leader", "admin")


# -- The server ----------------------------------------------------------------------


class Server:
    def __init__(self, base: str, log: Path, access_log: Path):
        self.base, self.log, self.access_log = base, log, access_log
        self.offsets = (0, 0)

    def mark(self):
        self.offsets = (self._size(self.log), self._size(self.access_log))

    @staticmethod
    def _size(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0

    def new_log_text(self) -> tuple[str, str]:
        def tail(path, offset):
            if not path.exists():
                return ""
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode(errors="replace")

        return tail(self.log, self.offsets[0]), tail(self.access_log, self.offsets[1])

    def assert_no_server_errors(self):
        errors, access = self.new_log_text()
        assert "Traceback" not in errors and "Exception on" not in errors, errors[-3000:]
        lines = [line for line in access.splitlines() if re.search(r'" \d{3} ', line)]
        assert lines, "the access log recorded nothing"
        # /healthz/workers answers 503 by design when no worker runs (none does here).
        failed = [line for line in lines if re.search(r'" 5\d\d ', line) and "/healthz" not in line]
        assert not failed, failed


@pytest.fixture(scope="module")
def server(_app, tmp_path_factory):
    folder = tmp_path_factory.mktemp("blackbox")
    env = flask_env(_app, CANARY_ENV="production", MAIL_BACKEND="smtp")
    log, access_log = folder / "server.log", folder / "access.log"
    with gunicorn_server(env, workers=2, log=log, access_log=access_log) as base:
        yield Server(base, log, access_log)


@pytest.fixture
def probe(server, app, redis_conn):
    server.mark()
    yield server
    server.assert_no_server_errors()


class Browser(requests.Session):
    """A browser on the server: keeps cookies (the Secure ones too, see the
    module docstring), follows no redirects, and reads CSRF tokens."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        kwargs["allow_redirects"] = False  # Session.get passes True itself
        kwargs.setdefault("timeout", 30)
        response = super().request(method, self.base + url if url.startswith("/") else url, *args, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return response

    def token(self, path="/sign-in") -> str:
        return csrf_token_from(self.get(path).text)

    def sign_in(self, email, password=PASSWORD, next_query=None):
        url = "/sign-in" + (f"?next={next_query}" if next_query is not None else "")
        return self.post(url, data={"email": email, "password": password, "csrf_token": self.token()})

    def is_signed_in(self) -> bool:
        return self.get("/home").status_code == 200

    def session_cookie(self):
        return next(cookie for cookie in self.cookies if cookie.name == "__Host-canary-session")


def staff(make_person, email, roles):
    person = make_person(email=email, name=email.split("@")[0].title(), roles=roles)
    return person


# -- The matrix ------------------------------------------------------------------------


def written_matrix():
    rows = []
    for line in (ROOT / "docs" / "permissions.md").read_text().splitlines():
        match = MATRIX_ROW.match(line)
        if match:
            who = match["who"]
            # "a valid signature": the CRM deal webhooks (issue 15), 401 for every caller without one.
            allowed = who if who in ("everyone", "a valid signature") else {role.strip() for role in who.split(",")}
            rows.append((match["endpoint"], match["method"], match["path"], allowed))
    return rows


def concrete(pattern: str) -> str:
    """A URL for a route pattern: ids that exist nowhere, a real static file."""
    def value(match):
        converter = match.group(1) or ""
        if converter.startswith("int"):
            return "999999"
        if converter.startswith("path"):
            return "canary.css"
        if converter.startswith("any("):
            return converter[4:].split(",")[0].strip()
        return "placeholder"

    return re.sub(r"<(?:([^:>]+):)?[^>]+>", value, pattern)


def expected(allowed, role, is_api) -> str:
    if allowed == "everyone":
        return "allowed"
    if allowed == "a valid signature":
        return "401"
    if role == "anonymous":
        return "401" if is_api else "sign-in"
    if role == "rep":
        return "403" if is_api else "sign-in"
    return "allowed" if role in allowed else "403"


def test_every_route_role_and_method_answers_as_permissions_md_says(probe, make_person):
    rows = written_matrix()
    assert len(rows) >= 80
    browsers, headers, emails = {}, {}, {}
    for role in ROLES:
        browsers[role] = Browser(probe.base)
        headers[role] = {}
        if role == "anonymous":
            continue
        emails[role] = f"{role}.blackbox@example.com"
        person = make_person(email=emails[role], name=f"{role} probe", roles=(role,),
                             password=PASSWORD if role != "rep" else None)
        headers[role] = {"Authorization": f"Bearer {issue_api_token(person)}"}
    db.session.commit()
    wrong, checked = [], 0
    for endpoint, method, pattern, allowed in rows:
        path = concrete(pattern)
        is_api = path.startswith("/api/")
        for role in ROLES:
            browser = browsers[role]
            if is_api:
                response = browser.request(method, path, headers=headers[role],
                                           json={} if method in ("POST", "PUT", "PATCH") else None)
            else:
                if role in ("pm", "leader", "admin") and not browser.is_signed_in():
                    assert browser.sign_in(emails[role]).status_code == 302
                data = None
                if method != "GET":
                    data = {"csrf_token": browser.token("/account/" if role in ("pm", "leader", "admin") else "/sign-in")}
                response = browser.request(method, path, data=data)
            checked += 1
            want, got = expected(allowed, role, is_api), outcome_of(response, path)
            if want != got:
                wrong.append(f"{role:9} {method:6} {path} ({endpoint}): expected {want}, got {got}")
    assert not wrong, "\n".join(wrong)
    assert checked == len(rows) * len(ROLES)


def test_the_api_ignores_session_cookies(probe, make_person):
    staff(make_person, "all@example.com", ("pm", "leader", "admin"))
    browser = Browser(probe.base)
    assert browser.sign_in("all@example.com").status_code == 302
    for endpoint, method, pattern, allowed in written_matrix():
        if pattern.startswith("/api/") and allowed != "everyone":
            assert browser.request(method, concrete(pattern)).status_code == 401, pattern


# -- Open redirect, CSRF, sessions --------------------------------------------------


def test_sign_in_never_redirects_off_the_site(probe, make_person):
    staff(make_person, "pm@example.com", ("pm",))
    queries = [quote(target, safe="") for target in REDIRECT_BYPASSES if "\x00" not in target] + RAW_REDIRECT_BYPASSES
    for query in queries:
        browser = Browser(probe.base)
        response = browser.sign_in("pm@example.com", next_query=query)
        if len(query) > 4094:  # gunicorn's request-line limit answers first
            assert response.status_code == 414 and "Location" not in response.headers
            continue
        assert response.status_code == 302, query
        assert browser_resolves(response.headers["Location"]) in ("", "canary.test"), (query, response.headers)
        assert response.headers["Location"] in ("/home", probe.base + "/home"), (query, response.headers["Location"])
    browser = Browser(probe.base)
    assert browser.sign_in("pm@example.com", next_query=quote("/scorecards/", safe="")).headers["Location"].endswith(
        "/scorecards/")


def test_csrf_variants_are_all_refused(probe, make_person):
    staff(make_person, "pm@example.com", ("pm",))
    browser, stranger = Browser(probe.base), Browser(probe.base)
    assert browser.sign_in("pm@example.com").status_code == 302
    good = browser.token("/account/")
    foreign = stranger.token("/sign-in")  # a valid token, of another session
    variants = {
        "none": {},
        "empty": {"csrf_token": ""},
        "garbage": {"csrf_token": "not-a-token"},
        "truncated": {"csrf_token": good[:-4]},
        "another session's": {"csrf_token": foreign},
        "wrong field name": {"csrf": good},
    }
    tokens_before = tokens_count()
    for name, data in variants.items():
        assert browser.post("/account/tokens", data=data).status_code == 400, name
    assert browser.post(f"/account/tokens?csrf_token={good}").status_code == 400  # in the query string
    assert browser.post("/account/tokens", json={"csrf_token": good}).status_code == 400  # as JSON
    assert tokens_count() == tokens_before
    assert browser.post("/account/tokens", data={"csrf_token": good, "name": "probe"}).status_code == 201  # the real thing works
    # The sign-in form needs one too.
    assert stranger.post("/sign-in", data={"email": "pm@example.com", "password": PASSWORD}).status_code == 400


def tokens_count() -> int:
    from surveys.org.models import ApiToken

    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(ApiToken))


def test_sign_out_and_deactivation_end_sessions_on_the_server(probe, make_person, api_token):
    staff(make_person, "pm@example.com", ("pm",))
    owner, thief = Browser(probe.base), Browser(probe.base)
    assert owner.sign_in("pm@example.com").status_code == 302
    cookie = owner.session_cookie()
    thief.cookies.set(cookie.name, cookie.value, domain=cookie.domain, path="/")
    assert thief.is_signed_in()
    assert owner.post("/sign-out", data={"csrf_token": owner.token("/home")}).status_code == 302
    assert not thief.is_signed_in() and not owner.is_signed_in()

    laptop = Browser(probe.base)
    assert laptop.sign_in("pm@example.com").status_code == 302 and laptop.is_signed_in()
    admin = api_token(roles=("admin",), email="admin@example.com")
    for active in (False, True):
        response = requests.post(probe.base + "/api/v1/people", headers=admin, timeout=30,
                                 json=[{"email": "pm@example.com", "name": "Pm", "active": active}])
        assert response.status_code == 200
        assert not laptop.is_signed_in(), f"after active={active}"
    assert laptop.sign_in("pm@example.com").status_code == 302 and laptop.is_signed_in()


# -- Rep links ----------------------------------------------------------------------------


def test_rep_links_are_revoked_by_an_admin_and_by_deactivation(probe, make_person, api_token):
    data = ScorecardData()
    version = data.version([{"key": "confidence", "type": "scale", "settings": {"scale_max": 5}}])
    round_ = data.round("2026-01", version, status="open")
    first, second = (data.invite(round_, data.person(name=name)) for name in ("First Rep", "Second Rep"))
    data.commit()
    first_link, second_link = (f"/r/{invitation_token(i)}" for i in (first, second))
    rep = Browser(probe.base)
    assert rep.get(first_link).status_code == 200 and rep.get(second_link).status_code == 200

    staff(make_person, "admin@example.com", ("admin",))
    admin = Browser(probe.base)
    assert admin.sign_in("admin@example.com").status_code == 302
    revoked = admin.post(f"/people/{first.person_id}/rep-links/resend", data={"csrf_token": admin.token("/people/")})
    assert revoked.status_code == 302
    page = rep.get(first_link)
    assert page.status_code == 404
    assert rep.post(first_link, data={"confidence": "4"}).status_code == 404

    # Deactivation (API) revokes the other rep's link.
    headers = api_token(roles=("admin",), email="api-admin@example.com")
    second_email = db.session.get(Person, second.person_id).email
    response = requests.post(probe.base + "/api/v1/people", headers=headers, timeout=30,
                             json=[{"email": second_email, "name": "Second Rep", "active": False}])
    assert response.status_code == 200
    assert rep.get(second_link).status_code == 404
    # A staff session opens nothing a link does not.
    assert admin.get(first_link).status_code == 404 and admin.get(second_link).status_code == 404


# -- Password reset: the same work for every email ---------------------------------------------


def test_reset_requests_queue_the_same_job_for_known_and_unknown_emails(probe, app, make_person, smtp):
    from cadence.queues import get_queue

    staff(make_person, "pm@example.com", ("pm",))
    make_person(email="rep@example.com", roles=("rep",), password=None)
    queue = get_queue("mail")
    seen = {}
    for email in ("pm@example.com", "nobody@example.com", "rep@example.com"):
        browser = Browser(probe.base)
        token = browser.token("/password/forgot")
        before = set(queue.job_ids)
        response = browser.post("/password/forgot", data={"email": email, "csrf_token": token})
        assert response.status_code == 200
        jobs = [queue.fetch_job(job_id) for job_id in set(queue.job_ids) - before]
        seen[email] = ([(job.func_name, len(job.args)) for job in jobs], response.text.replace(email, "E"))
    assert seen["pm@example.com"] == seen["nobody@example.com"] == seen["rep@example.com"]
    assert len(seen["pm@example.com"][0]) == 1
    run_worker(app, ["mail"])
    smtp.wait_for(1, timeout=5)
    assert [message["To"] for message in smtp.messages] == ["pm@example.com"]


# -- Hostile input -----------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


QUESTIONS = [{"key": "score", "type": "scale", "prompt": "How?"}]


def test_hostile_input_gets_a_quick_4xx_and_never_a_server_error(probe, make_person, api_token):
    from tests.builders.loop import set_up_org_and_cadence

    headers = api_token()
    session = requests.Session()
    cadence = set_up_org_and_cadence(session_client(probe.base), headers)
    set_id = cadence["question_set_id"]
    staff(make_person, "boss@example.com", ("admin", "pm"))
    admin = Browser(probe.base)
    assert admin.sign_in("boss@example.com").status_code == 302

    def api(method, path, **kwargs):
        return session.request(method, probe.base + path, headers={**headers, **kwargs.pop("headers", {})},
                               timeout=30, **kwargs)

    def upload(path, content, filename, page, **fields):
        return admin.post(path, data={"csrf_token": admin.token(page), **fields},
                          files={"file": (filename, io.BytesIO(content))})

    cadence_payload = {"question_set_id": set_id, "send_time": "09:00", "timezone": "UTC", "open_days": 5,
                       "starts_on": "2026-01-01"}
    json_type = {"Content-Type": "application/json"}
    people_lines = ["email,name,manager_email"] + [f"p{i}@example.com,P {i},p{max(i - 1, 0)}@example.com"
                                                   for i in range(40_000)]
    corpus = {
        "nested question set": (lambda: api("POST", "/api/v1/question-sets", headers=json_type,
                                            data='{"name": "x", "questions": ' + nested(100_000) + "}"), {400}),
        "nested people": (lambda: api("POST", "/api/v1/people", headers=json_type, data=nested(100_000)), {400}),
        "nested import": (lambda: upload("/question-sets/import", ('{"q": ' + nested(50_000) + "}").encode(),
                                         "set.json", "/question-sets/"), {422}),
        "5,000-digit number": (lambda: api("POST", "/api/v1/question-sets", headers=json_type,
                                           data='{"name": "x", "min_group_size": ' + "9" * 5000 + "}"), {400}),
        "5,000-digit number in an import": (lambda: upload(
            "/question-sets/import", ('{"name": "x", "questions": [], "min_group_size": ' + "9" * 5000 + "}").encode(),
            "set.json", "/question-sets/"), {422}),
        "NaN": (lambda: api("POST", "/api/v1/question-sets", headers=json_type,
                            data='{"name": "x", "min_group_size": NaN}'), {400}),
        "huge API page": (lambda: api("GET", "/api/v1/people?page=" + "9" * 3000), {400}),
        "request line over gunicorn's limit": (lambda: api("GET", "/api/v1/people?page=" + "9" * 5000), {414}),
        "huge preview count": (lambda: api("GET", f"/api/v1/cadences/{cadence['id']}/preview?count=" + "9" * 40),
                               {400}),
        "huge version": (lambda: admin.get(f"/question-sets/{set_id}/preview?version=" + "9" * 40), {404}),
        "id beyond any database": (lambda: api("GET", "/api/v1/question-sets/" + "9" * 30), {404}),
        "newline in a set name": (lambda: api("POST", "/api/v1/question-sets",
                                              json={"name": "Pulse\nBcc: x@example.com", "questions": QUESTIONS}),
                                  {422}),
        "escape in a cadence name": (lambda: api("POST", "/api/v1/cadences", json={
            **cadence_payload, "name": "Pulse\x1b[2J", "rrule": "FREQ=MONTHLY"}), {422}),
        "NUL in a query": (lambda: admin.get("/people/?team=%00"), {400}),
        "NUL in JSON": (lambda: api("POST", "/api/v1/question-sets",
                                    json={"name": "Pul\u0000se", "questions": QUESTIONS}), {400}),
        "NUL in an uploaded set": (lambda: upload("/question-sets/import",
                                                  json.dumps({"name": "x\u0000", "questions": QUESTIONS}).encode(),
                                                  "set.json", "/question-sets/"), {400}),
        "NUL in an uploaded CSV": (lambda: upload("/people/import", b"email,name\na@example.com,A\x00\n",
                                                  "people.csv", "/people/"), {400}),
        "reserved key meta": (lambda: api("POST", "/api/v1/question-sets", json={
            "name": "x", "questions": [{"key": "meta", "type": "scale", "prompt": "?"}]}), {422}),
        "reserved key process": (lambda: api("PUT", f"/api/v1/question-sets/{set_id}/draft", json={
            "questions": [{"key": "process", "type": "scale", "prompt": "?"}]}), {422}),
        "RRULE that never occurs": (lambda: api("POST", "/api/v1/cadences", json={
            **cadence_payload, "name": "Never", "rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}), {422}),
        "RRULE every second": (lambda: api("POST", "/api/v1/cadences", json={
            **cadence_payload, "name": "Often", "rrule": "FREQ=SECONDLY"}), {422}),
        "large people CSV dry run": (lambda: upload("/people/import", "\n".join(people_lines).encode()[:2_000_000],
                                                    "people.csv", "/people/", dry_run="y"), {422}),
        "body over 2 MB": (lambda: api("POST", "/api/v1/people", headers=json_type, data=b"[" + b" " * 2_200_000 + b"]"),
                           {413}),
        "form over the part limit": (lambda: admin.post("/question-sets/new", data=[("x", "1")] * 2000), {400, 413}),
    }
    slow, wrong = [], []
    for name, (call, statuses) in corpus.items():
        started = time.monotonic()
        response = call()
        elapsed = time.monotonic() - started
        if response.status_code not in statuses:
            wrong.append(f"{name}: {response.status_code} (expected {sorted(statuses)}): {response.text[:200]}")
        if elapsed > BOUND:
            slow.append(f"{name}: {elapsed:.1f} s")
        if response.headers.get("Content-Type", "").startswith("application/problem+json"):
            assert response.json()["detail"], name
    assert not wrong, "\n".join(wrong)
    assert not slow, "\n".join(slow)
    db.session.expire_all()
    from surveys.models import QuestionSet

    assert db.session.scalar(select(func.count()).select_from(QuestionSet)) == 1  # nothing stored


def session_client(base):
    """What set_up_org_and_cadence expects of a test client, over HTTP."""

    class Client:
        def _wrap(self, response):
            response.json = response.json() if response.content else None
            return response

        def post(self, path, json=None, headers=None):
            return self._wrap(requests.post(base + path, json=json, headers=headers, timeout=30))

        def get(self, path, headers=None):
            return self._wrap(requests.get(base + path, headers=headers, timeout=30))

    return Client()
