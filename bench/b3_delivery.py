"""B3: open a round for 20,000 reps and deliver every invitation to a local
SMTP sink with two workers, against a bare loop sending the same number of
messages over one SMTP connection to the same sink."""

import os
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from bench import Result
from bench.support import add_reps, bench_app, monthly_cadence, published_set

PROFILE_NOTES = [
    "first run, SQLite: 56 msg/s against a 229 msg/s floor (0.24x). pyinstrument showed each message re-reading "
    "the round, version, questions and person: every per-message commit expired the ORM objects. Fix: read the "
    "batch in one query and the round's shared parts once, as plain values; record each outcome with one UPDATE. "
    "After: 154 msg/s against 223 msg/s (0.69x).",
]
PEOPLE = 20_000
WORKERS = 2
ROOT = Path(__file__).resolve().parent.parent


class CountingSink:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"


def _sink():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = CountingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, sink


def bare_loop(port: int, count: int) -> float:
    """The floor: build and send `count` similar messages over one connection."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as connection:
        for i in range(count):
            message = EmailMessage()
            message["Subject"] = "Bench pulse: 3 questions, about 1 min"
            message["From"] = "canary@bench.local"
            message["To"] = f"Rep {i} <rep{i:06d}@bench.local>"
            message["Message-ID"] = f"<floor.{i}@bench.local>"
            message.set_content(f"Hi Rep {i},\nAnswer here: http://bench.local/r/{'x' * 60}\n" * 8)
            message.add_alternative(f"<p>Hi Rep {i}, <a href='http://bench.local/r/{'x' * 60}'>answer</a></p>" * 8, subtype="html")
            connection.send_message(message)
    return time.perf_counter() - started


def run(database: str) -> list[Result]:
    from cadence.planner import tick

    controller, sink = _sink()
    try:
        floor = bare_loop(controller.port, PEOPLE)
        sink.count = 0
        with bench_app(database, "canary_bench_b3", MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1",
                       MAIL_PORT=controller.port) as (app, workdir, settings):
            add_reps(PEOPLE)
            cadence = monthly_cadence(published_set(), reminder_days=[])
            env = dict(os.environ, DATABASE_URL=settings["SQLALCHEMY_DATABASE_URI"], REDIS_URL=settings["REDIS_URL"],
                       SECRET_KEY=settings["SECRET_KEY"], RQ_QUEUE_PREFIX=settings["RQ_QUEUE_PREFIX"],
                       CANARY_INSTANCE_DIR=str(workdir), MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1",
                       MAIL_PORT=str(controller.port), BASE_URL="http://bench.local")
            started = time.perf_counter()
            report = tick(cadence.next_open_at)
            opened = time.perf_counter() - started
            workers = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
                                        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for _ in range(WORKERS)]
            for worker in workers:
                worker.wait(timeout=3600)
            total = time.perf_counter() - started
            delivered = sink.count
    finally:
        controller.stop()
    ours = PEOPLE / total
    floor_rate = PEOPLE / floor
    return [Result(
        id="B3", title=f"open a {PEOPLE:,}-rep round and deliver with {WORKERS} workers", database=database,
        measured=f"{ours:,.0f} msg/s ({total:.1f} s, of which opening {opened:.1f} s)",
        floor=f"bare SMTP loop {floor_rate:,.0f} msg/s ({floor:.1f} s)", ratio=ours / floor_rate,
        target=">= 0.5x the floor's throughput", met=ours / floor_rate >= 0.5 and delivered == PEOPLE,
        notes=[f"{report.invitations:,} invitations created in bulk; {delivered:,} messages reached the sink"],
    )]
