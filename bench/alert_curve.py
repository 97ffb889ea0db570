"""Draw docs/alerts.svg: the chance that Canary's charts catch a 10-point drop
in a share within two rounds at n = 50, by baseline share, next to the
ceiling of the best possible two-round test at the same 1 % false-alarm rate.
Seeded; run with `python -m bench.alert_curve` (a few seconds)."""

from pathlib import Path

import numpy as np
from scipy import stats as sps

from surveys import control_charts as charts

BASELINES = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
OUT = Path(__file__).resolve().parent.parent / "docs" / "alerts.svg"


def caught(p0, rng, n=50, history=12, trials=1000):
    hits = 0
    for _ in range(trials):
        counts = list(rng.binomial(n, p0, history)) + list(rng.binomial(n, p0 - 0.1, 2))
        steps = charts.evaluate(charts.SHARE, [charts.Point(i, n, int(x)) for i, x in enumerate(counts)]).steps
        hits += any(s.signal for s in steps if s.round_id >= history)
    return hits / trials


def ceiling(p0, n=50):
    p1 = p0 - 0.1
    se0, se1, c = np.sqrt(p0 * (1 - p0) / n), np.sqrt(p1 * (1 - p1) / n), sps.norm.ppf(0.99)
    first = sps.norm.sf((c * se0 - 0.1) / se1)
    both = sps.norm.sf((c * se0 * np.sqrt(2) - 0.2) / (se1 * np.sqrt(2)))
    return 1 - (1 - first) * (1 - both)


def main():
    rng = np.random.default_rng(2016)
    rows = [(p, caught(p, rng), ceiling(p)) for p in BASELINES]
    width, height, left, bottom = 420, 240, 44, 36

    def x(p):
        return left + (width - left - 12) * (p - 0.5) / 0.45

    def y(v):
        return 10 + (height - bottom - 10) * (1 - v)

    parts = [f'<rect x="{left}" y="10" width="{width - left - 12}" height="{height - bottom - 10}" fill="#fff" stroke="#999"/>']
    for v in (0, 0.2, 0.4, 0.6, 0.8, 1.0):
        parts.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{int(v * 100)} %</text>')
    parts.append(f'<line x1="{left}" x2="{width - 12}" y1="{y(0.8):.1f}" y2="{y(0.8):.1f}" stroke="#b35900" stroke-dasharray="4 3"/>')
    for p in BASELINES:
        parts.append(f'<text x="{x(p):.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">{int(p * 100)} %</text>')
    parts.append(f'<text x="{(width + left) / 2}" y="{height - 6}" font-size="11" text-anchor="middle">baseline favourable % (drop of 10 points, n = 50 a round)</text>')
    for index, colour, label in ((1, "#1f5f99", "Canary (simulated)"), (2, "#59636e", "best possible two-round test")):
        line = " ".join(f"{x(r[0]):.1f},{y(r[index]):.1f}" for r in rows)
        dash = ' stroke-dasharray="2 2"' if index == 2 else ""
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{left + 8}" y="{24 + 14 * index}" font-size="11" fill="{colour}">{label}</text>')
    summary = "; ".join(f"{int(p * 100)} %: {c:.0%} (ceiling {b:.0%})" for p, c, b in rows)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="Detection within two rounds by baseline: {summary}"><title>Detection within two rounds: {summary}</title>'
           + "".join(parts) + "</svg>\n")
    OUT.write_text(svg)
    print(summary)


if __name__ == "__main__":
    main()
