"""How the scorecard, the tick and the database grow with org size and history.

    python -m bench.scaling [--database sqlite|postgresql] [--sizes 50000,...] [--histories 6,12]

Builds generated orgs (bench/generate.py) of 1,000, 5,000, 20,000 and 50,000
reps with 24 monthly rounds, and of 5,000 reps with 6, 12 and 24 rounds, and
on each measures:

- the full scorecard of the latest round (B1's code path: every slice kind
  through `surveys.scorecard.assembly.compute_scorecards`, which `build_scorecard`
  calls for a round not yet finalized), median of 3 runs after a warm-up;
- an idle tick (nothing due: the 1,439 ticks a day that find no work),
  median of 5 runs after the first;
- the tick that opens the next round for every rep (invitations and
  deliveries in bulk), median of 3 runs, the round removed between runs;
- the peak memory of the process running that tick from the CLI, as the
  cron scheduler's worker does (B6's measure: the child's peak RSS, against
  the same CLI doing no work);
- the database's size, the answers table's with its indexes, and from the
  tables kept per round (every table with a round_id, and one round's
  deliveries, measured after the opening tick) the size a year of monthly
  rounds adds.

`--sizes` and `--histories` measure only those orgs (of the size series, and
of the history series at 5,000 reps; `--sizes ''` measures none); the
figures of the others are kept from the last runs (docs/scaling.json, per
database), and the table, the 100,000-rep row extrapolated from the two
largest sizes, and the chart are written again from all of them:
docs/scaling.md and docs/scaling.svg.
The orgs live in their own files (instance/bench/scaling-<reps>x<rounds>)
on SQLite, or in BENCH_DATABASE_URL's server as databases named
canary_scaling_<reps>x<rounds>, kept for the next run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy import delete, select, text, update

from bench.__main__ import machine
from bench.generate import OrgSize, ensure_generated, make_app

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = ROOT / "docs" / "scaling.md"
CHART = ROOT / "docs" / "scaling.svg"
FIGURES = ROOT / "docs" / "scaling.json"
SIZES = (1_000, 5_000, 20_000, 50_000)
HISTORIES = (6, 12, 24)
SIZE_AT = 5_000  # the org size of the history series
HISTORY_AT = 24  # the history of the size series
EXTRAPOLATED_REPS = 100_000
ROUNDS_A_YEAR = 12
MB = 1024 * 1024


@dataclass
class Point:
    reps: int
    rounds: int
    answers: int
    scorecard_ms: float
    scorecard_cpu_ms: float  # this process's CPU time in it; the rest is mostly waiting on the database
    idle_tick_ms: float
    opening_tick_ms: float
    invitations: int
    opening_peak_mb: float  # peak RSS of the CLI process running the opening tick
    cli_baseline_mb: float  # the same CLI doing no work
    database_mb: float
    answers_mb: float  # the answers table with its indexes
    per_round_mb: float  # every table with a round_id, divided by the rounds, plus one round's deliveries
    measured: str  # the UTC day
    extrapolated: bool = False
    load_average: float | None = None  # the machine's, over the last minute of the measurement

    @property
    def year_mb(self) -> float:
        return self.per_round_mb * ROUNDS_A_YEAR


def scaling_url(database: str, reps: int, rounds: int) -> str:
    """The generated org's database: a SQLite file, or `canary_scaling_<reps>x<rounds>`
    next to BENCH_DATABASE_URL's database, created when absent and otherwise
    reused (ensure_generated rebuilds it only if its size or schema differ)."""
    name = f"scaling-{reps}x{rounds}"
    if database == "sqlite":
        folder = ROOT / "instance" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / (name + '.sqlite3')}"
    from sqlalchemy import create_engine

    from config import database_url

    base = database_url(os.environ["BENCH_DATABASE_URL"])
    database_name = "canary_" + name.replace("-", "_")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database_name}).scalar()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{database_name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/" + database_name


def median_ms(function, runs: int, between=None) -> float:
    timings = []
    for _ in range(runs):
        if between:
            between()
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


@contextmanager
def private_redis():
    """A Redis of its own on a unix socket, as the benchmarks use (bench.support):
    the CLI tick enqueues its deliveries there, and nothing is left behind."""
    from cadence.redis_server import start_redis_server, stop_embedded_redis

    with tempfile.TemporaryDirectory(prefix="canary-scaling-") as work:
        socket_path = str(Path(work) / "redis.sock")
        process = start_redis_server(socket_path)
        deadline = time.monotonic() + 10
        while not Path(socket_path).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the private Redis did not start")
            time.sleep(0.02)
        try:
            yield f"unix://{socket_path}", work
        finally:
            stop_embedded_redis(socket_path)
            process.wait(timeout=10)


def table_bytes(tables: list[str]) -> int:
    """The tables' size with their indexes (and TOAST on PostgreSQL)."""
    from surveys.extensions import db

    if db.engine.dialect.name == "postgresql":
        return sum(db.session.scalar(text("SELECT pg_total_relation_size(:t)"), {"t": t}) for t in tables)
    # SQLite: every b-tree (the table's and its indexes') belonging to the tables.
    return sum(db.session.scalar(text("SELECT COALESCE(SUM(d.pgsize), 0) FROM dbstat d JOIN sqlite_master m "
                                      "ON m.name = d.name WHERE m.tbl_name = :t"), {"t": t}) for t in tables)


