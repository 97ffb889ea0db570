"""Benchmarks (`make bench`): each measured against its floor in the same run.

A benchmark is a module `bench/b<N>_<name>.py` with a function
`run(database_url: str) -> list[Result]`. `python -m bench [IDS...]` runs them
(all by default) on SQLite and, when BENCH_DATABASE_URL is set, on that
database too, and writes docs/benchmarks.md: the rows of the benchmarks run
replace theirs, the others are kept with the day they were measured. A module may also define
`PROFILE_NOTES`, lines recording a target once missed and how it was fixed.
"""

from dataclasses import dataclass, field


@dataclass
class Result:
    id: str  # "B1"
    title: str
    database: str  # "sqlite" or "postgresql"
    measured: str  # e.g. "p50 182 ms"
    floor: str  # e.g. "raw GROUP BY p50 121 ms"
    ratio: float | None  # measured / floor (or floor / measured for throughput), as the target reads
    target: str  # e.g. "<= 1.5x"
    met: bool
    notes: list[str] = field(default_factory=list)
