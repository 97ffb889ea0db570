"""Rounds in the API: a round's scorecard and its row-level responses export."""

from flask import g, jsonify, request

from cadence.models import Round
from surveys import audit
from surveys.api.base import api_bp, api_roles, get_or_404, problem_responses
from surveys.extensions import db
from surveys.permissions import STAFF
from surveys.problems import ApiProblem
from surveys.scorecard.assembly import build_scorecard
from surveys.scorecard.exports import ExportRefused, SCORECARD_COLUMNS, response_export, scorecard_rows
from surveys.scorecard.groups import SLICE_KINDS
from surveys.scorecard.overview import round_overview
from surveys.tabular import csv_text, download

EXPORT_FORMATS = ("json", "csv")


@api_bp.get("/rounds/<int:round_id>/scorecard")
@api_roles(*STAFF)
def round_scorecard(round_id):
    round_ = get_or_404(Round, round_id, "round")
    slice_kind = request.args.get("slice") or None
    if slice_kind is not None and slice_kind not in SLICE_KINDS:
        raise ApiProblem(
            400, "Bad request", f"Unknown slice {slice_kind!r}.",
            errors={"slice": f"Use one of: {', '.join(SLICE_KINDS)}."},
        )
    export_format = _export_format()
    card = build_scorecard(round_, slice_kind)
    if export_format == "json":
        return jsonify(card)
    stem = f"round-{round_.id}-{round_.period_key}-scorecard" + (f"-{slice_kind}" if slice_kind else "")
    return download(csv_text(SCORECARD_COLUMNS, scorecard_rows(card)), "text/csv", f"{stem}.csv")


@api_bp.get("/rounds/<int:round_id>/summary")
@api_roles(*STAFF)
def round_summary(round_id):
    round_ = get_or_404(Round, round_id, "round")
    return jsonify(round_overview(round_))


def _export_format():
    export_format = request.args.get("format", "json")
    if export_format not in EXPORT_FORMATS:
        raise ApiProblem(
            400, "Bad request", f"Unknown format {export_format!r}.",
            errors={"format": f"Use one of: {', '.join(EXPORT_FORMATS)}."},
        )
    return export_format


@api_bp.get("/rounds/<int:round_id>/responses")
@api_roles(*STAFF)
def round_responses(round_id):
    round_ = get_or_404(Round, round_id, "round")
    export_format = _export_format()
    try:
        export = response_export(round_)
    except ExportRefused as refusal:
        raise ApiProblem(403, "Forbidden", str(refusal)) from None
    audit.record(g.api_user, "responses.exported", round_, {"format": export_format})
    db.session.commit()
    if export_format == "json":
        return jsonify(export)
    return download(csv_text(export["columns"], export["rows"]), "text/csv",
                    f"round-{round_.id}-{round_.period_key}-responses.csv")


_ROUND_ID = {"name": "round_id", "in": "path", "required": True, "schema": {"type": "integer"}}

_ROUND_REF = {"type": ["object", "null"], "properties": {"id": {"type": "integer"}, "period_key": {"type": "string"}}}
_LONG_RUN_CHANGE = {
    "type": "object",
    "required": ["rounds", "status", "from_round", "to_round", "from", "to", "delta", "p_value", "significant"],
    "properties": {
        "rounds": {"type": "integer", "enum": [6, 12]},
        "status": {"type": "string", "enum": ["tested", "not_enough_rounds", "measure_changed", "withheld",
                                              "too_few_answers"]},
        "from_round": _ROUND_REF,
        "to_round": _ROUND_REF,
        "from": {"type": ["number", "null"]},
        "to": {"type": ["number", "null"]},
        "delta": {"type": ["number", "null"], "description": "this round minus the window's first round"},
        "p_value": {"type": ["number", "null"]},
        "significant": {"type": ["boolean", "null"], "description": "null where not tested (see status)"},
        "break_period": {"type": ["string", "null"], "description": "where the measure changed inside the window"},
    },
}