def database_bytes() -> int:
    from surveys.extensions import db

    if db.engine.dialect.name == "postgresql":
        return db.session.scalar(text("SELECT pg_database_size(current_database())"))
    return db.session.scalar(text("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"))


def compact(tables: list[str]) -> None:
    """PostgreSQL: give back the space the removed opening rounds left, so the
    next run's sizes are those of the org as generated."""
    from surveys.extensions import db

    if db.engine.dialect.name != "postgresql":
        return
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM FULL {', '.join(tables)}"))


def per_round_tables() -> list[str]:
    """The tables that grow with every round: those whose rows carry a round_id."""
    from sqlalchemy import inspect

    from surveys.extensions import db

    inspector = inspect(db.engine)
    return sorted(name for name in inspector.get_table_names()
                  if any(column["name"] == "round_id" for column in inspector.get_columns(name)))


def measure(database: str, reps: int, rounds: int) -> Point:
    from bench.b6_memory import cli_environment, opening_tick_peak_mb
    from cadence.models import Cadence, Delivery, Invitation, Round
    from cadence.planner import cadence_occurrences, tick
    from surveys.extensions import db
    from surveys.scorecard.assembly import LIVE_CARDS, compute_scorecards

    url = scaling_url(database, reps, rounds)
    app = make_app(url)
    started = time.perf_counter()
    org = ensure_generated(app, OrgSize(reps=reps, rounds=rounds))
    print(f"  {reps:,} reps x {rounds} rounds: {org.answers:,} answers ready in {time.perf_counter() - started:.0f} s", flush=True)
    with app.app_context():
        rounds_by_time = db.session.scalars(select(Round).where(Round.status != "skipped").order_by(Round.opens_at)).all()
        latest = rounds_by_time[-1]
        latest_id, latest_status, latest_closed_at = latest.id, latest.status, latest.closed_at
        known_periods = {r.period_key for r in rounds_by_time}

        # Sizes first, before the opening ticks add and remove rows.
        database_size = database_bytes()
        answers_size = table_bytes(["answers"])
        history_size = table_bytes(per_round_tables())

        scorecard_cpu = []

        def scorecard():
            started_cpu = time.process_time()
            cards = compute_scorecards(db.session.get(Round, latest_id))
            scorecard_cpu.append(time.process_time() - started_cpu)
            assert cards["team"]["slices"]

        def fresh():
            db.session.expire_all()
            LIVE_CARDS.clear()  # computed every time, not handed out again

        compute_scorecards(latest)  # warm-up
        scorecard_ms = median_ms(scorecard, 3, between=fresh)

        # Idle: just after the latest round opened. The first tick plans the
        # cadence (remembers its next occurrence); the ones after find nothing.
        idle_at = latest.opens_at
        tick(idle_at, enqueue=False)
        idle_ms = median_ms(lambda: tick(idle_at, enqueue=False), 5)

        # Opening: the first occurrence with a period not generated yet.
        cadence = db.session.get(Cadence, org.cadence_id)
        upcoming = cadence_occurrences(cadence, after=latest.scheduled_at, limit=4)
        opening_at = next(o for o in upcoming if o.period_key not in known_periods).scheduled_at
        invitations = []

        def undo_opening():
            """Put the org back as generated: no new round, the latest open again."""
            new_rounds = select(Round.id).where(Round.cadence_id == cadence.id, Round.period_key.not_in(known_periods))
            new_invitations = select(Invitation.id).where(Invitation.round_id.in_(new_rounds))
            db.session.execute(delete(Delivery).where(Delivery.invitation_id.in_(new_invitations)))
            db.session.execute(delete(Invitation).where(Invitation.round_id.in_(new_rounds)))
            db.session.execute(delete(Round).where(Round.id.in_(new_rounds)))
            db.session.execute(update(Round).where(Round.id == latest_id).values(status=latest_status, closed_at=latest_closed_at))
            db.session.execute(update(Cadence).where(Cadence.id == cadence.id).values(next_open_at=None))
            db.session.commit()
            db.session.expire_all()

        def opening_tick():
            report = tick(opening_at, enqueue=False)
            assert report.opened, report.lines()
            invitations.append(report.invitations)

        # The generated org has no deliveries: the first opening tick's are one round's.
        undo_opening()
        compact(["deliveries"])
        opening_tick()
        deliveries_size = table_bytes(["deliveries"])
        opening_ms = median_ms(opening_tick, 3, between=undo_opening)
        undo_opening()

        # Memory: the same tick from the CLI in a child process, as in production.
        with private_redis() as (redis_url, work):
            env = cli_environment(url, redis_url, work, "bench-scaling")
            peak_mb, baseline_mb = opening_tick_peak_mb(env, opening_at.isoformat())
        undo_opening()
        compact(["deliveries", "invitations", "rounds", "cadences", "tick_runs"])
        db.session.remove()
        db.engine.dispose()
    return Point(reps, rounds, org.answers, scorecard_ms, statistics.median(scorecard_cpu) * 1000, idle_ms, opening_ms, invitations[-1],
                 opening_peak_mb=peak_mb, cli_baseline_mb=baseline_mb, database_mb=database_size / MB,
                 answers_mb=answers_size / MB, per_round_mb=(history_size / rounds + deliveries_size) / MB,
                 measured=f"{datetime.now(timezone.utc):%Y-%m-%d}", load_average=os.getloadavg()[0])


