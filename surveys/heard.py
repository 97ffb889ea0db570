"""“What we heard”: the headline of the previous closed round, shown to reps
after they answer, with the product managers' replies to it ("you said, we
did"). Built from the scorecard, so it respects confidentiality; rendered by
`templates/respond/_heard.html`."""

from cadence.models import Round


def what_we_heard(current_round: Round) -> dict | None:
    """{"period_key", "invited", "responded", "items": [{"prompt", "summary"}],
    "replies": [{"prompt" (None for the round as a whole), "body", "author", ...}]}
    for the previous closed round, or None when there is none."""
    from surveys.feedback import last_closed_round_before, reply_dicts
    from surveys.scorecard.assembly import build_scorecard

    previous = last_closed_round_before(current_round)
    if previous is None:
        return None
    card = build_scorecard(previous)
    items = []
    for question in card["questions"]:
        summary = headline_of(question)
        if summary:
            items.append({"prompt": question["prompt"], "summary": summary})
    return {
        "period_key": previous.period_key,
        "invited": card["response_rate"]["invited"],
        "responded": card["response_rate"]["responded"],
        "items": items,
        "replies": reply_dicts(previous),
    }


def headline_of(question: dict) -> str | None:
    """One line for one question: its main metric, never a comment."""
    if question.get("suppressed") or not question.get("metrics"):
        return None
    metrics = question["metrics"]
    kind = question["type"]
    if kind == "scale" and metrics.get("mean") is not None:
        return f"average {metrics['mean']:.1f}, {metrics.get('favorable_pct', 0):.0f} % favourable"
    if kind == "nps" and metrics.get("nps") is not None:
        return f"NPS {metrics['nps']:+.0f}"
    if kind == "yes_no" and metrics.get("yes_pct") is not None:
        return f"{metrics['yes_pct']:.0f} % said yes"
    if kind in ("single_choice", "multi_choice") and metrics.get("option_pct"):
        key, share = max(metrics["option_pct"].items(), key=lambda item: item[1])
        labels = {option["key"]: option["label"] for option in question.get("options", [])}
        return f"most chosen: {labels.get(key, key)} ({share:.0f} %)"
    if kind == "number" and metrics.get("mean") is not None:
        return f"average {metrics['mean']:.1f}"
    return None
