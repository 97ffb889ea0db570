"""Exports: the scorecard as a table and the row-level responses, carrying only
what the publication plan allows."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from cadence.clock import isoformat_z
from cadence.models import Invitation
from surveys.org.models import Person, Team
from surveys import disclosure, metrics
from surveys.extensions import db
from surveys.models import Answer, Response
from surveys.scorecard.assembly import round_summary
from surveys.scorecard.confidentiality import Policy, round_plan
from surveys.scorecard.groups import TeamTree
from surveys.scorecard.history import question_specs


SCORECARD_COLUMNS = [
    "round_id", "period_key", "version", "slice_kind", "slice", "question_key", "question_type", "metric", "option",
    "value", "ci95_low", "ci95_high", "previous", "delta", "significant", "year_ago", "year_ago_delta", "n",
    "suppressed",
]
TABLE_METRICS = ("mean", "favorable_pct", "nps", "promoters_pct", "passives_pct", "detractors_pct", "option_pct",
                 "sum", "median", "yes_pct", "count")


def scorecard_rows(card) -> list[dict]:
    """The card as a flat table, one row per (slice, question, metric[, option]),
    every row carrying the round and question set version. Withheld aggregates
    are one row saying so, with no numbers."""
    rows = []
    groups = [(None, None, card["questions"])] + [
        (s["kind"], s["name"], s["questions"] if not s["suppressed"] else None) for s in card["slices"]
    ]
    base = {"round_id": card["round"]["id"], "period_key": card["round"]["period_key"],
            "version": card["round"].get("version")}
    for kind, name, entries in groups:
        if entries is None:
            rows.append({**base, "slice_kind": kind, "slice": name, "suppressed": True})
            continue
        for entry in entries:
            head = {**base, "version": entry.get("version", base["version"]), "slice_kind": kind, "slice": name,
                    "question_key": entry["key"], "question_type": entry["type"]}
            if entry["suppressed"]:
                rows.append({**head, "suppressed": True})
                continue
            for metric in TABLE_METRICS:
                if metric not in entry["metrics"]:
                    continue
                value = entry["metrics"][metric]
                options = list(value) if isinstance(value, dict) else [None]
                for option in options:
                    def pick(source, metric=metric, option=option):
                        item = (source or {}).get(metric)
                        return item.get(option) if option is not None and isinstance(item, dict) else item
                    interval = pick(entry["ci95"])
                    rows.append({
                        **head, "metric": metric, "option": option, "value": pick(entry["metrics"]),
                        "ci95_low": interval[0] if interval else None, "ci95_high": interval[1] if interval else None,
                        "previous": pick(entry["previous"]), "delta": pick(entry["delta"]),
                        "significant": pick(entry["significant"]), "year_ago": pick(entry.get("year_ago")),
                        "year_ago_delta": pick(entry.get("year_ago_delta")), "n": entry["n"], "suppressed": False,
                    })
    return rows


class ExportRefused(Exception):
    """A confidential round too small (or still held) for a row-level export."""


SLICE_ATTRIBUTES = ("team", "region", "segment")


def response_export(round_) -> dict:
    """The round's responses, one row per response, question keys as columns.

    Attributed sets: every row carries the response id, time, name, email and
    slice attributes. Confidential sets publish only what the round's plan
    allows (surveys.disclosure): no id, time or name (each could single
    someone out), rows in a neutral order; a row carries its team, region or
    segment only where that attribute, added to every group the plan
    publishes, still leaves every cell of respondents at or above the minimum
    group size; a free-text column only where its writers, cut by the groups
    published for its comments and the attributes shown, still fill every
    cell with at least the comment threshold. Raises ExportRefused when the
    plan withholds the round as a whole or its results are held until close."""
    policy = Policy.for_round(round_)
    confidential = policy.min_size is not None
    specs = question_specs(round_.version)
    if policy.held:
        raise ExportRefused("Results of this question set are held until the round closes.")
    respondents = _export_respondents(round_.id)
    shown = atoms = None
    if confidential:
        tree = TeamTree.for_round(round_)
        plan = round_plan(round_, tree)
        if plan.reason(None, None):
            raise ExportRefused(
                f"This confidential round has fewer than {policy.min_size} responses (or invitations); "
                "row-level answers are withheld."
            )
        atoms = disclosure.RoundAtoms.load(round_.id)
        shown = disclosure.export_attributes(plan, atoms, tree.lineage, policy.min_size)

        def text_allowed(key, writers):
            return disclosure.text_column_allowed(plan, writers, shown, tree.lineage,
                                                  plan.published_comments.get(key, []), policy.comment_min_size)
    columns = ["id", "submitted_at", "name", "email"] if not confidential else []
    columns += [*SLICE_ATTRIBUTES, "version"]
    question_columns = []
    for spec in specs:
        if spec.type == "text" and confidential and not text_allowed(spec.key, atoms.answered.get(spec.key, {})):
            continue
        question_columns.append(spec.key)
        if spec.type == "multi_choice" and metrics.OTHER_OPTION_KEY in spec.option_keys:
            if not confidential or text_allowed(spec.key, atoms.other_writers.get(spec.key, {})):
                question_columns.append(f"{spec.key}.{metrics.OTHER_OPTION_KEY}")
    columns += question_columns
    values = _answers_by_response(round_.id, {spec.key: spec for spec in specs})
    version_number = round_.version.number if round_.version else None
    rows = []
    for response_id, (submitted_at, name, email, team_id, team, region, segment) in respondents.items():
        row = {} if confidential else {
            "id": response_id, "submitted_at": isoformat_z(submitted_at), "name": name, "email": email,
        }
        if confidential:
            row.update(team=team if ("own_team", team_id) in shown else None,
                       region=region if ("region", region) in shown else None,
                       segment=segment if ("segment", segment) in shown else None)
        else:
            row.update(team=team, region=region, segment=segment)
        row["version"] = version_number
        answers = values.get(response_id, {})
        row.update({column: answers.get(column) for column in question_columns})
        rows.append(row)
    if confidential:
        rows.sort(key=lambda row: repr([row[c] for c in columns]))
    return {"round": round_summary(round_), "columns": columns, "rows": rows}


def _export_respondents(round_id) -> dict:
    """{response_id: (submitted_at, name, email, team id, team path, region, segment)} in response order."""
    statement = (
        select(
            Response.id, Response.submitted_at, Person.name, Person.email, Invitation.team_id, Team.path,
            Invitation.region, Invitation.segment,
        )
        .join(Invitation, Invitation.id == Response.invitation_id)
        .join(Person, Person.id == Invitation.person_id)
        .outerjoin(Team, Team.id == Invitation.team_id)
        .where(Response.round_id == round_id)
        .order_by(Response.id)
    )
    return {row[0]: tuple(row[1:]) for row in db.session.execute(statement)}


def _answers_by_response(round_id, specs) -> dict:
    """{response_id: {column: value}}: numbers as numbers, yes/no as "yes"/"no",
    multi-choice as a list of option keys (and its "other" text in `key.other`)."""
    out = defaultdict(dict)
    statement = (
        select(Answer.response_id, Answer.question_key, Answer.value_num, Answer.value_text, Answer.detail)
        .where(Answer.round_id == round_id)
        .order_by(Answer.response_id, Answer.id)
    )
    for response_id, key, value_num, value_text, detail in db.session.execute(statement):
        spec = specs.get(key)
        if spec is None:
            continue
        row = out[response_id]
        if spec.type == "multi_choice":
            row.setdefault(key, []).append(value_text)
            if value_text == metrics.OTHER_OPTION_KEY and detail:
                row[f"{key}.{metrics.OTHER_OPTION_KEY}"] = detail
        elif spec.type == "yes_no":
            row[key] = "yes" if value_num == metrics.YES else "no"
        elif spec.type in ("scale", "nps", "number"):
            row[key] = int(value_num) if value_num is not None and float(value_num).is_integer() else value_num
        else:
            row[key] = value_text
    return out