# -- Output ---------------------------------------------------------------------------


def extrapolate(points: list[Point], reps: int) -> Point | None:
    """A point at `reps`, extrapolated from the two largest measured sizes:
    each figure continues the power law between them (value ~ reps^k, k from
    the two), answers and invitations grow in proportion to reps."""
    measured = sorted((p for p in points if p.rounds == HISTORY_AT and not p.extrapolated), key=lambda p: p.reps)
    if len(measured) < 2 or measured[-1].reps >= reps:
        return None
    a, b = measured[-2], measured[-1]

    def grown(name: str) -> float:
        low, high = getattr(a, name), getattr(b, name)
        if low <= 0 or high <= 0:
            return high
        exponent = math.log(high / low) / math.log(b.reps / a.reps)
        return high * (reps / b.reps) ** exponent

    return Point(reps, b.rounds, round(b.answers * reps / b.reps), grown("scorecard_ms"), grown("scorecard_cpu_ms"),
                 grown("idle_tick_ms"),
                 grown("opening_tick_ms"), round(b.invitations * reps / b.reps),
                 opening_peak_mb=grown("opening_peak_mb"), cli_baseline_mb=b.cli_baseline_mb,
                 database_mb=grown("database_mb"), answers_mb=grown("answers_mb"), per_round_mb=grown("per_round_mb"),
                 measured=b.measured, extrapolated=True)


def reps_label(p: Point) -> str:
    return f"*{p.reps:,} (extrapolated)*" if p.extrapolated else f"{p.reps:,}"