OPENAPI_SCHEMAS = {
    "RoundSummary": {
        "type": "object",
        "required": ["round", "previous_round", "headline", "tiles", "long_run"],
        "properties": {
            "round": {"type": "object", "description": "id, period_key, status, version"},
            "previous_round": {"type": ["object", "null"]},
            "headline": {"type": "string"},
            "tiles": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "name", "prompt", "type", "metric", "value", "n", "ci95", "since_previous",
                                 "over_12_rounds", "slope", "points"],
                    "properties": {
                        "key": {"type": "string"},
                        "name": {"type": "string"},
                        "prompt": {"type": "string"},
                        "type": {"type": "string"},
                        "metric": {"type": "string", "enum": ["mean", "nps", "yes_pct"]},
                        "scale_max": {"type": ["integer", "null"]},
                        "unit": {"type": ["string", "null"]},
                        "value": {"type": ["number", "null"], "description": "null when withheld"},
                        "n": {"type": ["integer", "null"]},
                        "ci95": {"type": ["array", "null"], "items": {"type": "number"}},
                        "suppressed": {"type": "boolean"},
                        "suppressed_reason": {"type": ["string", "null"]},
                        "since_previous": {
                            "type": "object",
                            "properties": {"period_key": {"type": ["string", "null"]},
                                           "delta": {"type": ["number", "null"]},
                                           "significant": {"type": ["boolean", "null"]},
                                           "meaning": {"type": "string", "enum": ["better", "worse", "neutral"]}},
                        },
                        "over_12_rounds": {"allOf": [
                            {"$ref": "#/components/schemas/LongRunChange"},
                            {"type": "object", "properties": {
                                "meaning": {"type": "string", "enum": ["better", "worse", "neutral"]}}},
                        ]},
                        "slope": {"$ref": "#/components/schemas/TrendSlope"},
                        "points": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["round_id", "period_key", "n", "value", "ci95", "break", "withheld"],
                                "properties": {
                                    "round_id": {"type": "integer"},
                                    "period_key": {"type": "string"},
                                    "n": {"type": ["integer", "null"]},
                                    "value": {"type": ["number", "null"]},
                                    "ci95": {"type": ["array", "null"], "items": {"type": "number"}},
                                    "break": {"type": "boolean", "description": "the measure changed here"},
                                    "withheld": {"type": "boolean"},
                                },
                            },
                        },
                    },
                },
            },
            "long_run": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "type", "metric", "windows", "slope"],
                    "properties": {
                        "key": {"type": "string"},
                        "type": {"type": "string"},
                        "metric": {"type": "string"},
                        "windows": {"type": "array", "items": {"$ref": "#/components/schemas/LongRunChange"}},
                        "slope": {"$ref": "#/components/schemas/TrendSlope"},
                    },
                },
            },
        },
    },
    "LongRunChange": _LONG_RUN_CHANGE,
    "TrendSlope": {
        "type": "object",
        "required": ["status", "rounds", "points", "per_round", "ci95", "p_value", "significant"],
        "properties": {
            "status": {"type": "string", "enum": ["tested", "not_enough_rounds", "measure_changed",
                                                  "too_few_answers"]},
            "rounds": {"type": "integer", "description": "rounds in the unbroken window"},
            "points": {"type": "integer", "description": "published rounds with at least 10 answers, fitted"},
            "from_round": _ROUND_REF,
            "to_round": _ROUND_REF,
            "per_round": {"type": ["number", "null"]},
            "ci95": {"type": ["array", "null"], "items": {"type": "number"}},
            "p_value": {"type": ["number", "null"]},
            "significant": {"type": ["boolean", "null"]},
        },
    },
    "QuestionScore": {
        "type": "object",
        "required": ["key", "type", "prompt", "n", "metrics", "previous", "delta", "ci95", "significant", "comparable"],
        "properties": {
            "key": {"type": "string"},
            "type": {"type": "string"},
            "prompt": {"type": "string"},
            "n": {"type": ["integer", "null"], "description": "respondents; null when withheld"},
            "suppressed": {"type": "boolean"},
            "suppressed_reason": {"type": "string", "enum": ["small_group", "complementary", "held_until_close"]},
            "unanimous": {
                "type": "object", "properties": {"n": {"type": "integer"}, "value": {}},
                "description": "present when every answer had the same value: the interval of a mean (or NPS) "
                "is then null rather than zero-width",
            },
            "metrics": {
                "type": ["object", "null"],
                "description": "mean, favorable_pct, distribution, nps, promoters_pct, passives_pct, "
                "detractors_pct, option_pct, sum, median, yes_pct or count, by question type",
            },
            "previous": {"type": ["object", "null"]},
            "delta": {"type": ["object", "null"], "description": "current minus previous, keyed by metric name"},
            "ci95": {"type": ["object", "null"], "description": "[low, high] per metric name"},
            "significant": {
                "type": ["object", "null"],
                "description": "true/false per metric, null where either round has n below 10",
            },
            "comparable": {"type": "boolean", "description": "false when the measure changed since the previous round"},
            "year_ago": {"type": ["object", "null"], "description": "metrics of the same period a year earlier"},
            "year_ago_delta": {"type": ["object", "null"]},
            "year_ago_significant": {"type": ["object", "null"]},
            "year_ago_comparable": {"type": "boolean"},
            "version": {"type": ["integer", "null"], "description": "the question set version of the round"},
            "options": {"type": "array", "items": {"type": "object"}, "description": "choice questions: key and label"},
        },
    },
    "Scorecard": {
        "type": "object",
        "required": ["round", "previous_round", "response_rate", "questions", "slices"],
        "properties": {
            "round": {"type": "object", "description": "id, period_key, status, version"},
            "previous_round": {"type": ["object", "null"]},
            "year_ago_round": {"type": ["object", "null"]},
            "held_until_close": {"type": "boolean"},
            "participation": {
                "type": "object",
                "description": "invited, responded, rate; slices per kind (low: under 60 %); reminders: "
                "the share gained after the invitation and after each reminder",
            },
            "non_responders": {"type": ["array", "null"], "description": "attributed sets only: who has not answered"},
            "top_movers": {"type": "array", "items": {"type": "object"}},
            "choice_shifts": {"type": "array", "items": {"type": "object"}},
            "response_rate": {
                "type": "object",
                "properties": {
                    "invited": {"type": ["integer", "null"],
                                "description": "null when withheld (confidential set under its minimum group size)"},
                    "responded": {"type": ["integer", "null"]},
                    "rate": {"type": ["number", "null"]},
                },
            },
            "questions": {"type": "array", "items": {"$ref": "#/components/schemas/QuestionScore"}},
            "slices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kind", "name", "n", "suppressed", "questions"],
                    "properties": {
                        "kind": {"type": "string", "enum": list(SLICE_KINDS)},
                        "name": {"type": "string"},
                        "n": {"type": ["integer", "null"],
                              "description": "respondents; null while results are held or when withheld"},
                        "invited": {"type": ["integer", "null"],
                                    "description": "null when withheld: a withheld group shows only its name"},
                        "rate": {"type": ["number", "null"]},
                        "suppressed": {"type": "boolean"},
                        "questions": {"type": "array", "items": {"$ref": "#/components/schemas/QuestionScore"}},
                    },
                },
            },
        },
    },
}

