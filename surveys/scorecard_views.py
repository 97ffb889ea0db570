"""Scorecard pages for staff: the list of cadences and rounds; one round's
scorecard (headline, questions with intervals, changes, distributions and
sparklines, the heatmap of questions by slice, participation, the smallest
detectable change, "you said, we did" replies); its print version; comments;
and downloads (scorecard and responses, CSV and JSON).

Numbers come from `surveys.scorecard`; this module only shapes them for the
templates (bar widths, sparkline points, heatmap classes, labels)."""

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import delete, func, select

from cadence.models import Cadence, Round
from surveys.auth.access import roles_required
from surveys.extensions import db
from surveys import audit
from surveys.feedback import Reply, ReplyError, add_reply, may_remove, reply_dicts
from surveys.lifecycle import archived_filter
from surveys.permissions import EDITORS, PMS, STAFF
from surveys.choice_charts import choices_over_time
from surveys.scorecard.assembly import build_scorecard, scorecard_and_sums
from surveys.scorecard.comments import CommentsWithheld, comment_choices, comments, group_comments
from surveys.scorecard.detectable import detectable_changes
from surveys.scorecard.exports import ExportRefused, SCORECARD_COLUMNS, response_export, scorecard_rows
from surveys.scorecard.groups import SLICE_KINDS
from surveys.scorecard.overview import round_overview
from surveys.scorecard.participation import participation_by_round
from surveys.scorecard.trends import trends
from surveys.scorecard_headline import tile_view
from surveys.scorecard_text import (
    HEADLINE_METRIC,
    METRIC_LABELS,
    change_text,
    describe_change,
    format_metric,
    heat_class,
    heat_gap,
    short_title,
    withheld_text,
)
from surveys.direction import Direction
from surveys.tabular import csv_text, download

scorecards_bp = Blueprint("scorecards", __name__, url_prefix="/scorecards")

SPARKLINE_WIDTH, SPARKLINE_HEIGHT = 120, 28


def _round_or_404(round_id):
    return db.get_or_404(Round, round_id)


def _slice_kind_argument():
    slice_kind = request.args.get("slice") or None
    if slice_kind is not None and slice_kind not in SLICE_KINDS:
        abort(400, description=f"There is no slice called {slice_kind!r}. Choose team, region or segment.")
    return slice_kind


@scorecards_bp.get("/")
@roles_required(*STAFF)
def index():
    archived = request.args.get("archived") == "true"
    cadences = db.session.scalars(
        select(Cadence).where(archived_filter(Cadence, archived)).order_by(Cadence.name)
    ).all()
    rounds = db.session.scalars(
        select(Round).where(Round.cadence_id.in_([c.id for c in cadences])).order_by(Round.opens_at.desc())
    ).all()
    rounds_by_cadence = {cadence.id: [] for cadence in cadences}
    for round_ in rounds:
        rounds_by_cadence[round_.cadence_id].append(round_)
    return render_template(
        "scorecards/index.html",
        cadences=cadences,
        rounds_by_cadence=rounds_by_cadence,
        participation=participation_by_round(rounds),
        archived=archived,
        archived_count=db.session.scalar(select(func.count(Cadence.id)).where(archived_filter(Cadence, True))),
    )


def _page_context(round_, slice_kind):
    card, sums = scorecard_and_sums(round_, slice_kind)
    questions = {q.key: q for q in (round_.version.questions if round_.version else [])}
    series = trends(round_.cadence, until=round_, keys=[entry["key"] for entry in card["questions"]], until_card=card)
    replies = reply_dicts(round_)
    rows = [
        _question_view(entry, questions.get(entry["key"]), series.get(entry["key"], []),
                       [r for r in replies if r["question_key"] == entry["key"]])
        for entry in card["questions"]
    ]
    overview = round_overview(round_, card, series, sums)
    return {
        "round": round_,
        "card": card,
        "overview": {**overview, "tiles": [tile_view(tile) for tile in overview["tiles"]]},
        "rows": rows,
        "general_replies": [r for r in replies if r["question_key"] is None],
        "slice_kind": slice_kind,
        "slice_kinds": SLICE_KINDS,
        "participation": card["participation"],
        "heatmap": _heatmap(card, rows) if slice_kind else None,
        "detectable": detectable_changes(round_.cadence),
        "headline_metric": HEADLINE_METRIC,
        "metric_labels": METRIC_LABELS,
        "withheld_text": withheld_text,
        "change_text": change_text,
        "format_metric": format_metric,
        "describe_change": describe_change,
        "can_reply": current_user.has_role("pm") and round_.status != "skipped",
        "reply_form": {"question_key": "", "body": "", "errors": {}},
    }


