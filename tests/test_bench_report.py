"""The benchmark report: running some benchmarks replaces their rows and
notes and keeps the others' with the day they were measured."""

from bench import Result
from bench.__main__ import last_report, write_report


def result(bench_id, database, measured, notes=()):
    return Result(id=bench_id, title="a benchmark", database=database, measured=measured, floor="floor 1 ms",
                  ratio=1.25, target="<= 1.5x", met=True, notes=list(notes))


def test_a_partial_run_replaces_its_rows_and_keeps_the_others(tmp_path):
    report = tmp_path / "benchmarks.md"
    write_report(report, [result("B1", "sqlite", "p50 10 ms", ["first B1 note", "second B1 note"]),
                          result("B2", "sqlite", "p50 20 ms", ["B2 note"])], [("B1", "a profile line")])
    before = report.read_text()
    assert "| B1 | a benchmark | sqlite | p50 10 ms | floor 1 ms | 1.25x | <= 1.5x | yes |" in before

    kept = last_report(report, exclude={("B2", "sqlite")})
    write_report(report, [result("B2", "sqlite", "p50 30 ms", ["new B2 note"])], [("B1", "a profile line")], kept)
    after = report.read_text()
    assert "p50 10 ms" in after and "p50 20 ms" not in after and "p50 30 ms" in after
    assert "- B1 (sqlite): first B1 note" in after and "- B1 (sqlite): second B1 note" in after
    assert "B2 note" in after and "- B2 (sqlite): B2 note" not in after
    assert after.index("| B1 |") < after.index("| B2 |")
    assert after.count("a profile line") == 1


def test_rows_of_a_report_without_days_take_its_date(tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nMeasured 2026-11-29 09:25 UTC on a machine.\n\n"
                      "| id | what | database | measured | floor | ratio | target | met |\n|---|---|---|---|---|---|---|---|\n"
                      "| B5 | tick | sqlite | median 4 ms | empty tick 5 ms | 0.74x | < 500 ms | yes |\n\n## Notes\n\n"
                      "- B5 (sqlite): a note\n  that goes on\n")
    kept = last_report(report, exclude={("B1", "sqlite")})
    assert kept["rows"] == ["| B5 | tick | sqlite | median 4 ms | empty tick 5 ms | 0.74x | < 500 ms | yes | 2026-11-29 |"]
    assert kept["notes"] == ["- B5 (sqlite): a note\n  that goes on"]


def test_a_run_on_sqlite_alone_keeps_the_same_benchmarks_postgresql_rows(tmp_path):
    report = tmp_path / "benchmarks.md"
    write_report(report, [result("B1", "sqlite", "p50 10 ms", ["sqlite note"]),
                          result("B1", "postgresql", "p50 11 ms", ["postgresql note"])])
    kept = last_report(report, exclude={("B1", "sqlite")})
    write_report(report, [result("B1", "sqlite", "p50 12 ms")], (), kept)
    after = report.read_text()
    assert "p50 10 ms" not in after and "p50 12 ms" in after and "p50 11 ms" in after
    assert "- B1 (postgresql): postgresql note" in after and "sqlite note" not in after
