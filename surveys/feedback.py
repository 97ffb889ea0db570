"""Placeholder until the "you said, we did" work lands (issue 5)."""