@scorecards_bp.get("/rounds/<int:round_id>")
@roles_required(*STAFF)
def show(round_id):
    round_ = _round_or_404(round_id)
    return render_template("scorecards/show.html", **_page_context(round_, _slice_kind_argument()))


@scorecards_bp.get("/rounds/<int:round_id>/print")
@roles_required(*STAFF)
def print_view(round_id):
    round_ = _round_or_404(round_id)
    return render_template("scorecards/print.html", **_page_context(round_, _slice_kind_argument()))


@scorecards_bp.post("/rounds/<int:round_id>/replies")
@roles_required(*PMS)
def add_reply_view(round_id):
    round_ = _round_or_404(round_id)
    question_key = request.form.get("question_key", "")
    body = request.form.get("body", "")
    try:
        reply = add_reply(round_, current_user, question_key, body)
    except ReplyError as error:
        db.session.rollback()
        context = _page_context(round_, None)
        context["reply_form"] = {"question_key": question_key, "body": body, "errors": error.errors}
        return render_template("scorecards/show.html", **context), 422
    db.session.flush()
    audit.record(current_user._get_current_object(), "reply.added", reply,
                 {"round_id": round_.id, "question_key": reply.question_key, "body": reply.body})
    db.session.commit()
    flash("Reply published: reps see it after they answer and in their next invitation.", "success")
    anchor = f"q-{question_key}" if question_key else "replies"
    return redirect(url_for("scorecards.show", round_id=round_.id, _anchor=anchor))


@scorecards_bp.post("/rounds/<int:round_id>/replies/<int:reply_id>/delete")
@roles_required(*EDITORS)
def delete_reply_view(round_id, reply_id):
    reply = db.session.scalar(select(Reply).where(Reply.id == reply_id, Reply.round_id == round_id))
    if reply is None:
        abort(404)
    if not may_remove(reply.author_id, current_user):
        abort(403)
    audit.record(current_user._get_current_object(), "reply.deleted", reply,
                 {"round_id": round_id, "author_id": reply.author_id, "question_key": reply.question_key,
                  "body": reply.body})
    db.session.execute(delete(Reply).where(Reply.id == reply.id))
    db.session.commit()
    flash("Reply removed.", "success")
    return redirect(url_for("scorecards.show", round_id=round_id, _anchor="replies"))


@scorecards_bp.get("/rounds/<int:round_id>/comments")
@roles_required(*STAFF)
def comments_view(round_id):
    round_ = _round_or_404(round_id)
    question_key = request.args.get("question") or None
    slice_value = request.args.get("slice") or ""
    slice_kind, _, slice_name = slice_value.partition(":")
    slice_kind = slice_kind or None
    search = (request.args.get("q") or "").strip()[:200]
    result, refusal, status = None, None, 200
    try:
        result = comments(round_, question_key, slice_kind, slice_name or None, search=search)
    except CommentsWithheld as withheld:
        refusal = str(withheld)
    except ValueError as error:
        refusal, status = str(error), 400
    return render_template(
        "scorecards/comments.html", round=round_, result=result, refusal=refusal, choices=comment_choices(round_),
        groups=group_comments(result["items"]) if result else [], question_key=question_key,
        slice_value=slice_value, search=search,
        can_reply=current_user.has_role("pm") and round_.status != "skipped",
    ), status


@scorecards_bp.get("/rounds/<int:round_id>/scorecard.<any(csv, json):export_format>")
@roles_required(*STAFF)
def scorecard_download(round_id, export_format):
    round_ = _round_or_404(round_id)
    slice_kind = _slice_kind_argument()
    card = build_scorecard(round_, slice_kind)
    audit.record(current_user._get_current_object(), "scorecard.exported", round_,
                 {"format": export_format, "slice": slice_kind})
    db.session.commit()
    stem = f"round-{round_.id}-{round_.period_key}-scorecard" + (f"-{slice_kind}" if slice_kind else "")
    if export_format == "json":
        return download(json.dumps(card, indent=2), "application/json", f"{stem}.json")
    return download(csv_text(SCORECARD_COLUMNS, scorecard_rows(card)), "text/csv", f"{stem}.csv")


@scorecards_bp.get("/rounds/<int:round_id>/responses.<any(csv, json):export_format>")
@roles_required(*STAFF)
def responses_download(round_id, export_format):
    round_ = _round_or_404(round_id)
    try:
        export = response_export(round_)
    except ExportRefused as refusal:
        abort(403, description=str(refusal))
    audit.record(current_user._get_current_object(), "responses.exported", round_, {"format": export_format})
    db.session.commit()
    stem = f"round-{round_.id}-{round_.period_key}-responses"
    if export_format == "json":
        return download(json.dumps(export, indent=2), "application/json", f"{stem}.json")
    return download(csv_text(export["columns"], export["rows"]), "text/csv", f"{stem}.csv")


