"""Words and numbers for a scorecard, shared by its pages and the leaders'
digest: how a metric is written, how a change is said (the words carry the
meaning; colour only repeats it), why a group is withheld."""

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
# Heatmap shading steps, in points on the common 0-100 footing of `change_size`.
HEAT_STEPS = (5.0, 10.0)
# The mark of a change on a tested metric with fewer answers than
# surveys.metrics.MIN_N_FOR_TESTING in either round.
TOO_FEW_TO_TEST = "too few answers to test"


def withheld_text(reason, min_size):
    if reason == HELD_UNTIL_CLOSE:
        return "Held until the round closes"
    if reason == COMPLEMENTARY:
        return (f"Withheld so that a smaller group cannot be worked out: next to the groups shown, it would "
                f"single out fewer than {min_size} people")
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


def delta_text(name, delta):
    if name in PERCENT_METRICS or name == "nps":
        return f"{delta:+.1f} pts"
    if name == "count":
        return f"{delta:+,}"
    return f"{delta:+,.2f}"


def change_text(entry, name, option=None, against="previous"):
    """"+4.2 pts (significant)" style parts for a change since the previous round
    (or, with against="year_ago", since a year earlier), or None when there is
    none. The words carry the meaning; colour only repeats it. Metrics without
    a test (sum, median, count) get no verdict."""
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
    direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    return {"text": delta_text(name, delta), "verdict": verdict, "significant": bool(significant),
            "direction": direction, "delta": delta}


def describe_change(change) -> str:
    """One line for a mover or a choice shift: "Lost to: Globex 42.0 %, +15.0 pts (significant)";
    a change too small to test says so, as `change_text` does."""
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
    return f"{subject}: {format_metric(change['metric'], change['value'])}, {delta_text(change['metric'], change['delta'])}{verdict}"


def heat_class(entry, metric):
    """The heatmap cell's class: blue shades up, orange shades down (by size of
    a significant change), grey when not significant, untested or withheld."""
    if entry.get("suppressed"):
        return "heat-withheld"
    change = change_text(entry, metric)
    if change is None or not change["significant"] or change["direction"] == "flat":
        return "heat-none"
    size = change_size(entry, metric, change["delta"], (entry.get("previous") or {}).get(metric)) or 0.0
    step = 1 + sum(1 for threshold in HEAT_STEPS if size >= threshold)
    return f"heat-{change['direction']}-{step}"
