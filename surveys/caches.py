"""Process-level caches of things that never change once written: a
published question set version and its form class (surveys.models refuses
any edit), a finalized round's stored sums (replaced only by a new snapshot,
with a new finalized_at), a live card assembled from a digest of every input
it read.

Each cache is a bounded LRU (cachetools), keyed by something a new row can
never reuse in a live database. Whatever empties tables and lets ids start
again (the tests' clean-up, a benchmark's fresh database) calls `forget_all()`.
"""

from __future__ import annotations

from cachetools import LRUCache

_CACHES: list[BoundedCache] = []


class BoundedCache(LRUCache):
    def __init__(self, size: int = 256):
        super().__init__(maxsize=size)
        _CACHES.append(self)

    def remember(self, key, value):
        self[key] = value
        return value


def forget_all() -> None:
    for cache in _CACHES:
        cache.clear()
