"""Which way is good news: whether a change, or a gap from the whole, is
"better", "worse" or "neutral".

A scale, NPS, yes/no or number question says whether higher is better
(setting `higher_is_better`, default true); a choice option says whether
choosing it is good, bad or neutral news (option field `sentiment`, default
neutral: "Lost to Globex" is bad, so a rise in its share is worse). Metrics
that count the unhappy (the detractor share) run the other way; the passive
share and the number of answers carry no meaning of their own.

Pages colour and word changes by this, never by their sign alone. It is how a
scorecard reads a measure, not part of the measure: changing it keeps the
trend (see `surveys.metrics.QuestionSpec.measure`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

BETTER, WORSE, NEUTRAL = "better", "worse", "neutral"
MEANINGS = (BETTER, WORSE, NEUTRAL)

OPTION_SENTIMENTS = ("good", "bad", "neutral")
DEFAULT_SENTIMENT = "neutral"
# The question types that have a direction of good (choice options carry their own).
DIRECTED_TYPES = ("scale", "nps", "yes_no", "number")

# +1: the metric rises with the question's own value; -1: it falls (a larger
# detractor share means lower scores); 0: it says nothing about good or bad.
_METRIC_SIGNS = {
    "mean": 1, "median": 1, "sum": 1, "favorable_pct": 1, "nps": 1, "promoters_pct": 1, "yes_pct": 1,
    "detractors_pct": -1, "passives_pct": 0, "count": 0,
}
_SENTIMENT_SIGNS = {"good": 1, "bad": -1, "neutral": 0}


@dataclass(frozen=True)
class Direction:
    """A question's direction of good: `higher_is_better` for its values, and
    the sentiment of each of its options by key."""

    higher_is_better: bool = True
    sentiments: dict = field(default_factory=dict)

    @classmethod
    def of(cls, question) -> Direction:
        """From a Question row (or anything with `type` and `setting()`); None gives the default."""
        if question is None:
            return cls()
        sentiments = {option["key"]: option.get("sentiment") or DEFAULT_SENTIMENT
                      for option in question.setting("options") or []}
        return cls(bool(question.setting("higher_is_better", True)), sentiments)

    def sign(self, metric: str, option: str | None = None) -> int:
        """+1 when a rise of `metric` (of `option`'s share) is good news, -1
        when it is bad news, 0 when it is neither."""
        if option is not None or metric == "option_pct":
            return _SENTIMENT_SIGNS.get(self.sentiments.get(option, DEFAULT_SENTIMENT), 0)
        sign = _METRIC_SIGNS.get(metric, 0)
        return sign if self.higher_is_better else -sign

    def meaning(self, metric: str, delta, option: str | None = None) -> str:
        """"better", "worse" or "neutral" for a change (or a gap) of `delta`."""
        if not delta:
            return NEUTRAL
        signed = self.sign(metric, option) * (1 if delta > 0 else -1)
        return BETTER if signed > 0 else WORSE if signed < 0 else NEUTRAL


def directions_of(questions) -> dict[str, Direction]:
    """{question key: Direction} for a version's questions."""
    return {question.key: Direction.of(question) for question in questions or []}


def change_meaning(directions: dict, change: dict) -> str:
    """The meaning of a mover or choice shift (`surveys.scorecard.movers`)."""
    direction = directions.get(change["key"]) or Direction()
    return direction.meaning(change["metric"], change["delta"], change.get("option"))
