"""The words of a scorecard's summary: the headline sentence that answers
"what changed?", and how a tile says a long-run change. Only significant
changes are said as changes, with their sign ("up", "down", "rose", "fell")
and, where the question has a direction of good, their meaning ("better",
"worse": `surveys.direction`).

Numbers come from the card (round to round) and `surveys.scorecard.longrun`
(over 6 and 12 rounds, and the slope)."""

from __future__ import annotations

from surveys.charts import trend_chart_svg
from surveys.direction import NEUTRAL, Direction
from surveys.scorecard.longrun import MEASURE_CHANGED, NOT_ENOUGH_ROUNDS, TESTED, TOO_FEW_ANSWERS, WITHHELD
from surveys.scorecard.movers import change_size
from surveys.scorecard_text import ARROWS, METRIC_LABELS, TOO_FEW_TO_TEST, delta_text, format_metric

# The question clauses a headline names at most (the largest changes first).
HEADLINE_QUESTIONS = 3
PERCENT_LIKE = ("yes_pct", "option_pct", "favorable_pct", "nps")

UNTESTED_WINDOW = {
    NOT_ENOUGH_ROUNDS: "not enough rounds yet",
    WITHHELD: "an end is withheld",
    TOO_FEW_ANSWERS: TOO_FEW_TO_TEST,
}


# After a question's name in a sentence, what its number is, unless a mean.
METRIC_IN_SENTENCE = {"yes_pct": " (share of yes)", "nps": " (NPS)"}


def question_name(key: str, capital: bool = True) -> str:
    """A question's short name in sentences and tiles: its key in words
    ("win_confidence" -> "Win confidence"); the prompt is a whole question."""
    words = key.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if capital else words


def amount_text(metric: str, delta: float) -> str:
    """The size of a change, without its sign: "0.4", "12.0 points"."""
    size = abs(delta)
    if metric in PERCENT_LIKE:
        return f"{size:.1f} points"
    text = f"{size:,.2f}"
    return text[:-1] if text.endswith("0") else text


def _direction(delta: float) -> str:
    return "up" if delta > 0 else "down"


def _significant_window(long_run: dict) -> dict | None:
    """The widest window whose change is significant."""
    tested = [w for w in long_run["windows"] if w["status"] == TESTED and w["significant"] and w["delta"]]
    return max(tested, key=lambda w: w["rounds"], default=None)


def _with_meanings(verdict: str, meanings: list[str]) -> str:
    """"significant" -> "significant, better"; two parts of unlike meaning: "…; worse, then better"."""
    said = [meaning for meaning in meanings if meaning != NEUTRAL]
    if not said:
        return verdict
    if len(set(meanings)) == 1:
        return f"{verdict}, {meanings[0]}"
    return f"{verdict}; {', then '.join(meanings)}"


def _question_clause(entry, long_run, previous_period, direction: Direction):
    """(size, clause) for one question, or None when nothing about it moved significantly."""
    metric = long_run["metric"]
    name = question_name(long_run["key"], capital=False) + METRIC_IN_SENTENCE.get(metric, "")
    parts = []
    step = (entry.get("delta") or {}).get(metric) if entry else None
    if step and (entry.get("significant") or {}).get(metric):
        parts.append((step, f"since {previous_period}"))
    window = _significant_window(long_run)
    if window is not None:
        parts.append((window["delta"], f"over {window['rounds']} rounds"))
    if parts:
        first_delta, first_when = parts[0]
        meanings = [direction.meaning(metric, delta) for delta, _when in parts]
        clause = f"{name} is {_direction(first_delta)} {amount_text(metric, first_delta)} {first_when}"
        if len(parts) == 2:
            second_delta, second_when = parts[1]
            joint = "and" if _direction(second_delta) == _direction(first_delta) else f"but {_direction(second_delta)}"
            clause += f" {joint} {amount_text(metric, second_delta)} {second_when}"
            clause += f" ({_with_meanings('both significant', meanings)})"
        else:
            clause += f" ({_with_meanings('significant', meanings)})"
        largest = max(abs(delta) for delta, _when in parts)
        return change_size(entry or {"type": long_run["type"]}, metric, largest, _from_value(entry, window, metric)), clause
    slope = long_run["slope"]
    if slope["status"] == TESTED and slope["significant"] and slope["per_round"]:
        rising = "rising" if slope["per_round"] > 0 else "falling"
        verdict = _with_meanings("significant trend", [direction.meaning(metric, slope["per_round"])])
        clause = (f"{name} is {rising} by {amount_text(metric, slope['per_round'])} a round over the last "
                  f"{slope['rounds']} rounds ({verdict})")
        return 0.0, clause
    return None


def _from_value(entry, window, metric):
    if window is not None:
        return window["from"]
    return ((entry or {}).get("previous") or {}).get(metric)


def _choice_clause(card) -> str | None:
    """The biggest significant choice shift since the previous round."""
    previous = card.get("previous_round")
    for shift in card.get("choice_shifts") or []:
        if shift.get("significant") and shift.get("delta"):
            verb = "rose" if shift["delta"] > 0 else "fell"
            verdict = _with_meanings("significant", [shift.get("meaning") or NEUTRAL])
            return (f"{question_name(shift['key'], capital=False)}: {shift['label']} {verb} {amount_text('option_pct', shift['delta'])}"
                    f" since {previous['period_key']} ({verdict})")
    return None


