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

import hashlib
from dataclasses import dataclass
from datetime import datetime

from surveys.deals.csv_files import ImportReport, read_file
from surveys.deals.ingest import DEAL_FIELDS, TYPE_OF_OUTCOME
from surveys.deals.processing import DealInvalid, process_event, store_events, validate_deal
from surveys.extensions import db

REQUIRED_COLUMNS = ("id", "owner_email", "account", "amount", "currency", "stage", "outcome", "close_date")


@dataclass
class DealImportReport(ImportReport):
    stored: int = 0
    duplicates: int = 0
    failed: int = 0

    def imported(self) -> str:
        return f"imported {self.stored} deal events ({self.duplicates} already imported, {self.failed} failed)"


def import_deals(source: bytes | str, now: datetime, dry_run: bool = False) -> DealImportReport:
    report = DealImportReport(dry_run=dry_run)
    try:
        text, rows = read_file(source, REQUIRED_COLUMNS, DEAL_FIELDS, "id, owner_email, ...")
    except ValueError as error:
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