def write_markdown(points: list[Point], database: str) -> None:
    def timing_row(p: Point) -> str:
        return (f"| {reps_label(p)} | {p.rounds} | {p.answers:,} | {p.scorecard_ms:,.0f} ({p.scorecard_cpu_ms:,.0f}) | "
                f"{p.idle_tick_ms:,.1f} | "
                f"{p.opening_tick_ms:,.0f} ({p.invitations:,} invitations) | {p.measured} | "
                f"{'–' if p.load_average is None else f'{p.load_average:.1f}'} |")

    def storage_row(p: Point) -> str:
        return (f"| {reps_label(p)} | {p.opening_peak_mb:,.0f} | {p.database_mb:,.0f} | {p.answers_mb:,.0f} | "
                f"{p.per_round_mb:,.1f} | {p.year_mb:,.0f} |")

    by_size = [p for p in points if p.rounds == HISTORY_AT]
    beyond = extrapolate(points, EXTRAPOLATED_REPS)
    by_size_shown = by_size + ([beyond] if beyond else [])
    by_history = [p for p in points if p.reps == SIZE_AT]
    timing_header = ["| reps | rounds | answers | scorecard, all slices (ms; this process's CPU) | idle tick (ms) | tick opening a round (ms) | measured | load |",
                     "|---|---|---|---|---|---|---|---|"]
    storage_header = ["| reps | peak RSS, opening tick (MB) | database (MB) | answers + indexes (MB) | "
                      "per round (MB) | per year of history, 12 rounds (MB) |",
                      "|---|---|---|---|---|---|"]
    baseline = statistics.median(p.cli_baseline_mb for p in points if not p.extrapolated)
    lines = [
        "# Scaling: scorecard, tick and database against org size and history",
        "",
        f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, {database}, by "
        "`python -m bench.scaling` (each row says the day it was measured; `--sizes` re-measures some orgs and "
        "keeps the others' figures). Generated orgs from `bench/generate.py` (40 teams, 6 regions, 3 segments, "
        "15 questions, 70 % response, monthly rounds). The machine is shared with other work: **load** is its "
        f"1-minute load average (on {os.cpu_count()} cores) as each org's measurement ended (– where not "
        "recorded); compare rows measured together rather than with other machines.",
        "",
        "![scorecard and tick cost against org size and history](scaling.svg)",
        "",
        "- **scorecard**: the latest round's full scorecard (overall, team, region and segment slices, compared "
        "with the previous round and a year earlier), B1's code path; median of 3 after a warm-up. In brackets the "
        "CPU time of the process computing it (Python and the driver); the rest of the wall time is waiting: on "
        "the database, and, on a loaded machine, for a core.",
        "- **idle tick**: a tick with nothing due, what the scheduler does almost every minute; median of 5. "
        "The generated orgs hold no deliveries; B6 (`docs/benchmarks.md`) measures the idle tick with a "
        "50,000-person round's deliveries queued.",
        "- **tick opening a round**: the tick that opens the next round for every rep (invitations and deliveries "
        "in bulk); median of 3 after a warm-up, the round removed between runs.",
        "- **peak RSS, opening tick**: the same tick run by `flask --app wsgi cadence tick --now ...` in a child "
        f"process, its peak resident memory (B6's measure); the same CLI doing no work peaks at about {baseline:.0f} MB.",
        "- **database**: `pg_database_size` (SQLite: the file) of the org as generated; **answers + indexes**: "
        "that table with its indexes. **Per round**: every table whose rows carry a round_id (answers, "
        "responses, invitations, ...) divided by the rounds, plus one round's deliveries (one invitation "
        "message each, measured after the opening tick; every reminder adds a row per non-responder). "
        "**Per year**: 12 monthly rounds. Finalized scorecards (a few rows per round) are not generated.",
        "- Rows in *italics* are **extrapolated**, not measured: each figure continues the growth between the "
        "two largest measured sizes (the power law through them).",
        "",
        f"## Org size ({HISTORY_AT} rounds of history): time",
        "",
        *timing_header,
        *[timing_row(p) for p in by_size_shown],
        "",
        f"## Org size ({HISTORY_AT} rounds of history): memory and storage",
        "",
        *storage_header,
        *[storage_row(p) for p in by_size_shown],
        "",
        f"## History ({SIZE_AT:,} reps)",
        "",
        *timing_header,
        *[timing_row(p) for p in by_history],
        "",
        "## Reading",
        "",
        *reading(by_size, by_history, beyond),
        "",
    ]
    MARKDOWN.write_text("\n".join(lines))


