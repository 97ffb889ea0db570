"""B4: rep answer submissions under concurrent load through a real gunicorn
server (2 workers, gunicorn.conf.py) on loopback, against the same server
answering a minimal endpoint that stores the same form with one INSERT
(bench/b4_app.py adds it; the product never has it).

Each rep opens their form first (GET: the CSRF token and the session cookie,
not timed); then CLIENTS threads post submissions as fast as the server
answers, for ROUNDS rounds of SUBMISSIONS_PER_ROUND each, alternating with
the same number of floor requests. Every loop is bounded by a count and by
MAX_SECONDS. Reported: median throughput of each, the ratio, errors, and
that every accepted submission is stored (rows counted afterwards).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import func, select

from bench import Result
from bench.support import add_reps, bench_app, free_port, monthly_cadence, published_set, wait_for_server

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_WORKERS = 2
CLIENTS = 8
ROUNDS = 3
SUBMISSIONS_PER_ROUND = 600
MAX_SECONDS = 60  # per round; a round cut short counts what it managed
REPS = ROUNDS * SUBMISSIONS_PER_ROUND
FORM = {"confidence": "4", "recommend": "9", "lost_deal": "no"}  # bench.support.published_set's questions
ANSWER_ROWS = len(FORM)
PROFILE_NOTES = [
    "first run: 195 / 137 submissions/s = 0.33x / 0.38x the floor (SQLite / PostgreSQL). pyinstrument over "
    "in-process submissions (SQLite, 7.8 ms each): storing 40 % (ORM flush of the response, answers INSERT, "
    "commit), lazy loads of round, version and questions 26 %, the WTForms class rebuilt per request 10 %, "
    "the response looked up twice 6 %. Fixes, in order: load the invitation's round, version and questions "
    "up front and cache form classes per published version (0.33x -> 0.42x on SQLite).",
    "second pass: the invitation is read with its round in one join (no joinedload chain); the frozen "
    "version and its questions are read once per process (published versions never change); a first answer "
    "no longer looks for an earlier response (responded_at tells); the response, answers and responded_at "
    "are written with four prebuilt Core statements instead of the unit of work (building a statement cost "
    "more than running it on SQLite). In process: 10.7 ms -> about 3 ms a submission on SQLite "
    "(the floor: 1.0 ms). Through gunicorn: 0.60x on SQLite and 0.52x on PostgreSQL, where the submission "
    "still makes five round trips to the floor's two.",
]


def _csrf_token(html: str) -> str:
    marker = 'name="csrf_token"'
    start = html.index(marker)
    value_at = html.index('value="', start) + len('value="')
    return html[value_at:html.index('"', value_at)]


def load(requests_to_send: list[tuple[str, dict, dict]], expected_status: int) -> tuple[float, int, list]:
    """Post every (url, data, cookies) with CLIENTS threads, stopping after
    MAX_SECONDS; returns (seconds, accepted count, errors)."""
    lock = threading.Lock()
    position = {"next": 0}
    accepted, errors = [0], []
    deadline = time.monotonic() + MAX_SECONDS

    def client():
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                index = position["next"]
                position["next"] += 1
            if index >= len(requests_to_send):
                return
            url, data, cookies = requests_to_send[index]
            try:
                response = session.post(url, data=data, cookies=cookies, allow_redirects=False, timeout=30)
            except requests.RequestException as error:
                with lock:
                    errors.append(type(error).__name__)
                continue
            with lock:
                if response.status_code == expected_status:
                    accepted[0] += 1
                else:
                    errors.append(response.status_code)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, accepted[0], errors


def run(database: str) -> list[Result]:
    from cadence.links import invitation_token
    from cadence.models import Invitation
    from cadence.planner import tick
    from surveys.extensions import db
    from surveys.models import Answer, Response
    from bench.b4_app import floor_metadata, floor_rows

    with bench_app(database, "canary_bench_b4") as (app, workdir, settings):
        add_reps(REPS)
        cadence = monthly_cadence(published_set(), reminder_days=[])
        opened = tick(cadence.next_open_at, enqueue=False)
        assert opened.invitations == REPS, opened.lines()
        floor_metadata.create_all(db.engine)
        paths = [f"/r/{invitation_token(invitation)}" for invitation in db.session.scalars(select(Invitation).order_by(Invitation.id))]
        db.session.commit()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, CANARY_ENV="development", DATABASE_URL=settings["SQLALCHEMY_DATABASE_URI"],
                   REDIS_URL=settings["REDIS_URL"], SECRET_KEY=settings["SECRET_KEY"],
                   RQ_QUEUE_PREFIX=settings["RQ_QUEUE_PREFIX"], CANARY_INSTANCE_DIR=str(workdir),
                   MAIL_BACKEND="outbox", BASE_URL=base, GUNICORN_ACCESS_LOG="/dev/null")
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py", "--workers", str(GUNICORN_WORKERS),
             "--bind", f"127.0.0.1:{port}", "bench.b4_app:app"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_server(base, server)
            # Every rep opens the form first (not timed): its token and cookie.
            submissions = []
            with requests.Session() as opener:
                for path in paths:
                    opener.cookies.clear()
                    page = opener.get(base + path, timeout=30)
                    page.raise_for_status()
                    submissions.append((base + path, {"csrf_token": _csrf_token(page.text), **FORM}, opener.cookies.get_dict()))
            floor_requests = [(base + "/bench/floor", {"csrf_token": "x" * 90, **FORM}, {}) for _ in range(SUBMISSIONS_PER_ROUND)]

            ours_rates, floor_rates, ours_accepted, floor_accepted, errors = [], [], 0, 0, []
            for round_index in range(ROUNDS):
                seconds, accepted, failed = load(floor_requests, expected_status=201)
                floor_rates.append(accepted / seconds)
                floor_accepted += accepted
                errors += [("floor", e) for e in failed]
                batch = submissions[round_index * SUBMISSIONS_PER_ROUND:(round_index + 1) * SUBMISSIONS_PER_ROUND]
                seconds, accepted, failed = load(batch, expected_status=303)
                ours_rates.append(accepted / seconds)
                ours_accepted += accepted
                errors += [("submission", e) for e in failed]
        finally:
            server.terminate()
            server.wait(timeout=30)

        db.session.expire_all()
        responses = db.session.scalar(select(func.count(Response.id)))
        answers = db.session.scalar(select(func.count(Answer.id)))
        floor_stored = db.session.scalar(select(func.count()).select_from(floor_rows))

    ours, floor = statistics.median(ours_rates), statistics.median(floor_rates)
    ratio = ours / floor
    all_stored = responses == ours_accepted and answers == ours_accepted * ANSWER_ROWS and floor_stored == floor_accepted
    return [Result(
        id="B4", title=f"rep submissions, gunicorn {GUNICORN_WORKERS} workers, {CLIENTS} concurrent clients",
        database=database,
        measured=f"{ours:,.0f} submissions/s (median of {ROUNDS} x {SUBMISSIONS_PER_ROUND})",
        floor=f"one-INSERT endpoint {floor:,.0f} req/s", ratio=ratio,
        target=">= 0.5x; zero errors; every accepted submission stored",
        met=ratio >= 0.5 and not errors and all_stored,
        notes=[f"{ours_accepted:,} submissions accepted (303), {len(errors)} errors"
               + (f" ({errors[:5]})" if errors else "")
               + f"; stored: {responses:,} responses with {answers:,} answers ({ANSWER_ROWS} each); "
               f"floor: {floor_accepted:,} accepted, {floor_stored:,} rows.",
               "per-round throughput, submissions: " + ", ".join(f"{r:,.0f}" for r in ours_rates)
               + "; floor: " + ", ".join(f"{r:,.0f}" for r in floor_rates) + " (req/s; the load client shares the 2 cores)."]
    )]

