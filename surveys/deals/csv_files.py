"""What the deal imports share (closed deals, exchange rates): reading a CSV
into rows that keep their line numbers, and the report an import answers
with (bad rows by line; any bad row and nothing is imported)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

MAX_ROWS = 100_000


@dataclass
class ImportReport:
    """The row-by-row report of an import. Each import's report adds its
    counts and `imported()`, the words for what a good import did."""

    dry_run: bool
    rows: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
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
        return self.imported()


def read_file(source: bytes | str, required: tuple[str, ...], known, header_hint: str) -> tuple[str, list[tuple[int, dict]]]:
    """The text of an uploaded file (bytes in UTF-8, a byte-order mark
    allowed) and its `read_rows`; ValueError says what is wrong with the file
    as a whole."""
    try:
        text = source.decode("utf-8-sig") if isinstance(source, bytes) else source.removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None
    try:
        return text, read_rows(text, required, known, header_hint)
    except csv.Error as error:
        raise ValueError(str(error)) from None


def read_rows(text: str, required: tuple[str, ...], known, header_hint: str) -> list[tuple[int, dict]]:
    """[(line number, {column: stripped text})] for the non-blank rows, keeping
    the `known` columns; headers are matched in any case, with spaces or
    dashes for underscores. Raises ValueError (with the line) for an empty
    file, a header without the `required` columns, or too many rows."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise ValueError(f"the file is empty: the first line must be the header ({header_hint})")
    names = [cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in header]
    missing = [name for name in required if name not in names]
    if missing:
        raise ValueError(f"line 1: the header lacks {', '.join(missing)}")
    rows, previous_end = [], reader.line_num
    for cells in reader:
        # A quoted cell may span lines: a row starts on the line after the last one ended.
        line, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise ValueError(f"line {line}: more than {MAX_ROWS:,} rows; split the file")
        rows.append((line, {name: (cells[i].strip() if i < len(cells) else "")
                            for i, name in enumerate(names) if name in known}))
    return rows
