"""Tables leaving Canary: CSV cells that a spreadsheet can never run as a
formula, CSV text, and file downloads with safe names. Every export (people,
scorecards, responses, question sets) goes through here."""

import csv
import io

from flask import Response

# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: str) -> str:
    """Prefix a ' so a spreadsheet shows the cell as text, never runs it."""
    if value and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def restore_formula(value: str) -> str:
    """Undo `neutralise_formula`, so an export read back in round-trips."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_TRIGGERS:
        return value[1:]
    return value


def csv_cell(value):
    """One CSV cell: lists joined with ';', None empty, booleans as true/false,
    and text a spreadsheet would run as a formula neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = ";".join(str(item) for item in value)
    if isinstance(value, str):
        return neutralise_formula(value)
    return value


def csv_text(columns, rows, lineterminator="\r\n") -> str:
    """A header row of `columns`, then each row (a dict) in that order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow([csv_cell(column) for column in columns])
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def safe_filename(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)


def download(body: str, mimetype: str, filename: str) -> Response:
    """A file to save, never to show inline, under a name that cannot break the header."""
    if mimetype.startswith(("text/", "application/json")) and "charset" not in mimetype:
        mimetype += "; charset=utf-8"
    return Response(body, content_type=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{safe_filename(filename)}"'})
