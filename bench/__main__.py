"""Run the benchmarks and write docs/benchmarks.md (see bench/__init__.py)."""

import argparse
import importlib
import os
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "benchmarks.md"


def discover():
    modules = sorted(p.stem for p in Path(__file__).parent.glob("b[0-9]*_*.py"))
    return {name.split("_", 1)[0].upper(): name for name in modules}


def machine() -> str:
    cores = os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory_text = f", {memory:.0f} GiB memory"
    except (ValueError, OSError):
        memory_text = ""
    return f"{platform.processor() or platform.machine()}, {cores} cores{memory_text}, Python {platform.python_version()}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("ids", nargs="*", help="benchmark ids (B1 ...); all by default")
    args = parser.parse_args(argv)
    available = discover()
    wanted = [i.upper() for i in args.ids] or list(available)
    unknown = [i for i in wanted if i not in available]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]}; have {', '.join(available)}")
    databases = ["sqlite"] + (["postgresql"] if os.environ.get("BENCH_DATABASE_URL") else [])
    history = [(bench_id, line) for bench_id, name in available.items()
               for line in getattr(importlib.import_module(f"bench.{name}"), "PROFILE_NOTES", [])]
    kept = last_report(OUTPUT, exclude={(bench_id, database) for bench_id in wanted for database in databases})
    results = []
    for bench_id in wanted:
        module = importlib.import_module(f"bench.{available[bench_id]}")
        for database in databases:
            print(f"running {bench_id} on {database}...", flush=True)
            results.extend(module.run(database))
            write_report(OUTPUT, results, history, kept)  # after each run, so a later failure loses nothing
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0 if all(r.met for r in results) else 1


ROW = re.compile(r"^\| (B\d+) \|")
NOTE = re.compile(r"^- (B\d+)\b(?: \((\w+)\))?")


def last_report(path: Path, exclude: set) -> dict:
    """The rows and notes of the last report except those of the (benchmark,
    database) pairs in `exclude`, the ones run now: `python -m bench B9`
    without BENCH_DATABASE_URL replaces B9's SQLite figures and keeps the
    rest, B9 on PostgreSQL included (each row says the day it was measured).
    A note that names no database goes with its benchmark's SQLite run."""
    kept = {"rows": [], "notes": []}
    if not path.exists():
        return kept
    text = path.read_text()
    stamp = re.search(r"^Measured (\d{4}-\d{2}-\d{2})", text, re.M)
    section, keeping = None, False
    for line in text.splitlines():
        if line.startswith("## "):
            section = line
        row = ROW.match(line)
        if row:
            cells = line.strip("|").split("|")
            if (row.group(1), cells[2].strip()) not in exclude:
                if len(cells) == 8 and stamp:  # a report written before rows carried their day
                    line = line + f" {stamp.group(1)} |"
                kept["rows"].append(line)
        note = NOTE.match(line)
        if section == "## Notes":
            if note:
                keeping = (note.group(1), note.group(2) or "sqlite") not in exclude
                if keeping:
                    kept["notes"].append(line)
            elif line.startswith("  ") and kept["notes"] and keeping:  # a note's next line
                kept["notes"][-1] += "\n" + line
    return kept


def write_report(path: Path, results, history=(), kept=None):
    kept = kept or {"rows": [], "notes": []}
    today = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    lines = [
        "# Benchmarks",
        "",
        f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()} by `python -m bench`;",
        "each row says the day it was measured. Each figure is compared with its floor measured in the same run.",
        "",
        "| id | what | database | measured | floor | ratio | target | met | measured on |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(r.id, f"| {r.id} | {r.title} | {r.database} | {r.measured} | {r.floor} | "
                   f"{f'{r.ratio:.2f}x' if r.ratio is not None else '–'} | {r.target} | "
                   f"{'yes' if r.met else '**no**'} | {today} |") for r in results]
    rows += [(ROW.match(line).group(1), line) for line in kept["rows"]]
    lines += [line for _, line in sorted(rows, key=lambda row: int(row[0][1:]))]
    notes = [(r.id, f"- {r.id} ({r.database}): {note}") for r in results for note in r.notes]
    notes += [(NOTE.match(line).group(1), line) for line in kept["notes"]]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [line for _, line in sorted(notes, key=lambda note: int(note[0][1:]))]
    if history:
        lines += ["", "## Profiling history (targets once missed: what was found and fixed)", ""]
        lines += [f"- {bench_id}: {line}" for bench_id, line in history]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