def reading(by_size: list[Point], by_history: list[Point], beyond: Point | None) -> list[str]:
    """Growth factors, computed from the figures rather than written by hand."""
    lines = []
    if len(by_size) >= 2:
        small, large = by_size[0], by_size[-1]
        factor = large.reps / small.reps
        lines.append(
            f"- From {small.reps:,} to {large.reps:,} reps ({factor:.0f}x): the scorecard grows "
            f"{large.scorecard_ms / small.scorecard_ms:.1f}x, the tick that opens a round "
            f"{large.opening_tick_ms / small.opening_tick_ms:.1f}x (it creates {factor:.0f}x the invitations), "
            f"the idle tick {large.idle_tick_ms / small.idle_tick_ms:.1f}x, the opening tick's peak memory "
            f"{large.opening_peak_mb / small.opening_peak_mb:.2f}x (it streams the audience in chunks), the "
            f"database {large.database_mb / small.database_mb:.1f}x.")
        lines.append(
            f"- At {large.reps:,} reps a year of monthly rounds adds {large.year_mb / 1024:,.1f} GB "
            f"({large.per_round_mb:,.0f} MB a round)"
            + (f"; at {beyond.reps:,} (extrapolated) about {beyond.year_mb / 1024:,.1f} GB" if beyond else "")
            + ". The opening tick at "
            f"{large.reps:,} reps takes {large.opening_tick_ms / 1000:.1f} s and peaks at {large.opening_peak_mb:.0f} MB "
            "(issue 18's targets: under 10 s, under 250 MB).")
    if len(by_history) >= 2:
        short, long = by_history[0], by_history[-1]
        lines.append(
            f"- From {short.rounds} to {long.rounds} rounds of history ({long.rounds / short.rounds:.0f}x the answers "
            f"stored): the scorecard changes {long.scorecard_ms / short.scorecard_ms:.2f}x, the opening tick "
            f"{long.opening_tick_ms / short.opening_tick_ms:.2f}x, the idle tick {long.idle_tick_ms / short.idle_tick_ms:.2f}x. "
            "The scorecard reads the latest round, the previous one and the one a year earlier (absent below 13 "
            "rounds), never the whole history; the tick reads only what is due.")
    lines.append("- What these figures mean for one PostgreSQL server, and what to do past it: "
                 "`docs/deploy.md`, \"How far one database carries Canary\".")
    return lines


SERIES = (("scorecard_ms", "scorecard, all slices", "#1f5fa8"),
          ("opening_tick_ms", "tick opening a round", "#c2571a"),
          ("idle_tick_ms", "idle tick", "#3d8a4a"))


