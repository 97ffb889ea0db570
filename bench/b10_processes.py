"""B10: many processes, one truth (issue 18, item 4). A whole round for
REPS reps run twice on PostgreSQL, each time in a fresh database with a
private Redis and an in-process SMTP sink:

- "multi": gunicorn with 3 worker processes, 4 RQ workers and 2 cron
  schedulers (`flask --app wsgi worker`, `flask --app wsgi cadence cron`);
- "single": gunicorn with 1 worker process, 1 RQ worker, 1 cron scheduler.

In each, the cron schedulers' first ticks (on the real clock: the cadence's
occurrence is this minute) open the round and the workers deliver every
invitation; CLIENTS threads then open each rep's link from the captured mail
and post the rep's answers (drawn from a generator seeded by the rep's email,
so both runs post the same: about 60 % answer at once, some of them twice,
an edit). A tick as of the reminder's instant sends the reminders; about 10 %
more answer then; a tick as of the close closes the round and a worker
finalizes the scorecard and mails the leader's digest (the ticks at chosen
instants are how tests/test_faults_more.py's `run_a_round` steers a round,
since the cron schedulers follow the real clock).

Compared: invitations, deliveries by kind and status, messages by kind and
recipients at the sink, responses, answers, and the finalized scorecard's
numbers from `GET /api/v1/rounds/<id>/scorecard` for the whole org and each
slice kind (ids and instants left out). They must be exactly equal.

B10_REPS scales the org down while developing (e.g. B10_REPS=500). Needs
PostgreSQL (BENCH_DATABASE_URL): several processes writing at once is what
it measures; on SQLite it runs nothing.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import requests
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text

from bench import Result
from bench.b4_submissions import _csrf_token
from bench.support import add_reps, bench_app, free_port, monthly_cadence, wait_for_server

ROOT = Path(__file__).resolve().parent.parent
REPS = int(os.environ.get("B10_REPS", "20000"))
CLIENTS = 16
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@dataclass(frozen=True)
class Layout:
    name: str
    web_processes: int
    workers: int
    schedulers: int


MULTI = Layout("multi", web_processes=3, workers=4, schedulers=2)
SINGLE = Layout("single", web_processes=1, workers=1, schedulers=1)

QUESTIONS = [
    {"key": "confidence", "type": "scale", "prompt": "How confident are you?", "scale_max": 5, "favorable_min": 4},
    {"key": "recommend", "type": "nps", "prompt": "Would you recommend us?"},
    {"key": "lost_deal", "type": "yes_no", "prompt": "Did you lose a deal?", "higher_is_better": False},
    {"key": "lost_to", "type": "single_choice", "prompt": "Lost to whom?",
     "options": [{"key": "acme", "label": "Acme", "sentiment": "bad"}, {"key": "globex", "label": "Globex"}],
     "show_if": {"question": "lost_deal", "equals": "yes"}},
    {"key": "gaps", "type": "multi_choice", "prompt": "Missing features?", "required": False,
     "options": [{"key": "sso", "label": "SSO"}, {"key": "api", "label": "API"}, {"key": "mobile", "label": "Mobile"}]},
    {"key": "deals", "type": "number", "prompt": "Deals closed?", "min": 0, "max": 50, "whole_numbers": True},
    {"key": "notes", "type": "text", "prompt": "Anything else?", "required": False, "max_length": 500},
]


# -- What each rep does: the same in both runs ---------------------------------------


@dataclass(frozen=True)
class RepPlan:
    when: str | None  # "at once", "after the reminder" or None (never answers)
    submissions: tuple[dict, ...]  # one form, or two: the second is an edit


def plan_for(email: str) -> RepPlan:
    rng = random.Random(email)  # a str seed is hashed with SHA-512: the same in every process and run
    draw = rng.random()
    when = "at once" if draw < 0.6 else "after the reminder" if draw < 0.7 else None
    forms = [_answers(rng) for _ in range(2 if rng.random() < 0.15 else 1)]
    return RepPlan(when, tuple(forms))


def _answers(rng: random.Random) -> dict:
    lost = rng.random() < 0.4
    form = {"confidence": str(rng.randint(1, 5)), "recommend": str(rng.randint(0, 10)),
            "lost_deal": "yes" if lost else "no", "deals": str(rng.randint(0, 20))}
    if lost:
        form["lost_to"] = rng.choice(["acme", "globex"])
    gaps = [key for key in ("sso", "api", "mobile") if rng.random() < 0.3]
    if gaps:
        form["gaps"] = gaps
    if rng.random() < 0.2:
        form["notes"] = rng.choice(["Pricing came up", "Need SSO", "Slow legal review"])
    return form


# -- The mail sink ---------------------------------------------------------------------


class MailSink:
    """Keeps, per message, its kind and recipient, and each invitation's link."""

    LINK = re.compile(r"https?://[^\s/]+(/r/[A-Za-z0-9_.\-]+)")

    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []  # (kind, recipient)
        self.links: dict[str, str] = {}  # recipient -> path of their invitation link

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        kind, recipient = message["X-Canary-Kind"], message["To"].addresses[0].addr_spec
        link = None
        if kind == "invite":
            link = self.LINK.search(message.get_body(preferencelist=("plain",)).get_content()).group(1)
        with self.lock:
            self.received.append((kind, recipient))
            if link:
                self.links[recipient] = link
        return "250 OK"

    def count(self, kind: str) -> int:
        with self.lock:
            return sum(1 for received_kind, _ in self.received if received_kind == kind)


