"""Run the benchmarks and write docs/benchmarks.md (see bench/__init__.py)."""

import argparse
import importlib
import os
import platform
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
    results = []
    history = []
    for bench_id in wanted:
        module = importlib.import_module(f"bench.{available[bench_id]}")
        history += [(bench_id, line) for line in getattr(module, "PROFILE_NOTES", [])]
        for database in databases:
            print(f"running {bench_id} on {database}...", flush=True)
            results.extend(module.run(database))
            write_report(results, history)  # after each run, so a later failure loses nothing
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0 if all(r.met for r in results) else 1


def write_report(results, history=()):
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()} with `make bench`.",
        "Each figure is compared with its floor measured in the same run.",
        "",
        "| id | what | database | measured | floor | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "–"
        lines.append(f"| {r.id} | {r.title} | {r.database} | {r.measured} | {r.floor} | {ratio} | {r.target} | {'yes' if r.met else '**no**'} |")
    notes = [(r.id, r.database, note) for r in results for note in r.notes]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {bench_id} ({database}): {note}" for bench_id, database, note in notes]
    if history:
        lines += ["", "## Profiling history (targets once missed: what was found and fixed)", ""]
        lines += [f"- {bench_id}: {line}" for bench_id, line in history]
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