def headline_sentence(card: dict, long_run: dict, directions: dict | None = None) -> str:
    """What moved significantly since the previous round, over 6 and 12
    rounds, and the biggest choice shift; or, honestly, that nothing did
    (and how far back that was tested). `directions`: {question key:
    Direction} (the default direction where missing)."""
    directions = directions or {}
    period = card["round"]["period_key"]
    if card.get("held_until_close"):
        return (f"Results for {period} are held until the round closes; "
                "until then nothing is said about how they changed.")
    previous = card.get("previous_round")
    if previous is None:
        return "This is the first round of this cadence: there is nothing to compare with yet."
    entries = {entry["key"]: entry for entry in card["questions"]}
    clauses = [found for key, result in long_run.items()
               if (found := _question_clause(entries.get(key), result, previous["period_key"],
                                             directions.get(key) or Direction())) is not None]
    clauses.sort(key=lambda found: -(found[0] or 0.0))
    said = [clause for _size, clause in clauses[:HEADLINE_QUESTIONS]]
    choice = _choice_clause(card)
    if choice:
        said.append(choice)
    if said:
        sentence = "; ".join(said)
        return sentence[:1].upper() + sentence[1:] + "."
    return _nothing_moved(card, long_run, previous["period_key"])


def _nothing_moved(card, long_run, previous_period) -> str:
    tested_step = any(
        (entry.get("significant") or {}).get(result["metric"]) is not None
        for entry in card["questions"] for result in long_run.values() if result["key"] == entry["key"]
    )
    windows = sorted({w["rounds"] for result in long_run.values() for w in result["windows"] if w["status"] == TESTED})
    reach = ([f"since {previous_period}"] if tested_step else []) + [f"over the last {n} rounds" for n in windows]
    if not reach:
        keys = set(long_run)
        if any(not entry.get("comparable") for entry in card["questions"] if entry["key"] in keys):
            return f"Nothing is compared with {previous_period}: the measure changed since."
        return f"Too few answers to test any change since {previous_period}."
    if len(reach) == 1:
        return f"No significant change {reach[0]}."
    return f"No significant change {', '.join(reach[:-1])} or {reach[-1]}."


def window_text(change: dict, metric: str) -> dict:
    """A long-run change for a tile: {"text", "verdict", "significant", "direction"}
    in the shape of scorecard_text.change_text (for scorecards/_change.html)."""
    if change["status"] == MEASURE_CHANGED:
        return {"text": "not compared", "verdict": f"the measure changed in {change['break_period']}",
                "significant": False, "direction": "flat", "arrow": "", "meaning": NEUTRAL,
                "delta": None}
    if change["delta"] is None or change["status"] in UNTESTED_WINDOW and change["status"] != TOO_FEW_ANSWERS:
        return {"text": "–", "verdict": UNTESTED_WINDOW.get(change["status"]), "significant": False,
                "direction": "flat", "arrow": "", "meaning": NEUTRAL,
                "delta": None}
    delta = change["delta"]
    if change["significant"] is None:
        verdict = TOO_FEW_TO_TEST
    else:
        verdict = "significant" if change["significant"] else "not significant"
    return _change(metric, delta, verdict, change["significant"], change.get("meaning"))


def _change(metric, delta, verdict, significant, meaning) -> dict:
    sign = "up" if delta > 0 else "down" if delta < 0 else "flat"
    return {"text": delta_text(metric, delta), "verdict": verdict, "significant": bool(significant),
            "direction": sign, "arrow": ARROWS[sign], "meaning": meaning or NEUTRAL, "delta": delta}


# -- Tiles -------------------------------------------------------------------------


def step_text(tile: dict) -> dict | None:
    """The change since the previous round, in the shape of scorecard_text.change_text."""
    step = tile["since_previous"]
    delta = step["delta"]
    if delta is None:
        return None
    if step["significant"] is None:
        verdict = TOO_FEW_TO_TEST
    else:
        verdict = "significant" if step["significant"] else "not significant"
    return _change(tile["metric"], delta, verdict, step["significant"], step.get("meaning"))


def _value_text(tile, value):
    text = format_metric(tile["metric"], value)
    return f"{text} {tile['unit']}" if tile.get("unit") and value is not None else text


def _interval_text(metric, interval):
    if not interval:
        return "–"
    return f"{format_metric(metric, interval[0])} to {format_metric(metric, interval[1])}"


def _point_note(point):
    if point["withheld"]:
        return "withheld"
    if point["value"] is None:
        return "no answers"
    return ""


def tile_view(tile: dict) -> dict:
    """What a tile shows: the value with n and interval, its changes in words,
    the chart with its text alternative, and the table of its points."""
    metric = tile["metric"]
    label = METRIC_LABELS.get(metric, metric).lower()
    rows = [{
        "period_key": point["period_key"],
        "value": _value_text(tile, point["value"]) if point["value"] is not None else "–",
        "interval": _interval_text(metric, point["ci95"]),
        "n": point["n"],
        "note": "; ".join(part for part in ("measure changed" if point["break"] else "", _point_note(point)) if part),
    } for point in tile["points"]]
    description = "; ".join(
        f"{row['period_key']}: {row['value']}"
        + (f" (95 % {row['interval']}, n {row['n']})" if row["interval"] != "–" else "")
        + (f", {row['note']}" if row["note"] else "")
        for row in rows
    )
    periods = tile["points"]
    span = f"{periods[0]['period_key']} to {periods[-1]['period_key']}" if periods else ""
    title = f"{tile['name']} ({label}) by round, {span}, with 95 % intervals"
    return {
        **tile,
        "label": label,
        "value_text": _value_text(tile, tile["value"]) if tile["value"] is not None else None,
        "interval_text": _interval_text(metric, tile["ci95"]),
        "step": step_text(tile),
        "over_12": window_text(tile["over_12_rounds"], metric),
        "rows": rows,
        "chart": trend_chart_svg(tile["points"], f"tile-{tile['key']}", title,
                                 lambda value: format_metric(metric, value), description),
        "chart_title": title,
    }