# -- Shaping numbers for the page ------------------------------------------------------


def _heatmap(card, question_rows):
    """Rows of the heatmap: one per slice, one cell per question's headline
    metric, shaded by its gap from the whole (the overall value of the same
    question) read by the question's direction of good."""
    views = {row["entry"]["key"]: row for row in question_rows}
    rows = []
    for slice_ in card["slices"]:
        cells = []
        if not slice_["suppressed"]:
            for entry in slice_["questions"]:
                metric = HEADLINE_METRIC.get(entry["type"])
                view = views.get(entry["key"], {})
                direction, whole = view.get("direction"), view.get("whole_numbers", False)
                cell = {"key": entry["key"], "metric": metric, "entry": entry, "class": "heat-even", "value": None,
                        "change": None, "gap": None}
                if entry["suppressed"]:
                    cell["class"] = "heat-withheld"
                elif metric:
                    gap = heat_gap(entry, view.get("entry"), metric, direction, whole)
                    cell.update(value=format_metric(metric, entry["metrics"].get(metric), whole), gap=gap,
                                change=change_text(entry, metric, direction=direction, whole_numbers=whole),
                                **{"class": heat_class(gap)})
                else:
                    cell["value"] = f"{entry['n']} answered"
                cells.append(cell)
        rows.append({"slice": slice_, "cells": cells})
    return rows


def _question_view(entry, question, points, replies):
    """The template's view of one question: headline, bars, sparkline, replies."""
    view = {"entry": entry, "headline": HEADLINE_METRIC.get(entry["type"]), "bars": [], "sparkline": None,
            "unit": question.setting("unit", "") if question else "", "replies": replies,
            "direction": Direction.of(question), "short_title": short_title(entry["prompt"]),
            "whole_numbers": bool(question is not None and question.type == "number"
                                  and question.setting("whole_numbers"))}
    if entry["metrics"] is None:
        return view
    metrics = entry["metrics"]
    if "distribution" in metrics:
        view["bars"] = _bars([(label, count) for label, count in metrics["distribution"].items()], total=entry["n"])
    elif "option_pct" in metrics:
        labels = {option["key"]: option["label"] for option in entry.get("options", [])}
        view["bars"] = _bars(
            [(labels.get(key, key), pct) for key, pct in metrics["option_pct"].items()], total=None,
            option_keys=list(metrics["option_pct"]),
        )
    if view["headline"]:
        view["sparkline"] = _sparkline(points, view["headline"], view["whole_numbers"])
    view["over_time"] = choices_over_time(entry, points)
    view["comments_link"] = bool(question and question.setting("allow_other"))
    return view


def _bars(items, total, option_keys=None):
    """Bar rows: a width in 0..100 (the SVG's user units) and the text shown beside it."""
    bars = []
    for index, (label, value) in enumerate(items):
        if total is None:  # already a percentage
            share, text = value or 0.0, format_metric("option_pct", value)
        else:
            share = 100.0 * value / total if total else 0.0
            text = f"{value} ({share:.0f} %)"
        bars.append({
            "label": str(label),
            "text": text,
            "width": round(share, 2),
            "key": option_keys[index] if option_keys else label,
        })
    return bars


def _sparkline(points, metric, whole_numbers=False):
    """Polylines for the trend, split where the measure changed (no line across a break)."""
    values = [p["metrics"].get(metric) if p["metrics"] else None for p in points]
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = SPARKLINE_WIDTH / max(len(points) - 1, 1)
    segments, current, breaks = [], [], []
    for index, (point, value) in enumerate(zip(points, values)):
        if point["break"]:
            breaks.append(round(index * step - step / 2, 1))
        if point["break"] or value is None:
            if len(current) > 1:
                segments.append(current)
            current = []
        if value is not None:
            y = SPARKLINE_HEIGHT - 2 - (value - low) / span * (SPARKLINE_HEIGHT - 4)
            current.append(f"{index * step:.1f},{y:.1f}")
    if len(current) > 1:
        segments.append(current)
    description = ", ".join(
        f"{p['period_key']}: {_trend_point_text(p, metric, v, whole_numbers)}{' (measure changed)' if p['break'] else ''}"
        for p, v in zip(points, values)
    )
    return {"segments": [" ".join(segment) for segment in segments], "description": description,
            "breaks": breaks, "width": SPARKLINE_WIDTH, "height": SPARKLINE_HEIGHT}


def _trend_point_text(point, metric, value, whole_numbers=False):
    if point["metrics"] is None:
        return "withheld"
    if value is None:
        return "no answers"
    return format_metric(metric, value, whole_numbers)
