"""Placeholder until the "you said, we did" work lands (issue 5)."""


def replies_for_invitation(round_) -> list:
    """Replies from the previous round to show in this round's invitation."""
    return []
