"""Words and numbers for a scorecard, shared by its pages and the leaders'
digest: how a metric is written, how a change is said (the words carry the
meaning; colour only repeats it), why a group is withheld."""

from surveys.direction import BETTER, NEUTRAL, WORSE, Direction
from surveys.scorecard.groups import COMPLEMENTARY, HELD_UNTIL_CLOSE
from surveys.scorecard.movers import change_size

# The one number a question is summed up by, in tables, sparklines and the heatmap.
HEADLINE_METRIC = {"scale": "mean", "nps": "nps", "yes_no": "yes_pct", "number": "mean", "text": "count"}
PERCENT_METRICS = {"favorable_pct", "promoters_pct", "passives_pct", "detractors_pct", "yes_pct", "option_pct"}
METRIC_LABELS = {
    "mean": "Mean", "favorable_pct": "Favourable", "nps": "NPS", "promoters_pct": "Promoters",
    "passives_pct": "Passives", "detractors_pct": "Detractors", "yes_pct": "Yes", "sum": "Sum",
    "median": "Median", "count": "Answers", "option_pct": "Share",
}
# Heatmap bands: a cell's gap from the whole (the overall value of the same
# question), in points on the common 0-100 footing of `change_size`. Under the
# first step it is "about the same"; from each step on, a darker shade.
HEAT_STEPS = (2.5, 5.0, 10.0)
# A whole-number question's values that are whole themselves (sums, medians,
# bounds) show no decimals; its mean keeps one.
WHOLE_METRICS = {"sum", "median"}
# A heatmap column is titled by the start of its question, cut at a word.
SHORT_TITLE_LENGTH = 28
ARROWS = {"up": "▲", "down": "▼", "flat": "▶"}
# The mark of a change on a tested metric with fewer answers than
# surveys.metrics.MIN_N_FOR_TESTING in either round.
TOO_FEW_TO_TEST = "too few answers to test"


def short_title(prompt):
    """A question's prompt short enough for a column title: "How confident are
    you in the…" (the full prompt goes to screen readers and the hover title)."""
    text = " ".join((prompt or "").split()).rstrip("?.:")
    if len(text) <= SHORT_TITLE_LENGTH:
        return text
    cut = text[:SHORT_TITLE_LENGTH + 1].rsplit(" ", 1)[0] if " " in text[:SHORT_TITLE_LENGTH + 1] else text[:SHORT_TITLE_LENGTH]
    return cut.rstrip(" ,;:-–") + "…"


def withheld_text(reason, min_size):
    if reason == HELD_UNTIL_CLOSE:
        return "Held until the round closes"
    if reason == COMPLEMENTARY:
        return (f"Withheld so that a smaller group cannot be worked out: next to the groups shown, it would "
                f"single out fewer than {min_size} people")
    return f"Fewer than {min_size} responses"


def format_metric(name, value, whole_numbers=False):
    """A metric as people read it; `whole_numbers` for a number question that
    takes whole numbers only ("184 deals", not "184.00 deals")."""
    if value is None:
        return "–"
    if name in PERCENT_METRICS:
        return f"{value:.1f} %"
    if name == "nps":
        return f"{value:+.1f}"
    if name == "count":
        return f"{value:,}"
    if whole_numbers:
        return _whole_number_text(name, value, "")
    return f"{value:,.2f}"


def _whole_number_text(name, value, sign):
    """Sums and medians of whole numbers are whole (a median of an even count
    may fall on a half); a mean keeps one decimal."""
    if name in WHOLE_METRICS and float(value).is_integer():
        return f"{int(value):{sign},}"
    return f"{value:{sign},.1f}"


def delta_text(name, delta, whole_numbers=False):
    if name in PERCENT_METRICS or name == "nps":
        return f"{delta:+.1f} pts"
    if name == "count":
        return f"{delta:+,}"
    if whole_numbers:
        return _whole_number_text(name, delta, "+")
    return f"{delta:+,.2f}"


def change_text(entry, name, option=None, against="previous", direction=None, whole_numbers=False):
    """"+4.2 pts (significant)" style parts for a change since the previous round
    (or, with against="year_ago", since a year earlier), or None when there is
    none. `meaning` says whether it is better, worse or neutral by the
    question's `direction` (surveys.direction); the words carry it, colour
    only repeats it. Metrics without a test (sum, median, count) get no verdict."""
    prefix = "" if against == "previous" else "year_ago_"
    delta = (entry.get(f"{prefix}delta") or {}).get(name)
    tests = entry.get(f"{prefix}significant" if prefix else "significant") or {}
    significant = tests.get(name)
    if option is not None:
        delta = (delta or {}).get(option)
        significant = (significant or {}).get(option)
    if delta is None:
        return None
    if name not in tests:
        verdict = None
    elif significant is None:
        verdict = TOO_FEW_TO_TEST
    else:
        verdict = "significant" if significant else "not significant"
    sign = "up" if delta > 0 else "down" if delta < 0 else "flat"
    meaning = (direction or Direction()).meaning(name, delta, option)
    return {"text": delta_text(name, delta, whole_numbers), "verdict": verdict, "significant": bool(significant),
            "direction": sign, "arrow": ARROWS[sign], "meaning": meaning, "delta": delta}


def describe_change(change, whole_numbers=False) -> str:
    """One line for a mover or a choice shift: "Lost to: Globex 42.0 %, +15.0 pts, worse (significant)";
    a change too small to test says so, as `change_text` does. The meaning
    (better or worse, from the card's `meaning`) is said in words."""
    subject = change["prompt"]
    if change.get("option") is not None:
        subject = f"{subject} {change['label']}"
    else:
        subject = f"{subject} ({METRIC_LABELS.get(change['metric'], change['metric']).lower()})"
    verdict = ""
    if change.get("significant") is True:
        verdict = " (significant)"
    elif change.get("significant") is False:
        verdict = " (not significant)"
    elif change.get("tested"):
        verdict = f" ({TOO_FEW_TO_TEST})"
    meaning = change.get("meaning")
    said = f", {meaning}" if meaning in (BETTER, WORSE) else ""
    return (f"{subject}: {format_metric(change['metric'], change['value'], whole_numbers)}, "
            f"{delta_text(change['metric'], change['delta'], whole_numbers)}{said}{verdict}")


def heat_gap(entry, overall, metric, direction=None, whole_numbers=False):
    """A heatmap cell against the whole: its gap from the overall value of the
    same question, what the gap means, and its band (0: about the same, 1 to
    3: darker for a larger gap); None when either side has no value."""
    if entry.get("suppressed") or overall is None or overall.get("suppressed"):
        return None
    value = (entry.get("metrics") or {}).get(metric)
    whole = (overall.get("metrics") or {}).get(metric)
    if value is None or whole is None:
        return None
    gap = value - whole
    size = change_size(entry, metric, gap, whole) or 0.0
    band = sum(1 for threshold in HEAT_STEPS if size >= threshold)
    meaning = (direction or Direction()).meaning(metric, gap) if band else NEUTRAL
    return {"gap": gap, "band": band, "meaning": meaning, "text": delta_text(metric, gap, whole_numbers)}


def heat_class(gap):
    """The heatmap cell's class from `heat_gap`: blue shades better than the
    whole, red shades worse, grey about the same or neutral."""
    if gap is None or gap["meaning"] == NEUTRAL:
        return "heat-even"
    return f"heat-{gap['meaning']}-{gap['band']}"
