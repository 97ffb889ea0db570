"""B8: watching every published metric of every slice when a round closes,
for the large generated org (5,000 reps, 40 teams, 6 regions, 3 segments,
15 questions, 24 monthly rounds).

Set-up (not timed): every closed round is finalized and its watched points
stored, as round closes would have left them. Timed: `watch_round` for the
latest closed round from scratch (its points removed first): reading what
its finalized card published and the exact counts from the stored sums,
reading 24 earlier rounds' points (one row each), cutting series at breaks
and running both charts on every series. Target: under 2 s. Its cost grows
with the number of watched metrics: the timed path never reads an answer.

Floor, same run: reading and decoding the stored points of those rounds
(the least any watcher must read). Medians of 7 runs after a warm-up.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from bench import Result
from bench.b1_scorecard import median_seconds, ms
from bench.generate import OrgSize, database_url, ensure_generated, make_app

TARGET_SECONDS = 2.0


def run(database: str) -> list[Result]:
    from cadence.models import Round
    from surveys.alert_models import Alert, AlertPoints
    from surveys.alerts import history_rounds, round_points, watch_round
    from surveys.extensions import db
    from surveys.scorecard.finalized import finalize_scorecard

    size = OrgSize()
    app = make_app(database_url(database, size))
    org = ensure_generated(app, size)
    with app.app_context():
        closed = db.session.scalars(
            select(Round).where(Round.cadence_id == org.cadence_id, Round.status == "closed").order_by(Round.opens_at)
        ).all()
        for round_ in closed:  # what each close would have stored
            finalize_scorecard(round_)
            round_points(round_)
        latest = closed[-1]
        earlier_ids = [r.id for r in history_rounds(latest)]

        def fresh():
            db.session.execute(delete(Alert).where(Alert.round_id == latest.id))
            db.session.execute(delete(AlertPoints).where(AlertPoints.round_id == latest.id))
            db.session.commit()
            db.session.expire_all()

        def watch():
            watch_round(db.session.get(Round, latest.id))

        def floor():
            rows = db.session.scalars(select(AlertPoints.points).where(AlertPoints.round_id.in_(earlier_ids))).all()
            assert rows

        measured = median_seconds(watch, between=fresh)
        floor_time = median_seconds(floor, between=lambda: db.session.expire_all())
        points = db.session.scalar(select(AlertPoints).where(AlertPoints.round_id == latest.id)).points
        alerts = db.session.query(Alert).filter(Alert.round_id == latest.id).count()
        db.session.remove()
        db.engine.dispose()

    return [Result(
        id="B8", title=f"alerts at round close: {len(points)} watched metrics x {len(earlier_ids)} rounds",
        database=database, measured=f"p50 {ms(measured)}", floor=f"reading the stored points p50 {ms(floor_time)}",
        ratio=measured / floor_time, target=f"< {TARGET_SECONDS:.0f} s", met=measured < TARGET_SECONDS,
        notes=[f"{len(points)} watched metric-slice pairs, {alerts} alerts on the generated data; "
               f"{1e6 * measured / len(points):.0f} us per watched metric."],
    )]


def main():
    for result in run("sqlite"):
        print(result)


if __name__ == "__main__":
    main()
