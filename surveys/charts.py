"""A metric's last rounds as a small server-rendered SVG line chart: period
labels on the x axis, the 95 % band, the line broken where the question's
measure changed (the break marked), withheld rounds left as gaps. No script;
a <title> and <desc> carry the text alternative, and pages show the same
numbers as a table. Styled by classes (static/scorecard-summary.css), so it
prints in the page's colours."""

from __future__ import annotations

import math

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 160
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 22, 12, 30
# The width an x label takes, in user units (7 characters at font size 10).
LABEL_WIDTH = 40


def _number(value: float) -> str:
    return f"{value:.1f}"


def chart_segments(points: list[dict]) -> list[list[int]]:
    """Indexes of the points each unbroken run of published values joins:
    a new run starts at a break or after a withheld round."""
    segments, current = [], []
    for index, point in enumerate(points):
        if point["break"] or point["value"] is None:
            if current:
                segments.append(current)
            current = []
        if point["value"] is not None:
            current.append(index)
    if current:
        segments.append(current)
    return segments


def trend_chart_svg(points: list[dict], chart_id: str, title: str, format_value, description: str) -> Markup:
    """The chart of `points` ({"period_key", "value", "ci95", "break"}, oldest
    first); `format_value` writes an axis value; `description` is the text
    alternative. Empty when nothing in the window is published."""
    known = [p for p in points if p["value"] is not None]
    if not known:
        return Markup("")
    bounds = [p["value"] for p in known] + [b for p in known for b in (p["ci95"] or [])]
    low, high = min(bounds), max(bounds)
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    margin = 0.08 * (high - low)
    low, high = low - margin, high + margin
    count = len(points)
    inner_width = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_height = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(index):
        return PAD_LEFT + (inner_width * index / (count - 1) if count > 1 else inner_width / 2)

    def y(value):
        return PAD_TOP + inner_height * (high - value) / (high - low)

    parts = [
        f'<line class="chart-axis" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{HEIGHT - PAD_BOTTOM}" '
        f'y2="{HEIGHT - PAD_BOTTOM}"/>',
        f'<text class="chart-label" x="{PAD_LEFT - 4}" y="{PAD_TOP + 4}" text-anchor="end">'
        f'{escape(format_value(high - margin))}</text>',
        f'<text class="chart-label" x="{PAD_LEFT - 4}" y="{HEIGHT - PAD_BOTTOM}" text-anchor="end">'
        f'{escape(format_value(low + margin))}</text>',
    ]
    for segment in chart_segments(points):
        banded = [i for i in segment if points[i]["ci95"]]
        if len(banded) > 1:
            upper = " ".join(f"{_number(x(i))},{_number(y(points[i]['ci95'][1]))}" for i in banded)
            lower = " ".join(f"{_number(x(i))},{_number(y(points[i]['ci95'][0]))}" for i in reversed(banded))
            parts.append(f'<polygon class="chart-band" points="{upper} {lower}"/>')
        for i in banded:  # a single round's interval, or each round's, as a whisker
            parts.append(f'<line class="chart-whisker" x1="{_number(x(i))}" x2="{_number(x(i))}" '
                         f'y1="{_number(y(points[i]["ci95"][0]))}" y2="{_number(y(points[i]["ci95"][1]))}"/>')
        if len(segment) > 1:
            line = " ".join(f"{_number(x(i))},{_number(y(points[i]['value']))}" for i in segment)
            parts.append(f'<polyline class="chart-line" points="{line}"/>')
    for index, point in enumerate(points):
        if point["break"] and index:
            at = _number((x(index - 1) + x(index)) / 2)
            parts.append(f'<line class="chart-break" x1="{at}" x2="{at}" y1="{PAD_TOP}" y2="{HEIGHT - PAD_BOTTOM}"/>')
            parts.append(f'<text class="chart-label chart-break-label" x="{at}" y="{PAD_TOP - 2}" '
                         f'text-anchor="middle">changed</text>')
        if point["value"] is not None:
            last = index == count - 1
            parts.append(f'<circle class="chart-point{" chart-current" if last else ""}" cx="{_number(x(index))}" '
                         f'cy="{_number(y(point["value"]))}" r="{4 if last else 2.5}"/>')
    step = max(1, math.ceil(LABEL_WIDTH * (count - 1) / inner_width)) if count > 1 else 1
    for index, point in enumerate(points):
        # Every step-th label, counted back from the latest round (always labelled).
        if (count - 1 - index) % step == 0:
            parts.append(f'<text class="chart-label" x="{_number(x(index))}" y="{HEIGHT - PAD_BOTTOM + 14}" '
                         f'text-anchor="middle">{escape(point["period_key"])}</text>')
    return Markup(
        f'<svg class="trend-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>'
        + "".join(parts) + "</svg>"
    )
