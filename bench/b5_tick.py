"""B5: one tick with 2,000 active cadences and 24 rounds of history each,
against an empty tick; the cost should follow due work, not history."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, insert, select

from bench import Result
from bench.support import bench_app, median_seconds, published_set

UTC = timezone.utc
CADENCES = 2000
HISTORY = 24
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def run(database: str) -> list[Result]:
    from cadence.models import Cadence, Round
    from cadence.planner import tick
    from surveys.extensions import db

    with bench_app(database, "canary_bench_b5_empty"):
        floor = median_seconds(lambda: tick(NOW))

    with bench_app(database, "canary_bench_b5"):
        question_set = published_set()
        version_id = question_set.latest_published.id
        db.session.execute(insert(Cadence), [
            {"name": f"Cadence {i}", "question_set_id": question_set.id, "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
             "send_time": "09:00", "timezone": "UTC", "open_days": 5, "grace_days": 0, "reminder_days": [2],
             "add_late_joiners": False, "audience": {}, "starts_on": datetime(2024, 11, 1).date(), "status": "active",
             "created_at": datetime(2024, 10, 1, tzinfo=UTC), "next_open_at": datetime(2026, 12, 1, 9, tzinfo=UTC)}
            for i in range(CADENCES)
        ])
        cadence_ids = list(db.session.scalars(select(Cadence.id)))
        for start in range(0, len(cadence_ids), 200):
            rows = []
            for cadence_id in cadence_ids[start:start + 200]:
                for month in range(HISTORY):
                    year, month_index = divmod(10 + month, 12)
                    opens = datetime(2024 + year, month_index + 1, 1, 9, tzinfo=UTC)
                    rows.append({"cadence_id": cadence_id, "period_key": f"{opens:%Y-%m}", "question_set_version_id": version_id,
                                 "status": "closed", "scheduled_at": opens, "opens_at": opens,
                                 "closes_at": opens + timedelta(days=5), "closed_at": opens + timedelta(days=5),
                                 "late": False, "created_at": opens})
            db.session.execute(insert(Round), rows)
        db.session.commit()
        with_history = median_seconds(lambda: tick(NOW))
        # The same cadences with a quarter of the history.
        keep_from = datetime(2026, 5, 1, tzinfo=UTC)
        db.session.execute(delete(Round).where(Round.scheduled_at < keep_from))
        db.session.commit()
        short_history = median_seconds(lambda: tick(NOW))
        due_now = db.session.get(Cadence, cadence_ids[0])
        due_now.next_open_at = None  # one cadence with due work
        db.session.commit()
        one_due = median_seconds(lambda: tick(NOW), repeat=1)

    ratio = with_history / floor if floor else None
    return [Result(
        id="B5", title=f"tick, {CADENCES:,} cadences x {HISTORY} rounds", database=database,
        measured=f"median {with_history * 1000:.0f} ms", floor=f"empty tick {floor * 1000:.0f} ms", ratio=ratio,
        target="< 500 ms", met=with_history < 0.5,
        notes=[f"with 6 rounds of history instead of 24: {short_history * 1000:.0f} ms (history does not drive the cost)",
               f"with one cadence due (planned and its next occurrence computed): {one_due * 1000:.0f} ms"],
    )]
