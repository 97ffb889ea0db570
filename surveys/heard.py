"""“What we heard”: the headline of the previous closed round, shown to reps
after they answer. Built from the scorecard, so it respects confidentiality."""

from sqlalchemy import select

from cadence.models import Round


def what_we_heard(current_round: Round) -> dict | None:
    from surveys.extensions import db
    from surveys.scorecard import build_scorecard

    previous = db.session.scalar(
        select(Round)
        .where(Round.cadence_id == current_round.cadence_id, Round.status == "closed", Round.opens_at < current_round.opens_at)
        .order_by(Round.opens_at.desc())
        .limit(1)
    )
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
        return f"most chosen: {key.replace('_', ' ')} ({share:.0f} %)"
    if kind == "number" and metrics.get("mean") is not None:
        return f"average {metrics['mean']:.1f}"
    return None
