"""B6: peak memory of the process that opens a 50,000-person round."""

import os
import subprocess
import sys
from datetime import timezone
from pathlib import Path

from bench import Result
from bench.support import add_reps, bench_app, monthly_cadence, published_set

UTC = timezone.utc
PEOPLE = 50_000
ROOT = Path(__file__).resolve().parent.parent
LIMIT_MB = 250
PROFILE_NOTES = [
    "first run, SQLite: 313 MB peak (limit 250) against a 143 MB idle CLI: the whole audience and 150,000 "
    "delivery rows were built as Python lists at once. Fix: stream the audience in chunks of 2,000 "
    "(yield_per) and create each chunk's invitations and deliveries before the next. After: at the idle baseline.",
]

# Runs the tick in a child and reports the child's peak RSS (kilobytes on Linux).
MEASURE = """
import resource, subprocess, sys
completed = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if completed.returncode:
    sys.stderr.write(completed.stderr)
    sys.exit(completed.returncode)
sys.stdout.write(completed.stdout)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def run(database: str) -> list[Result]:
    from sqlalchemy import func, select

    from cadence.models import Invitation
    from surveys.extensions import db

    with bench_app(database, "canary_bench_b6") as (app, workdir, settings):
        add_reps(PEOPLE)
        cadence = monthly_cadence(published_set())
        env = dict(os.environ, DATABASE_URL=settings["SQLALCHEMY_DATABASE_URI"], REDIS_URL=settings["REDIS_URL"],
                   SECRET_KEY=settings["SECRET_KEY"], RQ_QUEUE_PREFIX=settings["RQ_QUEUE_PREFIX"],
                   CANARY_INSTANCE_DIR=str(workdir), MAIL_BACKEND="outbox")
        now = cadence.next_open_at.isoformat()
        baseline = _peak_kb([sys.executable, "-m", "flask", "--app", "wsgi", "cadence", "status"], env)
        peak = _peak_kb([sys.executable, "-m", "flask", "--app", "wsgi", "cadence", "tick", "--now", now], env)
        invited = db.session.scalar(select(func.count(Invitation.id)))
    peak_mb, baseline_mb = peak / 1024, baseline / 1024
    return [Result(
        id="B6", title=f"peak RSS opening a {PEOPLE:,}-person round", database=database,
        measured=f"{peak_mb:.0f} MB", floor=f"the same CLI doing no work: {baseline_mb:.0f} MB",
        ratio=peak_mb / baseline_mb, target=f"< {LIMIT_MB} MB", met=peak_mb < LIMIT_MB and invited == PEOPLE,
        notes=[f"{invited:,} invitations created by the measured tick"],
    )]


def _peak_kb(command, env) -> int:
    completed = subprocess.run([sys.executable, "-c", MEASURE, *command], cwd=ROOT, env=env, capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(completed.stderr)
    line = next(line for line in completed.stdout.splitlines() if line.startswith("MAXRSS_KB"))
    return int(line.split()[1])
