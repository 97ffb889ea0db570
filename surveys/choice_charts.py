"""A choice question over the last rounds, as sales leaders read it: the share
of each option per round (stacked for a single choice, whose shares add up to
100 %; ranked for a multi choice, where they need not), drawn as server-side
SVG with the values in a table beside it, and the break where the question's
measure changed. The numbers are the trend points of
`surveys.scorecard.trends` (withheld rounds stay withheld); this module only
shapes them."""

from __future__ import annotations

from surveys.scorecard_text import format_metric

# Eight colours told apart by people with the common colour-vision deficiencies
# (Okabe and Ito), then grey for the rest; the legend and the table name every
# option, so colour is never the only cue.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
OTHERS_COLOUR = "#999999"
CHART_HEIGHT = 160
COLUMN_WIDTH, COLUMN_GAP = 28, 10
LABEL_SPACE = 34  # under the columns, for period labels


def choices_over_time(entry: dict, points: list[dict]) -> dict | None:
    """The view of a choice question over `points` (oldest first), or None for
    other questions and for fewer than two rounds with numbers."""
    if entry["type"] not in ("single_choice", "multi_choice"):
        return None
    shown = [p for p in points if p["metrics"] and p["metrics"].get("option_pct") is not None]
    if len(shown) < 2:
        return None
    labels = {option["key"]: option["label"] for option in entry.get("options", [])}
    latest = shown[-1]["metrics"]["option_pct"]
    keys = sorted({key for p in shown for key in p["metrics"]["option_pct"]},
                  key=lambda key: (-(latest.get(key) or 0.0), labels.get(key, key)))
    colours = {key: PALETTE[index] if index < len(PALETTE) else OTHERS_COLOUR for index, key in enumerate(keys)}
    rows = []
    for key in keys:
        shares = [_share(p, key) for p in points]
        rows.append({"key": key, "label": labels.get(key, key), "colour": colours[key],
                     "cells": [_cell(share) for share in shares]})
    _rank(rows, len(points))
    stacked = entry["type"] == "single_choice"
    return {
        "stacked": stacked,
        "periods": [p["period_key"] for p in points],
        "breaks": [p["period_key"] for p in points if p["break"]],
        "rows": rows,
        "chart": _stacked_columns(points, keys, colours, labels) if stacked else _ranked_lines(points, keys, colours),
    }


def _share(point, key):
    if not point["metrics"] or point["metrics"].get("option_pct") is None:
        return None
    return point["metrics"]["option_pct"].get(key, 0.0)


def _cell(share):
    return {"share": share, "text": "withheld" if share is None else format_metric("option_pct", share), "rank": None}


def _rank(rows, rounds):
    """Each option's rank per round (1 = the most chosen), ties sharing a rank."""
    for index in range(rounds):
        shares = sorted({row["cells"][index]["share"] for row in rows if row["cells"][index]["share"] is not None},
                        reverse=True)
        for row in rows:
            share = row["cells"][index]["share"]
            row["cells"][index]["rank"] = None if share is None else shares.index(share) + 1


def _x(index):
    return index * (COLUMN_WIDTH + COLUMN_GAP) + COLUMN_GAP


def _frame(points):
    width = _x(len(points))
    return {"width": width, "height": CHART_HEIGHT + LABEL_SPACE,
            "labels": [{"x": _x(i) + COLUMN_WIDTH / 2, "text": p["period_key"]} for i, p in enumerate(points)],
            "breaks": [_x(i) - COLUMN_GAP / 2 for i, p in enumerate(points) if p["break"]],
            "plot_height": CHART_HEIGHT}


def _stacked_columns(points, keys, colours, labels) -> dict:
    """One column per round, each option a block as tall as its share."""
    frame = _frame(points)
    blocks, withheld = [], []
    for index, point in enumerate(points):
        if not point["metrics"] or point["metrics"].get("option_pct") is None:
            withheld.append(_x(index))
            continue
        top = CHART_HEIGHT
        for key in keys:
            share = point["metrics"]["option_pct"].get(key) or 0.0
            height = CHART_HEIGHT * share / 100.0
            if height <= 0:
                continue
            top -= height
            blocks.append({"x": _x(index), "y": round(top, 2), "height": round(height, 2), "colour": colours[key],
                           "title": f"{point['period_key']}, {labels.get(key, key)}: "
                                    f"{format_metric('option_pct', share)}"})
    return {**frame, "blocks": blocks, "withheld": withheld, "column_width": COLUMN_WIDTH}


def _ranked_lines(points, keys, colours) -> dict:
    """One line per option: its share per round on a 0-100 % scale, broken at
    withheld rounds and where the measure changed."""
    frame = _frame(points)
    lines = []
    for key in keys:
        segments, current = [], []
        for index, point in enumerate(points):
            share = _share(point, key)
            if point["break"] or share is None:
                if len(current) > 1:
                    segments.append(current)
                current = []
            if share is not None:
                y = CHART_HEIGHT - CHART_HEIGHT * share / 100.0
                current.append(f"{_x(index) + COLUMN_WIDTH / 2:.1f},{y:.1f}")
        if len(current) > 1:
            segments.append(current)
        lines.append({"key": key, "colour": colours[key], "segments": [" ".join(s) for s in segments]})
    return {**frame, "lines": lines, "withheld": [_x(i) for i, p in enumerate(points) if _share(p, keys[0]) is None]}
