"""B2: a 24-round trend for every question of the large generated org,
computed from the answers (`surveys.scorecard.trends.compute_trend_points`: one
value-count GROUP BY over all rounds, one distinct-respondent count for
multi-choice and text, then the metrics, confidentiality and breaks).

Floor, measured in the same run: the same raw SQL (both statements) over all
rounds, rows fetched. Target: at most 2x. Medians of 7 runs after a warm-up.
The scorecard page reads closed rounds from their finalized cards instead;
that path is reported in the notes.
"""

from __future__ import annotations

from sqlalchemy import select, text

from bench import Result
from bench.b1_scorecard import median_seconds, ms
from bench.generate import OrgSize, database_url, ensure_generated, make_app

TARGET_RATIO = 2.0

VALUES_SQL = """
SELECT round_id, question_key, value_num, value_text, COUNT(*)
FROM answers
WHERE round_id IN ({round_ids}) AND question_key IN ({value_keys})
GROUP BY round_id, question_key, value_num, value_text
"""
RESPONDENTS_SQL = """
SELECT round_id, question_key, COUNT(DISTINCT response_id)
FROM answers
WHERE round_id IN ({round_ids}) AND question_key IN ({distinct_keys})
GROUP BY round_id, question_key
"""


def _quoted(keys):
    return ", ".join("'" + key.replace("'", "''") + "'" for key in keys)


def run(database: str) -> list[Result]:
    from cadence.models import Cadence
    from surveys.extensions import db
    from surveys.scorecard.history import question_specs
    from surveys.scorecard.trends import compute_trend_points, trend_rounds, trends

    size = OrgSize()
    app = make_app(database_url(database, size))
    org = ensure_generated(app, size)
    with app.app_context():
        cadence = db.session.scalar(select(Cadence).where(Cadence.id == org.cadence_id))
        rounds = trend_rounds(cadence, last=size.rounds)
        specs = question_specs(rounds[-1].version)
        keys = [spec.key for spec in specs]
        round_ids = ", ".join(str(r.id) for r in rounds)
        value_sql = text(VALUES_SQL.format(round_ids=round_ids,
                                           value_keys=_quoted([s.key for s in specs if s.type != "text"])))
        distinct_sql = text(RESPONDENTS_SQL.format(
            round_ids=round_ids, distinct_keys=_quoted([s.key for s in specs if s.type in ("text", "multi_choice")])))

        def fresh():
            db.session.expire_all()

        def live_trends():
            points = compute_trend_points(trend_rounds(cadence, last=size.rounds), keys)
            assert len(points) == len(rounds) * len(keys)

        def floor():
            assert db.session.execute(value_sql).all() and db.session.execute(distinct_sql).all()

        def page_trends():
            series = trends(cadence, last=size.rounds, keys=keys)
            assert all(len(points) == len(rounds) for points in series.values())

        measured = median_seconds(live_trends, between=fresh)
        floor_time = median_seconds(floor, between=fresh)
        stored_time = median_seconds(page_trends, between=fresh)
        db.session.remove()
        db.engine.dispose()

    ratio = measured / floor_time
    return [Result(
        id="B2", title=f"{len(rounds)}-round trend, every question ({len(keys)})", database=database,
        measured=f"p50 {ms(measured)}", floor=f"raw SQL p50 {ms(floor_time)}", ratio=ratio,
        target=f"<= {TARGET_RATIO}x", met=ratio <= TARGET_RATIO,
        notes=[f"with finalized rounds read from their stored cards (what the page does): p50 {ms(stored_time)}."],
    )]
