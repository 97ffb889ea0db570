"""A CSV of closed deals (the CRM's report export), imported as events.

Columns (header names in any order and case): id, owner_email, account,
amount, currency, stage, outcome, close_date, and optionally competitor,
segment, region, products (separated by ';'), loss_reason. Each row is
checked as a deal event would be; any bad row and nothing is imported, with
one `line N: reason` per bad row. Each good row becomes an event whose id is
the deal id and a digest of the row, so importing the same file again
changes nothing, and a changed row is a new event.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime

from surveys.deals.ingest import DEAL_FIELDS, TYPE_OF_OUTCOME
from surveys.deals.processing import DealInvalid, process_event, store_events, validate_deal
from surveys.extensions import db

MAX_ROWS = 100_000
REQUIRED_COLUMNS = ("id", "owner_email", "account", "amount", "currency", "stage", "outcome", "close_date")


@dataclass
class DealImportReport:
    dry_run: bool
    rows: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    file_error: str | None = None

    @property
    def rejected(self) -> bool:
        return bool(self.bad or self.file_error)

    def summary(self) -> str:
        if self.file_error:
            return f"nothing imported: {self.file_error}"
        if self.bad:
            return f"nothing imported: {len(self.bad)} bad row{'' if len(self.bad) == 1 else 's'} of {self.rows}"
        if self.dry_run:
            return f"dry run: {self.rows} good rows; nothing written"
        return f"imported {self.stored} deal events ({self.duplicates} already imported, {self.failed} failed)"


def read_rows(text: str) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise ValueError("the file is empty: the first line must be the header (id, owner_email, ...)")
    names = [cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise ValueError(f"line 1: the header lacks {', '.join(missing)}")
    rows, previous_end = [], reader.line_num
    for cells in reader:
        line, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise ValueError(f"line {line}: more than {MAX_ROWS:,} rows; split the file")
        rows.append((line, {name: (cells[i].strip() if i < len(cells) else "")
                            for i, name in enumerate(names) if name in DEAL_FIELDS}))
    return rows


def import_deals(source: bytes | str, now: datetime, dry_run: bool = False) -> DealImportReport:
    report = DealImportReport(dry_run=dry_run)
    try:
        text = source.decode("utf-8-sig") if isinstance(source, bytes) else source.removeprefix("\ufeff")
        rows = read_rows(text)
    except UnicodeDecodeError:
        report.file_error = "the file is not UTF-8 text"
        return report
    except (ValueError, csv.Error) as error:
        report.file_error = str(error)
        return report
    report.rows = len(rows)
    events, seen = [], {}
    for line, row in rows:
        problems = []
        if not row.get("id"):
            problems.append("missing id")
        elif row["id"] in seen:
            problems.append(f"deal {row['id']!r} is also on line {seen[row['id']]}")
        else:
            seen[row["id"]] = line
        try:
            validate_deal(row)
        except DealInvalid as error:
            problems.append(str(error))
        if row.get("outcome") == "open":
            problems.append("outcome 'open': the file lists closed deals")
        if problems:
            report.bad.append((line, "; ".join(problems)))
            continue
        digest = hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()[:16]
        events.append({"event_id": f"{row['id']}:{digest}", "type": TYPE_OF_OUTCOME.get(row["outcome"], "deal.updated"),
                       "occurred_at": None, "deal": row, "line": line})
    if report.rejected or dry_run:
        db.session.rollback()
        return report
    stored = store_events("csv", events, text, now, queue=False)
    for item in stored:
        if not item.created:
            report.duplicates += 1
            continue
        report.stored += 1
        if process_event(item.id, now) == "failed":
            report.failed += 1
    return report
