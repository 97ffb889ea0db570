"""Scorecards: one round's metrics, compared with the previous round and the
same period a year earlier, overall and per slice (team rolled up through the
tree, region, segment), with confidentiality applied.

Reading order: `groups` (slice kinds, the team tree), `tallies` (the answers' sums,
kept as answers arrive), `cube` (the GROUP BY queries and their sums per
group), `history` (which rounds compare),
`confidentiality` (the publication plan every view reads), `assembly` (the
card), `stored` and `finalized` (a closed round's card, kept), then what the
pages add: `participation`, `movers`, `trends`, `longrun` (change over 6 and
12 rounds, the slope), `overview` (headline and key-metric tiles),
`comments`, `detectable`, `exports`. The metric and statistics maths lives
in `surveys.metrics` and `surveys.stats`; the words in `surveys.scorecard_text` and
`surveys.scorecard_headline`; the tiles' charts in `surveys.charts`.
"""
