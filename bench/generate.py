"""A large generated organisation for benchmarks, parametrised by size.

Default: 5,000 reps in 40 teams (a tree: Sales / region /
segment / pod), 6 regions, 3 segments; one confidential question set of 15
questions (every type); a monthly cadence with 24 rounds (the last still open);
about 70 % of invitations answered: over a million answer rows.

Rows go in with bulk executemany batches through SQLAlchemy Core (explicit
ids, no ORM objects), so the default org takes a minute or two, not hours.
A generated database remembers its parameters (table `bench_generated`), and
`ensure_generated` reuses it when they match, so B1 and B2 share one build.

    python -m bench.generate [--reps N] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parent.parent
BATCH = 20_000
FIRST_OPEN = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)
REGIONS = ["EMEA", "North America", "LATAM", "APAC", "ANZ", "Nordics", "DACH", "Benelux", "Iberia", "India"]
SEGMENTS = ["Enterprise", "Mid-Market", "SMB", "Strategic", "Public Sector"]


@dataclass(frozen=True)
class OrgSize:
    reps: int = 5_000
    teams: int = 40
    regions: int = 6
    segments: int = 3
    rounds: int = 24
    questions: int = 15
    response_rate: float = 0.7
    seed: int = 20261201


@dataclass
class GeneratedOrg:
    size: OrgSize
    cadence_id: int
    round_ids: list
    answers: int
    seconds: float


def database_url(database: str, size: OrgSize) -> str:
    """The benchmark database: a SQLite file per size under instance/bench/, or
    BENCH_DATABASE_URL for PostgreSQL (never the test database)."""
    if database == "sqlite":
        folder = ROOT / "instance" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / f'canary-bench-{size.reps}.sqlite3'}"
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        raise RuntimeError("set BENCH_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1/bench_canary)")
    from config import database_url as normalise

    url = normalise(url)
    if url.rstrip("/").rsplit("/", 1)[-1] == "test":
        raise RuntimeError("BENCH_DATABASE_URL must not be the test database")
    return url


def make_app(url: str):
    from surveys.app import create_app

    return create_app({
        "CANARY_ENV": "testing", "TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789", "MAIL_BACKEND": "outbox",
        "BASE_URL": "http://canary.bench", "WTF_CSRF_ENABLED": False,
    })


def schema_version() -> str:
    """The newest migration: an org generated under an older schema is rebuilt."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(ROOT / "migrations")).get_current_head()


def ensure_generated(app, size: OrgSize) -> GeneratedOrg:
    """The generated org in the app's database, building it when absent, of
    another size, or generated under an older schema."""
    from surveys.extensions import db

    with app.app_context():
        marker = None
        try:
            marker = db.session.execute(text("SELECT params FROM bench_generated")).scalar()
        except Exception:
            db.session.rollback()
        if marker:
            stored = json.loads(marker)
            if stored.get("size") == asdict(size) and stored.get("schema") == schema_version():
                if db.engine.dialect.name == "postgresql":
                    sync_sequences()
                return GeneratedOrg(OrgSize(**stored["size"]), stored["cadence_id"], stored["round_ids"],
                                    stored["answers"], stored["seconds"])
        return generate(size)


