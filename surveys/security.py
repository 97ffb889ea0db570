def init_app(app):
    """Placeholder until the security work lands (issue 6)."""
