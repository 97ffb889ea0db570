"""Scorecard pages for staff: the list of cadences and rounds, and one round's
scorecard with intervals, changes, distribution bars, a trend sparkline per
question and slices. Numbers come from `surveys.scorecard`; this module only
shapes them for the templates (bar widths, sparkline points, labels)."""

from flask import Blueprint, abort, render_template, request
from sqlalchemy import select

from cadence.models import Cadence, Round
from surveys.auth import roles_required
from surveys.extensions import db
from surveys.scorecard import (
    COMPLEMENTARY,
    HELD_UNTIL_CLOSE,
    SLICE_KINDS,
    build_scorecard,
    participation,
    participation_by_round,
    trend,
)

scorecards_bp = Blueprint("scorecards", __name__, url_prefix="/scorecards")

READER_ROLES = ("pm", "leader", "admin")
# The one number a question is summed up by, in tables and sparklines.
HEADLINE_METRIC = {"scale": "mean", "nps": "nps", "yes_no": "yes_pct", "number": "mean", "text": "count"}
PERCENT_METRICS = {"favorable_pct", "promoters_pct", "passives_pct", "detractors_pct", "yes_pct", "option_pct"}
SPARKLINE_WIDTH, SPARKLINE_HEIGHT = 120, 28


@scorecards_bp.get("/")
@roles_required(*READER_ROLES)
def index():
    cadences = db.session.scalars(select(Cadence).order_by(Cadence.name)).all()
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
    )


@scorecards_bp.get("/rounds/<int:round_id>")
@roles_required(*READER_ROLES)
def show(round_id):
    round_ = db.get_or_404(Round, round_id)
    slice_kind = request.args.get("slice") or None
    if slice_kind is not None and slice_kind not in SLICE_KINDS:
        abort(400, description=f"There is no slice called {slice_kind!r}. Choose team, region or segment.")
    card = build_scorecard(round_, slice_kind)
    questions = {q.key: q for q in (round_.version.questions if round_.version else [])}
    rows = [_question_view(entry, questions.get(entry["key"]), round_) for entry in card["questions"]]
    return render_template(
        "scorecards/show.html",
        round=round_,
        card=card,
        rows=rows,
        slice_kind=slice_kind,
        slice_kinds=SLICE_KINDS,
        participation=participation(round_),
        headline_metric=HEADLINE_METRIC,
        withheld_text=withheld_text,
        change_text=change_text,
        format_metric=format_metric,
    )


# -- Shaping numbers for the page ------------------------------------------------------


def withheld_text(reason, min_size):
    if reason == HELD_UNTIL_CLOSE:
        return "Held until the round closes"
    if reason == COMPLEMENTARY:
        return "Withheld so that a smaller group cannot be worked out"
    return f"Fewer than {min_size} responses"


def format_metric(name, value):
    if value is None:
        return "–"
    if name in PERCENT_METRICS:
        return f"{value:.1f} %"
    if name == "nps":
        return f"{value:+.1f}"
    if name == "count":
        return f"{value:,}"
    return f"{value:,.2f}"


def change_text(entry, name, option=None):
    """"+4.2 pts (significant)" style parts for a change, or None when there is none.
    The words carry the meaning; colour only repeats it. Metrics without a test
    (sum, median, count) get no verdict."""
    delta = (entry.get("delta") or {}).get(name)
    tests = entry.get("significant") or {}
    significant = tests.get(name)
    if option is not None:
        delta = (delta or {}).get(option)
        significant = (significant or {}).get(option)
    if delta is None:
        return None
    if name not in tests:
        verdict = None
    elif significant is None:
        verdict = "too few answers to test"
    else:
        verdict = "significant" if significant else "not significant"
    if name in PERCENT_METRICS or name == "nps":
        text = f"{delta:+.1f} pts"
    elif name == "count":
        text = f"{delta:+,}"
    else:
        text = f"{delta:+,.2f}"
    direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    return {"text": text, "verdict": verdict, "significant": bool(significant), "direction": direction}


def _question_view(entry, question, round_):
    """The template's view of one question: headline, bars, sparkline."""
    view = {"entry": entry, "headline": HEADLINE_METRIC.get(entry["type"]), "bars": [], "sparkline": None,
            "unit": question.setting("unit", "") if question else ""}
    if entry["metrics"] is None:
        return view
    metrics = entry["metrics"]
    if "distribution" in metrics:
        view["bars"] = _bars([(label, count) for label, count in metrics["distribution"].items()], total=entry["n"])
    elif "option_pct" in metrics:
        labels = {option["key"]: option["label"] for option in (question.options if question else [])}
        labels.setdefault("other", "Other")
        view["bars"] = _bars(
            [(labels.get(key, key), pct) for key, pct in metrics["option_pct"].items()], total=None,
            option_keys=list(metrics["option_pct"]),
        )
    if view["headline"]:
        view["sparkline"] = _sparkline(trend(round_.cadence, entry["key"], until=round_), view["headline"])
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


def _sparkline(points, metric):
    """Polylines for the trend, split where the measure changed (no line across a break)."""
    values = [p["metrics"][metric] if p["metrics"] else None for p in points]
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = SPARKLINE_WIDTH / max(len(points) - 1, 1)
    segments, current = [], []
    for index, (point, value) in enumerate(zip(points, values)):
        if point["break"] or value is None:
            if len(current) > 1:
                segments.append(current)
            current = []
        if value is not None:
            y = SPARKLINE_HEIGHT - 2 - (value - low) / span * (SPARKLINE_HEIGHT - 4)
            current.append(f"{index * step:.1f},{y:.1f}")
    if len(current) > 1:
        segments.append(current)
    description = ", ".join(f"{p['period_key']}: {_trend_point_text(p, metric, v)}" for p, v in zip(points, values))
    return {"segments": [" ".join(segment) for segment in segments], "description": description,
            "width": SPARKLINE_WIDTH, "height": SPARKLINE_HEIGHT}


def _trend_point_text(point, metric, value):
    if point["metrics"] is None:
        return "withheld"
    if value is None:
        return "no answers"
    return format_metric(metric, value)