OPENAPI_PATHS = {
    "/rounds/{round_id}/scorecard": {
        "get": {
            "summary": "A round's scorecard, compared with the previous round and a year earlier",
            "description": "Roles pm, leader, admin. For confidential question sets, one publication plan "
            "per round decides what every slice kind, export and page may show: every cell of the partition "
            "the published groups cut the respondents (and invitees) into holds at least the set's minimum "
            "group size; other groups are withheld (`suppressed`, name only). A closed round answers from its finalized, "
            "stored scorecard; an open round's is computed live, and its counts are hidden when the set "
            "holds results until close. Each of `top_movers` and `choice_shifts` carries `meaning`: better, "
            "worse or neutral, by the question's `higher_is_better` or the option's `sentiment`.",
            "parameters": [
                _ROUND_ID,
                {"name": "slice", "in": "query", "required": False, "schema": {"type": "string", "enum": list(SLICE_KINDS)}},
                {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": list(EXPORT_FORMATS)},
                 "description": "csv: one row per slice, question, metric and option, with the question set version"},
            ],
            "responses": {
                "200": {
                    "description": "The scorecard",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Scorecard"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **problem_responses(400, 401, 403, 404),
            },
        }
    },
    "/rounds/{round_id}/summary": {
        "get": {
            "summary": "What changed: the headline sentence, the key-metric tiles and long-run changes",
            "description": "Roles pm, leader, admin. `headline` says in words what moved significantly since "
            "the previous round and over the last 6 and 12 rounds, and the biggest significant choice shift "
            "(or that nothing did). `tiles`: the questions pinned in the set (setting `pinned`), else its "
            "first four quantitative ones, each with its current value, n and 95 % interval, its change since "
            "the previous round and over 12 rounds, and its last 12 rounds as points. `long_run`: per "
            "quantitative question, the change of its headline metric over 6 and 12 rounds (tested as round "
            "to round is; never across a change of measure; an end withheld or under 10 answers is not "
            "tested) and a weighted least-squares slope per round. Only published numbers are used: withheld "
            "rounds stay withheld, and a round held until close says nothing that moves with its answers.",
            "parameters": [_ROUND_ID],
            "responses": {
                "200": {
                    "description": "The summary",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RoundSummary"}}},
                },
                **problem_responses(401, 403, 404),
            },
        }
    },
    "/rounds/{round_id}/responses": {
        "get": {
            "summary": "The round's responses, one row per response",
            "description": "Roles pm, leader, admin. Question keys are columns; every row carries the question "
            "set version number. Names and emails only for attributed sets. Confidential sets: refused (403) "
            "under the minimum group size; slice attributes blanked where they would single out a small group. "
            "CSV cells that a spreadsheet would run as formulas are prefixed with an apostrophe.",
            "parameters": [
                _ROUND_ID,
                {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": list(EXPORT_FORMATS)}},
            ],
            "responses": {
                "200": {
                    "description": "The rows",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "round": {"type": "object"},
                                    "columns": {"type": "array", "items": {"type": "string"}},
                                    "rows": {"type": "array", "items": {"type": "object"}},
                                },
                            }
                        },
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **problem_responses(400, 401, 403, 404),
            },
        }
    },
}