@contextmanager
def mail_sink():
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, sink
    finally:
        controller.stop()


# -- Processes -----------------------------------------------------------------------


@contextmanager
def processes(commands: list[list[str]], env: dict, log: Path):
    """Each command started in the project, output appended to `log`; all
    stopped (SIGTERM, then SIGKILL after 30 s) on the way out."""
    with open(log, "ab") as output:
        started = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
                   for command in commands]
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_until(condition, timeout: float, what: str, running: list[subprocess.Popen], interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while not condition():
        exited = [p.args for p in running if p.poll() is not None]
        if exited:
            raise RuntimeError(f"a process exited while waiting for {what}: {exited[0]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# -- One run ---------------------------------------------------------------------------


def run_round(database: str, layout: Layout) -> dict:
    """The whole round with `layout`'s processes; returns what is compared,
    the phases' durations and the HTTP errors."""
    from cadence.clock import utcnow
    from cadence.models import Delivery, Invitation, Round
    from cadence.planner import tick
    from surveys.auth.service import issue_api_token
    from surveys.extensions import db
    from surveys.models import Answer, Response
    from surveys.org.models import Person, Team
    from surveys.questions.drafts import create_question_set, publish
    from surveys.snapshots import ScorecardSnapshot

    def count(statement) -> int:
        db.session.rollback()  # a new transaction: see what the other processes committed
        return db.session.scalar(statement)

    def unfinished(kind: str) -> int:
        return count(select(func.count(Delivery.id)).where(
            Delivery.kind == kind, Delivery.status.in_(("pending", "queued", "sending"))))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with mail_sink() as (smtp_port, sink), bench_app(
            database, f"canary_bench_b10_{layout.name}", MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1",
            MAIL_PORT=smtp_port, BASE_URL=base) as (app, workdir, settings):
        add_reps(REPS)
        sales = db.session.scalar(select(Team).where(Team.path == "Sales"))
        leader = Person(email="lead@bench.local", name="Lee Leader", team_id=sales.id, timezone="UTC")
        leader.set_roles(["leader"])
        operator = Person(email="ops@bench.local", name="Ops", timezone="UTC")
        operator.set_roles(["pm", "admin"])
        db.session.add_all([leader, operator])
        db.session.flush()
        headers = {"Authorization": f"Bearer {issue_api_token(operator)}"}
        question_set = create_question_set(None, {"name": "Pulse", "min_group_size": 3, "questions": QUESTIONS})
        publish(question_set)
        now = utcnow()
        # Its occurrence is this minute: the cron schedulers' first ticks open it.
        monthly_cadence(question_set, name="Pulse", rrule=f"FREQ=MONTHLY;BYMONTHDAY={now.day}",
                        send_time=f"{now:%H:%M}", open_days=3, reminder_days=[1], starts_on=now.date().isoformat())
        db.session.commit()

        env = dict(os.environ, CANARY_ENV="development", DATABASE_URL=settings["SQLALCHEMY_DATABASE_URI"],
                   REDIS_URL=settings["REDIS_URL"], SECRET_KEY=settings["SECRET_KEY"],
                   RQ_QUEUE_PREFIX=settings["RQ_QUEUE_PREFIX"], CANARY_INSTANCE_DIR=str(workdir),
                   MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port), BASE_URL=base,
                   GUNICORN_ACCESS_LOG="/dev/null")
        web = [GUNICORN, "--config", "gunicorn.conf.py", "--workers", str(layout.web_processes),
               "--bind", f"127.0.0.1:{port}", "wsgi:app"]
        back = [FLASK + ["worker"]] * layout.workers + [FLASK + ["cadence", "cron"]] * layout.schedulers
        log = workdir / "processes.log"
        phases = {}
        errors: list = []
        try:
            # The web first, up before the round opens (and its start not slowed by the others').
            with ExitStack() as stack:
                (server,) = stack.enter_context(processes([web], env, log))
                wait_for_server(base, server)
                running = [server, *stack.enter_context(processes(back, env, log))]
                started = clock = time.perf_counter()

                def phase(name):
                    nonlocal clock
                    phases[name] = time.perf_counter() - clock
                    clock = time.perf_counter()

                wait_until(lambda: sink.count("invite") >= REPS and count(select(func.count(Delivery.id)).where(
                    Delivery.kind == "invite", Delivery.status == "sent")) == REPS,
                           120 + REPS / 10, "every invitation delivered", running)
                phase("open and deliver")
                round_ = db.session.scalar(select(Round))
                opens_at, closes_at, round_id = round_.opens_at, round_.closes_at, round_.id
                plans = {email: plan_for(email) for email in sink.links}

                errors += answer(base, sink.links, plans, "at once")
                phase("answers")
                tick(opens_at + timedelta(days=1, minutes=1))
                wait_until(lambda: unfinished("reminder-1") == 0 and sink.count("reminder-1") == count(
                    select(func.count(Delivery.id)).where(Delivery.kind == "reminder-1", Delivery.status == "sent")),
                           120 + REPS / 10, "the reminders delivered", running)
                phase("reminders")
                errors += answer(base, sink.links, plans, "after the reminder")
                phase("answers after the reminder")

                tick(closes_at + timedelta(minutes=1))
                wait_until(lambda: count(select(func.count(ScorecardSnapshot.id))) == 1 and sink.count("digest") >= 1,
                           300, "the finalized scorecard and the digest", running)
                phase("close and finalize")
                seconds = time.perf_counter() - started
                time.sleep(2)  # anything sent twice would arrive now
                cards = {kind or "all": strip_identity(scorecard(base, round_id, kind, headers))
                         for kind in (None, "team", "region", "segment")}
                ticks = count(text("SELECT count(*) FROM tick_runs"))
        except Exception:
            print(f"B10 {layout.name}: the processes' log ends:\n" + log.read_text()[-4000:], file=sys.stderr)
            raise

        with sink.lock:
            received = list(sink.received)
        kinds = [kind for kind, _ in received]
        db.session.rollback()
        compared = {
            "rounds": count(select(func.count(Round.id))),
            "closed": count(select(func.count(Round.id)).where(Round.status == "closed")),
            "invitations": count(select(func.count(Invitation.id))),
            "responded": count(select(func.count(Invitation.id)).where(Invitation.responded_at.is_not(None))),
            "deliveries": dict(sorted((f"{kind} {status}", number) for kind, status, number in db.session.execute(
                select(Delivery.kind, Delivery.status, func.count()).group_by(Delivery.kind, Delivery.status)))),
            "messages": {kind: kinds.count(kind) for kind in sorted(set(kinds))},
            "recipients": len(set(received)),
            "responses": count(select(func.count(Response.id))),
            "answers": count(select(func.count(Answer.id))),
            "snapshots": count(select(func.count(ScorecardSnapshot.id))),
        }
    return {"compared": compared, "cards": cards, "seconds": seconds, "phases": phases, "errors": errors,
            "ticks": ticks}


def scorecard(base: str, round_id: int, slice_kind: str | None, headers: dict) -> dict:
    response = requests.get(f"{base}/api/v1/rounds/{round_id}/scorecard", headers=headers, timeout=120,
                            params={"slice": slice_kind} if slice_kind else None)
    response.raise_for_status()
    return response.json()


def answer(base: str, links: dict, plans: dict, when: str) -> list:
    """Every rep whose plan answers `when` opens their link and posts their
    form(s), CLIENTS at a time; returns the unexpected answers."""
    def rep(email):
        problems = []
        with requests.Session() as browser:  # each rep is a browser of their own: cookie and form token
            for form in plans[email].submissions:
                try:
                    page = browser.get(base + links[email], timeout=120)
                    if page.status_code != 200:
                        problems.append(("GET", page.status_code))
                        continue
                    posted = browser.post(base + links[email], data={"csrf_token": _csrf_token(page.text), **form},
                                          allow_redirects=False, timeout=120)
                    if posted.status_code != 303:
                        problems.append(("POST", posted.status_code))
                except requests.RequestException as error:
                    problems.append(type(error).__name__)
        return problems

    emails = sorted(email for email, plan in plans.items() if plan.when == when)
    with ThreadPoolExecutor(CLIENTS) as pool:
        return [problem for problems in pool.map(rep, emails) for problem in problems]


def strip_identity(card):
    """The card's numbers without what names this installation's round (ids,
    period, instants): what two runs of the same round must share."""
    if isinstance(card, dict):
        return {key: strip_identity(value) for key, value in card.items()
                if key not in ("id", "round", "previous_round", "round_id", "period_key") and not key.endswith("_at")}
    if isinstance(card, list):
        return [strip_identity(item) for item in card]
    return card


def first_difference(left, right, path="") -> str | None:
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            found = first_difference(left.get(key), right.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if left == right else f"{path or 'value'}: {left!r} != {right!r}"


def run(database: str) -> list[Result]:
    if database != "postgresql":
        print("B10 needs PostgreSQL (BENCH_DATABASE_URL): several processes writing one database is what it measures")
        return []
    multi = run_round(database, MULTI)
    single = run_round(database, SINGLE)
    difference = (first_difference(multi["compared"], single["compared"])
                  or first_difference(multi["cards"], single["cards"]))
    errors = multi["errors"] + single["errors"]
    equal = difference is None
    described = {layout.name: f"{layout.web_processes} gunicorn worker process{'es' if layout.web_processes > 1 else ''}, "
                              f"{layout.workers} RQ worker{'s' if layout.workers > 1 else ''}, "
                              f"{layout.schedulers} cron scheduler{'s' if layout.schedulers > 1 else ''}"
                 for layout in (MULTI, SINGLE)}
    counts = multi["compared"]
    notes = [
        f"{REPS:,} reps" + ("" if REPS == 20_000 else " (scaled down from 20,000 with B10_REPS)")
        + f"; multi: {described['multi']}; single: {described['single']}; {CLIENTS} HTTP client threads; "
        "one PostgreSQL database and one private Redis per run; the machine is shared (2 cores).",
        f"counts (multi): {counts['invitations']:,} invitations, deliveries {counts['deliveries']}, "
        f"messages {counts['messages']}, {counts['responses']:,} responses ({counts['responded']:,} invitations "
        f"answered), {counts['answers']:,} answers, {counts['snapshots']} finalized scorecard; scorecards compared "
        "for the whole org and by team, region and segment. "
        + ("Equal to the single run." if equal else f"First difference (multi != single): {difference}"),
        "phases (s), multi: " + ", ".join(f"{name} {s:.0f}" for name, s in multi["phases"].items())
        + "; single: " + ", ".join(f"{name} {s:.0f}" for name, s in single["phases"].items())
        + f"; ticks run: multi {multi['ticks']}, single {single['ticks']}.",
        f"HTTP errors: {len(errors)}" + (f" (first: {errors[:5]})" if errors else "") + ".",
    ]
    return [Result(
        id="B10", title=f"a whole {REPS:,}-rep round with many processes against a single-process run",
        database=database,
        measured=f"multi {multi['seconds']:.0f} s; equal: {'yes' if equal else 'no'}",
        floor=f"single process of each {single['seconds']:.0f} s", ratio=multi["seconds"] / single["seconds"],
        target="counts and scorecard equal to a single-process run", met=equal and not errors, notes=notes,
    )]
