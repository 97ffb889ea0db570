"""Process-level caches of rows that never change once written: a published
question set version (surveys.models refuses any edit), a finalized round's
stored sums (replaced only by a new snapshot, with a new finalized_at).

Each cache is bounded, keyed by something a new row can never reuse in a
live database. Whatever empties tables and lets ids start again (the tests'
clean-up, a benchmark's fresh database) calls `forget_all()`.
"""

from __future__ import annotations

_CACHES: list[RowCache] = []


class RowCache(dict):
    def __init__(self, size: int = 256):
        super().__init__()
        self.size = size
        _CACHES.append(self)

    def remember(self, key, value):
        if key not in self and len(self) >= self.size:
            self.pop(next(iter(self)))  # the oldest entry
        self[key] = value
        return value


def forget_all() -> None:
    for cache in _CACHES:
        cache.clear()
