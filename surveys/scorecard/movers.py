"""Top movers (the largest significant changes) and the choice options whose
share moved most, each with its `meaning` (better, worse or neutral)."""

from __future__ import annotations

from surveys import metrics
from surveys.direction import change_meaning, directions_of


TOP_MOVERS = 5
CHOICE_SHIFTS = 5


# The metrics a change can be a "mover" on, per question type.
MOVER_METRICS = {
    "scale": ("favorable_pct", "mean"), "nps": ("nps",), "yes_no": ("yes_pct",), "number": ("mean",),
    "single_choice": ("option_pct",), "multi_choice": ("option_pct",),
}


def change_size(entry, metric, delta, previous_value) -> float | None:
    """A change on a common 0-100 footing, to rank movers of different kinds:
    percentage points as they are, NPS points halved (its range is 200), a
    scale mean as points of its range, a number's mean as a relative change."""
    if delta is None:
        return None
    if metric in ("favorable_pct", "yes_pct", "option_pct"):
        return abs(delta)
    if metric == "nps":
        return abs(delta) / 2.0
    if entry["type"] == "scale":
        span = (entry.get("scale_max") or metrics.DEFAULT_SCALE_MAX) - 1
        return abs(delta) / span * 100.0
    if previous_value:
        return abs(delta) / abs(previous_value) * 100.0
    return None


def _changes(entries):
    """Every (entry, metric, option, value, delta, significant, size) a card shows."""
    for entry in entries:
        if entry.get("suppressed") or not entry.get("delta"):
            continue
        for metric in MOVER_METRICS.get(entry["type"], ()):
            value, delta = entry["metrics"].get(metric), entry["delta"].get(metric)
            significant = (entry.get("significant") or {}).get(metric)
            # A tested metric whose verdict is None had too few answers to test.
            tested = metric in (entry.get("significant") or {})
            previous = (entry.get("previous") or {}).get(metric)
            if isinstance(delta, dict):
                labels = {o["key"]: o["label"] for o in entry.get("options", [])}
                for option, option_delta in delta.items():
                    yield {
                        "key": entry["key"], "prompt": entry["prompt"], "type": entry["type"], "metric": metric,
                        "option": option, "label": labels.get(option, option), "value": (value or {}).get(option),
                        "delta": option_delta, "significant": (significant or {}).get(option), "tested": tested,
                        "size": change_size(entry, metric, option_delta, (previous or {}).get(option)),
                    }
            else:
                yield {
                    "key": entry["key"], "prompt": entry["prompt"], "type": entry["type"], "metric": metric,
                    "option": None, "label": None, "value": value, "delta": delta, "significant": significant,
                    "tested": tested,
                    "size": change_size(entry, metric, delta, previous),
                }


def top_movers(entries, limit=TOP_MOVERS) -> list[dict]:
    """The largest significant changes since the previous round, largest first."""
    movers = [c for c in _changes(entries) if c["significant"] and c["size"] and c["delta"]]
    movers.sort(key=lambda c: (-c["size"], c["key"], c["option"] or ""))
    return movers[:limit]


def choice_shifts(entries, limit=CHOICE_SHIFTS) -> list[dict]:
    """The choice options whose share moved most since the previous round."""
    shifts = [c for c in _changes(entries) if c["metric"] == "option_pct" and c["delta"]]
    shifts.sort(key=lambda c: (-abs(c["delta"]), c["key"], c["option"]))
    return shifts[:limit]


def with_meanings(card: dict, questions) -> dict:
    """The card with a `meaning` on each mover and choice shift, read from the
    round's questions (`questions`): a stored card keeps its numbers, and what
    they mean follows the version it was answered on. Cards are shared, so
    this copies rather than changes them."""
    directions = directions_of(questions)
    return {
        **card,
        "top_movers": [{**change, "meaning": change_meaning(directions, change)} for change in card["top_movers"]],
        "choice_shifts": [{**change, "meaning": change_meaning(directions, change)}
                          for change in card["choice_shifts"]],
    }
