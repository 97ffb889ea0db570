"""An alert's control chart as a small inline SVG: the metric's published
values round by round, the baseline each round was compared with, the band of
values that would not have alerted, and the alerting round marked. Used by
the alerts page and the alert email; no script, no external resource, a text
alternative for screen readers. Only published values are ever drawn (the
history holds nothing else)."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT = 320, 120
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 36, 8, 8, 20
# Colour-blind-safe: blue values, grey band and baseline, orange alerting point.
VALUE, BAND, BASELINE, ALERT = "#1f5f99", "#dde3ea", "#59636e", "#b35900"


def chart_svg(history: list[dict], label: str, unit: str = "") -> Markup:
    values = [h["value"] for h in history if h.get("value") is not None]
    bounds = [v for h in history for v in (h.get("low"), h.get("high"), h.get("baseline")) if v is not None]
    if not values:
        return Markup("")
    low, high = min(values + bounds), max(values + bounds)
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    span = high - low
    low, high = low - 0.08 * span, high + 0.08 * span
    count = len(history)

    def x(index):
        inner = WIDTH - PAD_LEFT - PAD_RIGHT
        return PAD_LEFT + (inner * index / (count - 1) if count > 1 else inner / 2)

    def y(value):
        return PAD_TOP + (HEIGHT - PAD_TOP - PAD_BOTTOM) * (high - value) / (high - low)

    parts = []
    banded = [(i, h) for i, h in enumerate(history) if h.get("low") is not None and h.get("high") is not None]
    if banded:
        upper = " ".join(f"{x(i):.1f},{y(h['high']):.1f}" for i, h in banded)
        lower = " ".join(f"{x(i):.1f},{y(h['low']):.1f}" for i, h in reversed(banded))
        parts.append(f'<polygon points="{upper} {lower}" fill="{BAND}"/>')
        base = " ".join(f"{x(i):.1f},{y(h['baseline']):.1f}" for i, h in banded if h.get("baseline") is not None)
        parts.append(f'<polyline points="{base}" fill="none" stroke="{BASELINE}" stroke-dasharray="4 3"/>')
    line = " ".join(f"{x(i):.1f},{y(h['value']):.1f}" for i, h in enumerate(history) if h.get("value") is not None)
    parts.append(f'<polyline points="{line}" fill="none" stroke="{VALUE}" stroke-width="2"/>')
    for i, h in enumerate(history):
        if h.get("value") is None:
            continue
        last = i == count - 1
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(h["value"]):.1f}" r="{4 if last else 2.5}" '
                     f'fill="{ALERT if last else VALUE}"/>')
    parts.append(f'<text x="2" y="{PAD_TOP + 8}" font-size="10" fill="#333">{escape(_fmt(high))}</text>')
    parts.append(f'<text x="2" y="{HEIGHT - PAD_BOTTOM}" font-size="10" fill="#333">{escape(_fmt(low))}</text>')
    parts.append(f'<text x="{PAD_LEFT}" y="{HEIGHT - 4}" font-size="10" fill="#333">{escape(history[0]["period_key"])}</text>')
    parts.append(f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 4}" font-size="10" fill="#333" text-anchor="end">'
                 f'{escape(history[-1]["period_key"])}</text>')
    description = describe(history, unit)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(label)}: {escape(description)}" class="alert-chart">'
        f'<title>{escape(label)}: {escape(description)}</title>{"".join(parts)}</svg>'
    )


def describe(history: list[dict], unit: str = "") -> str:
    """The chart as a sentence (its text alternative)."""
    last = history[-1]
    text = ", ".join(f"{h['period_key']} {_fmt(h['value'])}{unit}" for h in history if h.get("value") is not None)
    if last.get("low") is not None:
        text += (f"; expected {_fmt(last['low'])}{unit} to {_fmt(last['high'])}{unit} "
                 f"around a baseline of {_fmt(last['baseline'])}{unit}")
    return text


def _fmt(value):
    if value is None:
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