def write_chart(points: list[Point]) -> None:
    """Two panels sharing a log-scaled y axis in milliseconds; an extrapolated
    point is drawn hollow, joined by a dashed line."""
    width, height = 880, 420
    top, bottom, left_margin = 56, 70, 70
    panel_width = 340
    panels = [
        (left_margin, f"org size ({HISTORY_AT} rounds)", [p for p in points if p.rounds == HISTORY_AT], "reps",
         lambda p: f"{p.reps // 1000}k" + (" (extrap.)" if p.extrapolated else "")),
        (left_margin + panel_width + 110, f"history ({SIZE_AT:,} reps)", [p for p in points if p.reps == SIZE_AT],
         "rounds", lambda p: str(p.rounds)),
    ]
    beyond = extrapolate(points, EXTRAPOLATED_REPS)
    if beyond:
        panels[0][2].append(beyond)
    values = [getattr(p, key) for p in points + ([beyond] if beyond else []) for key, _, _ in SERIES]
    low = 10 ** math.floor(math.log10(max(min(values), 0.01)))
    high = 10 ** math.ceil(math.log10(max(values)))
    plot_height = height - top - bottom

    def y_of(value: float) -> float:
        fraction = (math.log10(max(value, low)) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return top + plot_height * (1 - fraction)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">Scorecard and tick cost (ms, log scale; '
        'hollow and dashed: extrapolated)</text>',
    ]
    for x0, title, series_points, axis_label, label_of in panels:
        parts.append(f'<text x="{x0 + panel_width / 2}" y="44" text-anchor="middle">{escape(title)}</text>')
        decade = low
        while decade <= high * 1.0001:
            y = y_of(decade)
            parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_width}" y2="{y:.1f}" stroke="#dddddd"/>')
            parts.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{decade:g}</text>')
            decade *= 10
        parts.append(f'<line x1="{x0}" y1="{top + plot_height}" x2="{x0 + panel_width}" y2="{top + plot_height}" stroke="#555555"/>')
        parts.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{top + plot_height}" stroke="#555555"/>')
        count = len(series_points)
        xs = [x0 + 30 + (panel_width - 60) * (i / max(1, count - 1)) for i in range(count)]
        for x, point in zip(xs, series_points):
            parts.append(f'<text x="{x:.1f}" y="{top + plot_height + 18}" text-anchor="middle">{escape(label_of(point))}</text>')
        parts.append(f'<text x="{x0 + panel_width / 2}" y="{top + plot_height + 38}" text-anchor="middle">{axis_label}</text>')
        for key, _, colour in SERIES:
            coordinates = [(x, y_of(getattr(p, key))) for x, p in zip(xs, series_points)]
            measured_count = sum(not p.extrapolated for p in series_points)
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates[:measured_count])
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            if measured_count < len(coordinates):
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates[measured_count - 1:])
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" '
                             'stroke-dasharray="5,4"/>')
            for (x, y), point in zip(coordinates, series_points):
                fill = "#ffffff" if point.extrapolated else colour
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{fill}" stroke="{colour}"/>')
                parts.append(f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" fill="{colour}" font-size="10">{getattr(point, key):,.0f}</text>'
                             if getattr(point, key) >= 10 else
                             f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" fill="{colour}" font-size="10">{getattr(point, key):.1f}</text>')
    legend_x = left_margin
    for _, label, colour in SERIES:
        parts.append(f'<rect x="{legend_x}" y="{height - 20}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 18}" y="{height - 10}">{escape(label)}</text>')
        legend_x += 200
    parts.append("</svg>")
    CHART.write_text("\n".join(parts) + "\n")


def load_figures() -> dict:
    """The points measured before, per database: {database: [Point, ...]}."""
    if not FIGURES.exists():
        return {}
    stored = json.loads(FIGURES.read_text())
    return {database: [Point(**fields) for fields in points] for database, points in stored.items()}


def save_figures(figures: dict) -> None:
    FIGURES.write_text(json.dumps({database: [asdict(p) for p in points] for database, points in figures.items()},
                                  indent=1) + "\n")


def numbers(text_value: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text_value.split(",") if part.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sizes", type=numbers, help=f"reps of the size series to measure (of {HISTORY_AT} rounds), "
                        "e.g. 50000 or 20000,50000; the others' figures are kept")
    parser.add_argument("--histories", type=numbers, help=f"rounds of the history series to measure (at {SIZE_AT:,} reps)")
    args = parser.parse_args(argv)
    if args.database == "postgresql" and not os.environ.get("BENCH_DATABASE_URL"):
        parser.error("set BENCH_DATABASE_URL for --database postgresql")
    if args.sizes is None and args.histories is None:
        args.sizes, args.histories = list(SIZES), list(HISTORIES)
    configurations = sorted({(reps, HISTORY_AT) for reps in args.sizes or ()}
                            | {(SIZE_AT, rounds) for rounds in args.histories or ()})
    figures = load_figures()
    for reps, rounds in configurations:
        print(f"measuring {reps:,} reps x {rounds} rounds on {args.database}...", flush=True)
        point = measure(args.database, reps, rounds)
        kept = [p for p in figures.get(args.database, []) if (p.reps, p.rounds) != (reps, rounds)]
        figures[args.database] = sorted(kept + [point], key=lambda p: (p.reps, p.rounds))
        save_figures(figures)  # after each org, so a later failure loses nothing
    points = figures[args.database]
    write_markdown(points, args.database)
    write_chart(points)
    print(f"wrote {MARKDOWN.relative_to(ROOT)}, {CHART.relative_to(ROOT)} and {FIGURES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
