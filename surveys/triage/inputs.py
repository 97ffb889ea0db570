"""What triage accepts: the limits on names and notes, ids, and the error its
services raise (`errors` maps a field to its message, as forms and the API show it)."""

from surveys.extensions import db
from surveys.limits import record_id

NAME_MAX = 200
NOTE_MAX = 1000
AREA_NAME_MAX = 120


class TriageError(ValueError):
    """Input that cannot be stored; `errors` maps a field to its message."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def get_by_id(model, value):
    """The row whose id is `value` (see surveys.limits.record_id), or None."""
    number = record_id(value)
    return db.session.get(model, number) if number is not None else None