def generate(size: OrgSize) -> GeneratedOrg:
    """Drop everything and build the org (inside an app context)."""
    from cadence.models import Cadence, Invitation, Round
    from surveys.org.models import Person, PersonRole, Team
    from surveys.caches import forget_all as forget_cached_rows
    from surveys.extensions import db
    from surveys.models import Answer, Question, QuestionSet, QuestionSetVersion, Response
    from surveys.scorecard.tallies import rebuild_tallies

    started = time.perf_counter()
    rng = random.Random(size.seed)
    db.session.execute(text("DROP TABLE IF EXISTS bench_generated"))
    db.session.commit()
    db.drop_all()
    db.create_all()
    forget_cached_rows()  # ids start again
    connection = db.session.connection()

    def bulk(model, rows):
        for start in range(0, len(rows), BATCH):
            connection.execute(insert(model.__table__), rows[start:start + BATCH])

    teams, leaves = _team_rows(size)
    bulk(Team, teams)
    people, roles = [], []
    for person_id in range(1, size.reps + 1):
        team = leaves[(person_id - 1) % len(leaves)]
        # Mostly the team's own region and segment; a few sit elsewhere (remote, overlays).
        region = team["region"] if rng.random() < 0.95 else rng.choice(REGIONS[: size.regions])
        segment = team["segment"] if rng.random() < 0.95 else rng.choice(SEGMENTS[: size.segments])
        people.append({"id": person_id, "email": f"rep{person_id}@bench.example", "name": f"Rep {person_id}",
                       "team_id": team["id"], "region": region, "segment": segment, "timezone": "UTC",
                       "active": True, "session_version": 0, "created_at": FIRST_OPEN, "updated_at": FIRST_OPEN})
        roles.append({"person_id": person_id, "role": "rep"})
    bulk(Person, people)
    bulk(PersonRole, roles)

    questions = _questions(size.questions)
    bulk(QuestionSet, [{"id": 1, "name": "Monthly win/loss pulse", "description": "", "confidentiality": "confidential",
                        "min_group_size": 5, "comment_min_group_size": 10, "hold_until_close": False,
                        "created_at": FIRST_OPEN}])
    bulk(QuestionSetVersion, [{"id": 1, "question_set_id": 1, "number": 1, "status": "published",
                               "created_at": FIRST_OPEN, "published_at": FIRST_OPEN}])
    bulk(Question, [{"id": index + 1, "version_id": 1, "position": index, "key": q["key"], "type": q["type"],
                     "prompt": q["prompt"], "help": "", "required": q["type"] != "text", "settings": q["settings"]}
                    for index, q in enumerate(questions)])
    bulk(Cadence, [{"id": 1, "name": "Monthly pulse", "question_set_id": 1, "rrule": "FREQ=MONTHLY;BYDAY=+1MO",
                    "send_time": "09:00", "timezone": "UTC", "open_days": 7, "grace_days": 0, "reminder_days": [],
                    "add_late_joiners": False, "audience": {}, "starts_on": date(2024, 1, 1), "status": "active",
                    "created_at": FIRST_OPEN}])

    round_ids, answer_total = [], 0
    invitation_id = response_id = answer_id = 0
    mood = {person["id"]: rng.gauss(0, 0.8) for person in people}
    for index in range(size.rounds):
        opens_at = FIRST_OPEN + timedelta(days=index * 30.5)
        period = f"{2024 + index // 12:04d}-{index % 12 + 1:02d}"
        last = index == size.rounds - 1
        round_id = index + 1
        round_ids.append(round_id)
        bulk(Round, [{"id": round_id, "cadence_id": 1, "period_key": period, "question_set_version_id": 1,
                      "status": "open" if last else "closed", "scheduled_at": opens_at, "opens_at": opens_at,
                      "closes_at": opens_at + timedelta(days=7), "closed_at": None if last else opens_at + timedelta(days=7),
                      "late": False, "created_at": opens_at}])
        invitations, responses, answers = [], [], []
        drift = index / max(1, size.rounds - 1)
        for person in people:
            invitation_id += 1
            answered = rng.random() < size.response_rate
            submitted = opens_at + timedelta(hours=rng.uniform(1, 120)) if answered else None
            invitations.append({"id": invitation_id, "round_id": round_id, "person_id": person["id"],
                                "team_id": person["team_id"], "region": person["region"], "segment": person["segment"],
                                "timezone": "UTC", "send_at": opens_at, "nonce": f"n{invitation_id}",
                                "responded_at": submitted, "created_at": opens_at})
            if not answered:
                continue
            response_id += 1
            responses.append({"id": response_id, "invitation_id": invitation_id, "round_id": round_id,
                              "submitted_at": submitted, "updated_at": submitted})
            for key, value_num, value_text in _answer_values(questions, rng, mood[person["id"]], drift):
                answer_id += 1
                answers.append({"id": answer_id, "response_id": response_id, "round_id": round_id,
                                "team_id": person["team_id"], "region": person["region"], "segment": person["segment"],
                                "question_key": key, "value_num": value_num, "value_text": value_text, "detail": None})
        bulk(Invitation, invitations)
        bulk(Response, responses)
        bulk(Answer, answers)
        answer_total += len(answers)
        # The scorecard reads tallies, which submissions keep; a bulk load recounts them.
        rebuild_tallies(db.session.get(Round, round_id))
    seconds = time.perf_counter() - started
    org = GeneratedOrg(size, 1, round_ids, answer_total, round(seconds, 1))
    connection.execute(text("CREATE TABLE bench_generated (params TEXT)"))
    connection.execute(text("INSERT INTO bench_generated (params) VALUES (:params)"),
                       {"params": json.dumps({"size": asdict(size), "schema": schema_version(),
                                              "cadence_id": 1, "round_ids": round_ids,
                                              "answers": answer_total, "seconds": org.seconds})})
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        sync_sequences()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return org


