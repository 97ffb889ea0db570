"""The answers' tallies (surveys.models.AnswerTally and RespondentTally): what
a scorecard reads instead of the answers themselves.

They are kept in the transaction that stores or replaces a response
(surveys.answers.store_response calls `record_change`), so a card read after
a commit counts exactly the answers committed. `recount_cells` is the same
sums computed from the answers; `tally_drift` compares the two (a round is
checked when it closes, before its scorecard is finalized, and
`flask scorecard check-tallies` checks any round), and `rebuild_tallies`
recounts a round's tallies from its answers (after a bulk load, or to repair).

Concurrency: each submission adds its difference to a few rows with one
INSERT .. ON CONFLICT DO UPDATE per table, rows in a fixed order (their
slots, sorted), so two submissions touching the same rows queue one behind
the other instead of deadlocking, and they do it last, just before the
commit, so the rows stay locked for as little time as possible.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from surveys.extensions import db
from surveys.models import Answer, AnswerTally, RespondentTally

_values, _respondents = AnswerTally.__table__, RespondentTally.__table__


def _number(value):
    # -0.0 and 0.0 are one value to SQL's GROUP BY; they must be one slot too.
    return None if value is None else float(value) + 0.0


def value_slot(cell, key, value_num, value_text) -> str:
    """The unique name of one value of one question in one (team, region, segment) cell."""
    return json.dumps([*cell, key, _number(value_num), value_text], separators=(",", ":"))


def respondent_slot(cell, key) -> str:
    return json.dumps([*cell, key], separators=(",", ":"))


def _upsert(table, counted: str):
    """INSERT .. ON CONFLICT (round_id, slot) DO UPDATE count = count + the new row's."""
    dialect = db.session.get_bind().dialect.name
    module = {"postgresql": postgresql, "sqlite": sqlite}[dialect]
    statement = module.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.round_id, table.c.slot],
        set_={counted: table.c[counted] + statement.excluded[counted]},
    )


def record_change(round_id: int, cell: tuple, text_keys, removed: list[tuple], added: list[tuple]) -> None:
    """Add one response's change to its round's tallies: `removed` and `added`
    are its (question key, value_num, value_text) rows before and after (one
    of them empty for a first answer or a deletion). `cell` is the response's
    (team_id, region, segment); `text_keys` the round's free-text questions."""
    value_changes = Counter()
    for key, num, value_text in added:
        if key not in text_keys:
            value_changes[(key, _number(num), value_text)] += 1
    for key, num, value_text in removed:
        if key not in text_keys:
            value_changes[(key, _number(num), value_text)] -= 1
    respondent_changes = Counter()
    for key in {row[0] for row in added}:
        respondent_changes[key] += 1
    for key in {row[0] for row in removed}:
        respondent_changes[key] -= 1

    team_id, region, segment = cell
    common = {"round_id": round_id, "team_id": team_id, "region": region, "segment": segment}
    respondent_rows = sorted(
        ({**common, "slot": respondent_slot(cell, key), "question_key": key, "respondents": change}
         for key, change in respondent_changes.items() if change),
        key=lambda row: row["slot"])
    value_rows = sorted(
        ({**common, "slot": value_slot(cell, key, num, value_text), "question_key": key, "value_num": num,
          "value_text": value_text, "answers": change}
         for (key, num, value_text), change in value_changes.items() if change),
        key=lambda row: row["slot"])
    if respondent_rows:
        db.session.execute(_upsert(_respondents, "respondents"), respondent_rows)
    if value_rows:
        db.session.execute(_upsert(_values, "answers"), value_rows)


def text_keys_of(version) -> frozenset:
    """A version's free-text questions: their answers count respondents only."""
    if version is None:
        return frozenset()
    return frozenset(question.key for question in version.questions if question.type == "text")


# -- Recount, check, rebuild --------------------------------------------------------------


def recount_cells(round_) -> tuple[dict, dict]:
    """The round's tallies computed from its answers: ({value slot: (row, answers)},
    {respondent slot: (row, respondents)}), each row a dict of the tally's columns."""
    text_keys = text_keys_of(round_.version)
    cell_columns = (Answer.team_id, Answer.region, Answer.segment)
    values = {}
    statement = (
        select(*cell_columns, Answer.question_key, Answer.value_num, Answer.value_text, func.count())
        .where(Answer.round_id == round_.id)
        .group_by(*cell_columns, Answer.question_key, Answer.value_num, Answer.value_text)
    )
    if text_keys:
        statement = statement.where(Answer.question_key.not_in(text_keys))
    for team_id, region, segment, key, num, value_text, count in db.session.execute(statement):
        cell = (team_id, region, segment)
        row = {"team_id": team_id, "region": region, "segment": segment, "question_key": key,
               "value_num": _number(num), "value_text": value_text}
        values[value_slot(cell, key, num, value_text)] = (row, count)
    respondents = {}
    statement = (
        select(*cell_columns, Answer.question_key, func.count(func.distinct(Answer.response_id)))
        .where(Answer.round_id == round_.id)
        .group_by(*cell_columns, Answer.question_key)
    )
    for team_id, region, segment, key, count in db.session.execute(statement):
        cell = (team_id, region, segment)
        row = {"team_id": team_id, "region": region, "segment": segment, "question_key": key}
        respondents[respondent_slot(cell, key)] = (row, count)
    return values, respondents


def stored_cells(round_id: int) -> tuple[dict, dict]:
    """The round's tallies as stored: ({value slot: answers}, {respondent slot: respondents}), zeros left out."""
    values = dict(db.session.execute(
        select(_values.c.slot, _values.c.answers).where(_values.c.round_id == round_id, _values.c.answers != 0)).all())
    respondents = dict(db.session.execute(
        select(_respondents.c.slot, _respondents.c.respondents)
        .where(_respondents.c.round_id == round_id, _respondents.c.respondents != 0)).all())
    return values, respondents


def tally_drift(round_) -> list[str]:
    """How the round's stored tallies differ from a recount of its answers, a
    line per differing slot; empty when they agree."""
    counted_values, counted_respondents = recount_cells(round_)
    stored_values, stored_respondents = stored_cells(round_.id)
    lines = []
    for name, counted, stored in (("answers", counted_values, stored_values),
                                  ("respondents", counted_respondents, stored_respondents)):
        for slot in sorted(set(counted) | set(stored)):
            recounted = counted[slot][1] if slot in counted else 0
            kept = stored.get(slot, 0)
            if recounted != kept:
                lines.append(f"round {round_.id} {name} {slot}: tallied {kept}, recounted {recounted}")
    return lines


def rebuild_tallies(round_) -> None:
    """Replace the round's tallies with a recount of its answers (the caller commits).
    On PostgreSQL the tally tables are locked against writers meanwhile: a
    submission committing between the recount and the insert would otherwise
    be counted twice or not at all. SQLite has one writer at a time anyway."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("LOCK TABLE answer_tallies, respondent_tallies IN EXCLUSIVE MODE"))
    db.session.execute(delete(_values).where(_values.c.round_id == round_.id))
    db.session.execute(delete(_respondents).where(_respondents.c.round_id == round_.id))
    values, respondents = recount_cells(round_)
    if values:
        db.session.execute(_values.insert(), [
            {"round_id": round_.id, "slot": slot, **row, "answers": count} for slot, (row, count) in values.items()])
    if respondents:
        db.session.execute(_respondents.insert(), [
            {"round_id": round_.id, "slot": slot, **row, "respondents": count}
            for slot, (row, count) in respondents.items()])
