"""How the scorecard and the tick grow with org size and with history.

    python -m bench.scaling [--database sqlite|postgresql]

Builds generated orgs (bench/generate.py) of 1,000, 5,000 and 20,000 reps
with 24 monthly rounds, and of 5,000 reps with 6, 12 and 24 rounds, and on
each measures:

- the full scorecard of the latest round (B1's code path: every slice kind
  through `surveys.scorecard.assembly.compute_scorecards`, which `build_scorecard`
  calls for a round not yet finalized), median of 3 runs after a warm-up;
- an idle tick (nothing due: the 1,439 ticks a day that find no work),
  median of 5 runs after the first;
- the tick that opens the next round for every rep (invitations and
  deliveries in bulk), median of 3 runs, the round removed between runs.

Writes docs/scaling.md (the table) and docs/scaling.svg (the chart, drawn
here: log-scaled milliseconds against reps and against rounds of history).
The orgs live in their own files (instance/bench/scaling-<reps>x<rounds>)
on SQLite, or in BENCH_DATABASE_URL's server as databases of that name.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy import delete, select, update

from bench.__main__ import machine
from bench.generate import OrgSize, ensure_generated, make_app

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = ROOT / "docs" / "scaling.md"
CHART = ROOT / "docs" / "scaling.svg"
SIZES = (1_000, 5_000, 20_000)
HISTORIES = (6, 12, 24)
SIZE_AT = 5_000  # the org size of the history series
HISTORY_AT = 24  # the history of the size series


@dataclass
class Point:
    reps: int
    rounds: int
    answers: int
    scorecard_ms: float
    idle_tick_ms: float
    opening_tick_ms: float
    invitations: int


def scaling_url(database: str, reps: int, rounds: int) -> str:
    name = f"scaling-{reps}x{rounds}"
    if database == "sqlite":
        folder = ROOT / "instance" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / (name + '.sqlite3')}"
    from bench.support import fresh_database_url

    # Only create the database when it does not exist: generated orgs are reused.
    from sqlalchemy import create_engine, text

    from config import database_url

    base = database_url(os.environ["BENCH_DATABASE_URL"])
    database_name = "canary_" + name.replace("-", "_")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database_name}).scalar()
    admin.dispose()
    if exists:
        return base.rsplit("/", 1)[0] + "/" + database_name
    return fresh_database_url(database, database_name, ROOT / "instance")


def median_ms(function, runs: int, between=None) -> float:
    timings = []
    for _ in range(runs):
        if between:
            between()
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def measure(database: str, reps: int, rounds: int) -> Point:
    from cadence.models import Cadence, Delivery, Invitation, Round
    from cadence.planner import cadence_occurrences, tick
    from surveys.extensions import db
    from surveys.scorecard.assembly import LIVE_CARDS, compute_scorecards

    app = make_app(scaling_url(database, reps, rounds))
    started = time.perf_counter()
    org = ensure_generated(app, OrgSize(reps=reps, rounds=rounds))
    print(f"  {reps:,} reps x {rounds} rounds: {org.answers:,} answers ready in {time.perf_counter() - started:.0f} s", flush=True)
    with app.app_context():
        rounds_by_time = db.session.scalars(select(Round).where(Round.status != "skipped").order_by(Round.opens_at)).all()
        latest = rounds_by_time[-1]
        latest_id, latest_status, latest_closed_at = latest.id, latest.status, latest.closed_at
        known_periods = {r.period_key for r in rounds_by_time}

        def scorecard():
            cards = compute_scorecards(db.session.get(Round, latest_id))
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

        opening_ms = median_ms(opening_tick, 3, between=undo_opening)
        undo_opening()
        db.session.remove()
        db.engine.dispose()
    return Point(reps, rounds, org.answers, scorecard_ms, idle_ms, opening_ms, invitations[-1])


# -- Output ---------------------------------------------------------------------------


def write_markdown(points: list[Point], database: str) -> None:
    def row(p: Point) -> str:
        return (f"| {p.reps:,} | {p.rounds} | {p.answers:,} | {p.scorecard_ms:,.0f} | {p.idle_tick_ms:,.1f} | "
                f"{p.opening_tick_ms:,.0f} ({p.invitations:,} invitations) |")

    by_size = [p for p in points if p.rounds == HISTORY_AT]
    by_history = [p for p in points if p.reps == SIZE_AT]
    header = ["| reps | rounds | answers | scorecard, all slices (ms) | idle tick (ms) | tick opening a round (ms) |",
              "|---|---|---|---|---|---|"]
    lines = [
        "# Scaling: scorecard and tick against org size and history",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, {database}, with "
        "`python -m bench.scaling`. Generated orgs from `bench/generate.py` (40 teams, 6 regions, 3 segments, "
        "15 questions, 70 % response).",
        "",
        "![scorecard and tick cost against org size and history](scaling.svg)",
        "",
        "- **scorecard**: the latest round's full scorecard (overall, team, region and segment slices, compared "
        "with the previous round and a year earlier), B1's code path; median of 3 after a warm-up.",
        "- **idle tick**: a tick with nothing due, what the scheduler does almost every minute; median of 5.",
        "- **tick opening a round**: the tick that opens the next round for every rep (invitations and deliveries "
        "in bulk); median of 3, the round removed between runs.",
        "",
        f"## Org size ({HISTORY_AT} rounds of history)",
        "",
        *header,
        *[row(p) for p in by_size],
        "",
        f"## History ({SIZE_AT:,} reps)",
        "",
        *header,
        *[row(p) for p in by_history],
        "",
        "## Reading",
        "",
        *reading(by_size, by_history),
        "",
    ]
    MARKDOWN.write_text("\n".join(lines))


def reading(by_size: list[Point], by_history: list[Point]) -> list[str]:
    """Growth factors, computed from the figures rather than written by hand."""
    lines = []
    if len(by_size) >= 2:
        small, large = by_size[0], by_size[-1]
        factor = large.reps / small.reps
        lines.append(
            f"- From {small.reps:,} to {large.reps:,} reps ({factor:.0f}x): the scorecard grows "
            f"{large.scorecard_ms / small.scorecard_ms:.1f}x, the tick that opens a round "
            f"{large.opening_tick_ms / small.opening_tick_ms:.1f}x (it creates {factor:.0f}x the invitations), "
            f"the idle tick {large.idle_tick_ms / small.idle_tick_ms:.1f}x.")
    if len(by_history) >= 2:
        short, long = by_history[0], by_history[-1]
        lines.append(
            f"- From {short.rounds} to {long.rounds} rounds of history ({long.rounds / short.rounds:.0f}x the answers "
            f"stored): the scorecard changes {long.scorecard_ms / short.scorecard_ms:.2f}x, the opening tick "
            f"{long.opening_tick_ms / short.opening_tick_ms:.2f}x, the idle tick {long.idle_tick_ms / short.idle_tick_ms:.2f}x. "
            "The scorecard reads the latest round, the previous one and the one a year earlier (absent below 13 "
            "rounds), never the whole history; the tick reads only what is due.")
    return lines


SERIES = (("scorecard_ms", "scorecard, all slices", "#1f5fa8"),
          ("opening_tick_ms", "tick opening a round", "#c2571a"),
          ("idle_tick_ms", "idle tick", "#3d8a4a"))


def write_chart(points: list[Point]) -> None:
    """Two panels sharing a log-scaled y axis in milliseconds."""
    width, height = 880, 420
    top, bottom, left_margin = 56, 70, 70
    panel_width = 340
    panels = [
        (left_margin, f"org size ({HISTORY_AT} rounds)", [p for p in points if p.rounds == HISTORY_AT], "reps",
         lambda p: f"{p.reps // 1000}k"),
        (left_margin + panel_width + 110, f"history ({SIZE_AT:,} reps)", [p for p in points if p.reps == SIZE_AT],
         "rounds", lambda p: str(p.rounds)),
    ]
    values = [getattr(p, key) for p in points for key, _, _ in SERIES]
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
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">Scorecard and tick cost (ms, log scale)</text>',
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
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for (x, y), point in zip(coordinates, series_points):
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    if args.database == "postgresql" and not os.environ.get("BENCH_DATABASE_URL"):
        parser.error("set BENCH_DATABASE_URL for --database postgresql")
    configurations = [(reps, HISTORY_AT) for reps in SIZES] + [(SIZE_AT, rounds) for rounds in HISTORIES if rounds != HISTORY_AT]
    points = []
    for reps, rounds in configurations:
        print(f"measuring {reps:,} reps x {rounds} rounds on {args.database}...", flush=True)
        points.append(measure(args.database, reps, rounds))
    points.sort(key=lambda p: (p.reps, p.rounds))
    write_markdown(points, args.database)
    write_chart(points)
    print(f"wrote {MARKDOWN.relative_to(ROOT)} and {CHART.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