def sync_sequences():
    """PostgreSQL: rows went in with explicit ids, so move each id sequence past
    them (benchmarks then add a leader, snapshots... through the ORM)."""
    from surveys.extensions import db

    for table in db.metadata.sorted_tables:
        if "id" in table.c and table.c.id.autoincrement and table.c.id.primary_key:
            db.session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM \"{table.name}\"), 0) + 1, false)"
            ))
    db.session.commit()


def _team_rows(size: OrgSize):
    """Sales / region / segment, then pods under the largest segments until
    `size.teams` teams; reps sit in the leaves."""
    rows = [{"id": 1, "name": "Sales", "parent_id": None, "path": "Sales", "region": None, "segment": None}]
    segment_teams = []
    for region in REGIONS[: size.regions]:
        region_row = {"id": len(rows) + 1, "name": region, "parent_id": 1, "path": f"Sales / {region}",
                      "region": region, "segment": None}
        rows.append(region_row)
        for segment in SEGMENTS[: size.segments]:
            segment_row = {"id": len(rows) + 1, "name": segment, "parent_id": region_row["id"],
                           "path": f"{region_row['path']} / {segment}", "region": region, "segment": segment}
            rows.append(segment_row)
            segment_teams.append(segment_row)
    with_pods = set()
    pod = 0
    while len(rows) < size.teams:
        parent = segment_teams[pod % len(segment_teams)]
        number = pod // len(segment_teams) + 1
        for letter in "AB":
            if len(rows) >= size.teams:
                break
            rows.append({"id": len(rows) + 1, "name": f"Pod {number}{letter}", "parent_id": parent["id"],
                         "path": f"{parent['path']} / Pod {number}{letter}", "region": parent["region"],
                         "segment": parent["segment"]})
        with_pods.add(parent["id"])
        pod += 1
    leaves = [row for row in rows[1:] if row["id"] not in with_pods and row["segment"] is not None]
    return [{k: v for k, v in row.items() if k in ("id", "name", "parent_id", "path")} for row in rows], leaves


QUESTION_TYPES_CYCLE = ["scale", "nps", "yes_no", "single_choice", "multi_choice", "number", "scale", "text",
                        "scale", "single_choice", "yes_no", "multi_choice", "number", "nps", "scale"]
OPTIONS = [{"key": key, "label": key.replace("_", " ").title()} for key in
           ("acme", "globex", "initech", "umbrella", "in_house", "no_decision")]


def _questions(count):
    out = []
    for index in range(count):
        kind = QUESTION_TYPES_CYCLE[index % len(QUESTION_TYPES_CYCLE)]
        settings = {}
        if kind == "scale":
            settings = {"scale_max": 5, "favorable_min": 4}
        elif kind in ("single_choice", "multi_choice"):
            settings = {"options": OPTIONS[: 4 if kind == "single_choice" else 6]}
        elif kind == "number":
            settings = {"min": 0, "max": 100, "unit": "deals"}
        out.append({"key": f"q{index + 1:02d}_{kind}", "type": kind, "prompt": f"Question {index + 1} ({kind})?",
                    "settings": settings})
    return out


def _answer_values(questions, rng, mood, drift):
    for question in questions:
        kind, key = question["type"], question["key"]
        if kind == "scale":
            yield key, float(min(5, max(1, round(3 + mood + 0.6 * drift + rng.gauss(0, 0.8))))), None
        elif kind == "nps":
            yield key, float(min(10, max(0, round(7 + 1.5 * mood + drift + rng.gauss(0, 1.5))))), None
        elif kind == "yes_no":
            yield key, 1.0 if rng.random() < 0.4 - 0.1 * drift else 0.0, None
        elif kind == "single_choice":
            yield key, None, rng.choices(["acme", "globex", "initech", "umbrella"], [4, 2 + 3 * drift, 2, 1])[0]
        elif kind == "multi_choice":
            for option in ("acme", "globex", "initech", "umbrella", "in_house", "no_decision"):
                if rng.random() < 0.3:
                    yield key, None, option
        elif kind == "number":
            yield key, float(max(0, round(rng.gauss(3 + drift, 1.5)))), None
        elif kind == "text" and rng.random() < 0.2:
            yield key, None, rng.choice(["Pricing", "Needs SSO", "Reporting", "Mobile app", "Faster sync"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.generate")
    parser.add_argument("--reps", type=int, default=OrgSize.reps)
    parser.add_argument("--rounds", type=int, default=OrgSize.rounds)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    size = OrgSize(reps=args.reps, rounds=args.rounds)
    app = make_app(database_url(args.database, size))
    org = ensure_generated(app, size)
    print(f"{org.size.reps} reps, {len(org.round_ids)} rounds, {org.answers:,} answers (built in {org.seconds} s)")


if __name__ == "__main__":
    main()
