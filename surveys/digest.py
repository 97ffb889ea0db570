def on_round_closed(round_id: int) -> None:
    """Placeholder until the digest work lands (issue 5)."""
