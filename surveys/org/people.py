"""People and teams: reading, checking and storing the people CSV (and the
same records sent to the API), and writing it back out.

The pipeline, each step usable on its own:

    parse_people_csv(source)  -> [(line, raw row)]      file-level problems raise PeopleFileError
    validate_people(rows)     -> (clean rows, errors)   every bad row, with its line and reason
    upsert_people(clean rows) -> ImportResult           in the caller's transaction
    import_people(source)     -> ImportReport           all of it, committed once or not at all

Re-importing updates people by email (stored lower-case, unique). A column
missing from the file (or a key missing from an API object) leaves that field
of existing people as it is; a column present with an empty cell clears it.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from surveys.org.models import Person, PersonRole, ROLES, TEAM_PATH_SEPARATOR, Team
from surveys.extensions import db
from surveys import audit, payloads
from surveys.tabular import neutralise_formula, restore_formula

# The CSV columns, in the order export writes them.
PEOPLE_COLUMNS = ("email", "name", "roles", "team", "region", "segment", "manager_email", "timezone")
REQUIRED_COLUMNS = ("email", "name")
ROLE_SEPARATOR = ";"
DEFAULT_ROLES = ("rep",)
DEFAULT_TIMEZONE = "UTC"

# Column sizes from cadence.models, checked here so a long value is a row
# error rather than a database error that aborts the whole import.
MAX_EMAIL = 320
MAX_NAME = 200
MAX_TEAM_PART = 200
MAX_TEAM_PATH = 1000
MAX_REGION_OR_SEGMENT = 100

# The same records sent to the API as JSON: their shape is checked against
# this declaration (surveys.payloads) before validate_people sees them; a CSV
# row, text by nature, has only the checks below.
_TEXT_OR_NULL = ["string", "null"]
PERSON_FIELDS = {
    "email": {"type": "string", "format": "email", "maxLength": MAX_EMAIL,
              "description": "Unique, case-insensitive; stored lower-case."},
    "name": {"type": "string", "maxLength": MAX_NAME},
    "roles": {"type": ["array", "null"], "items": {"type": "string", "enum": list(ROLES)}, "description": "Empty means rep."},
    "team": {"type": _TEXT_OR_NULL, "maxLength": MAX_TEAM_PATH,
             "description": "A path from the top of the org, 'Sales / EMEA / Enterprise'; missing teams are created."},
    "region": {"type": _TEXT_OR_NULL, "maxLength": MAX_REGION_OR_SEGMENT},
    "segment": {"type": _TEXT_OR_NULL, "maxLength": MAX_REGION_OR_SEGMENT},
    "manager_email": {"type": _TEXT_OR_NULL, "maxLength": MAX_EMAIL,
                      "description": "A person in the same request or already stored."},
    "timezone": {"type": _TEXT_OR_NULL, "description": "An IANA time zone name; UTC when empty."},
    "active": {"type": "boolean"},
}
payloads.declare("PersonInput", {
    "type": "object",
    "required": ["email", "name"],
    "additionalProperties": False,
    "description": "Fields left out keep their stored value (or the default for a new person: "
    "roles [rep], timezone UTC, active); fields sent as null or empty clear it. `id` is accepted and ignored.",
    "properties": {"id": {"type": "integer"}, **PERSON_FIELDS},
})

# A row with more values than the header has columns: set by the parser,
# reported by the validator (usually an unquoted comma inside a value).
EXTRA_VALUES_KEY = "_extra_values"



# Enough for one IN (...) list on every database we run on.
_IN_CHUNK = 500


# As many as the API takes per request; keeps one import (or dry run) to a
# second or two (issue 13).
MAX_ROWS_PER_FILE = 5000


class PeopleFileError(ValueError):
    """The file as a whole cannot be read (not UTF-8, no email column...)."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.line = line


class RowError(tuple):
    """One problem with one row: the pair (line, reason), where line is the
    CSV line (or the API item index) and reason is in plain words. It
    unpacks as that pair; `field` names the field concerned, if any."""

    def __new__(cls, line: int, reason: str, field: str | None = None):
        error = super().__new__(cls, (line, reason))
        error.field = field
        return error

    @property
    def line(self) -> int:
        return self[0]

    @property
    def reason(self) -> str:
        return self[1]

    def __repr__(self):
        return f"RowError(line={self.line!r}, reason={self.reason!r}, field={self.field!r})"


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    # Matched by email but already exactly as given.
    unchanged: int = 0


@dataclass
class ImportReport:
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Bad rows left out (counted once per row, however many faults it has).
    skipped: int = 0
    rows: int = 0
    imported: bool = False
    dry_run: bool = False
    skip_bad: bool = False
    # Set when the file as a whole could not be read (then errors holds it too).
    file_error: str | None = None
    # Things done differently from what a good row asked (see _unlink_skipped_managers).
    notes: list[str] = field(default_factory=list)

    def bad_rows(self) -> list[tuple[int, str]]:
        """One (line, reasons) pair per bad row, in file order."""
        reasons = defaultdict(list)
        for error in self.errors:
            reasons[error.line].append(error.reason)
        return [(line, "; ".join(reasons[line])) for line in sorted(reasons)]

    @property
    def rejected(self) -> bool:
        """Bad input stopped (or, in a dry run, would stop) the import."""
        return bool(self.file_error) or (bool(self.errors) and not self.skip_bad)

    @property
    def bad_lines(self) -> set[int]:
        return {error.line for error in self.errors}

    def summary(self) -> str:
        bad = len(self.bad_lines)
        bad_rows = f"{bad} bad row{'' if bad == 1 else 's'}"
        unchanged = f", {self.unchanged} unchanged" if self.unchanged else ""
        if self.file_error:
            return f"nothing imported: {self.file_error}"
        if self.dry_run:
            if bad and not self.skip_bad:
                return (f"dry run: {bad_rows}, so nothing would be imported; without them it would "
                        f"create {self.created}, update {self.updated}{unchanged}")
            skipped = f", skip {bad_rows}" if bad else ""
            return f"dry run: would create {self.created}, update {self.updated}{unchanged}{skipped}; nothing written"
        if not self.imported:
            return f"nothing imported: {bad_rows}"
        skipped = f", skipped {bad_rows}" if self.skipped else ""
        return f"created {self.created}, updated {self.updated}{unchanged}{skipped}"


# -- Reading ------------------------------------------------------------------


def parse_people_csv(source) -> list[tuple[int, dict]]:
    """Read the people CSV into (line number, row) pairs.

    `source` is the file's text (str), its bytes, a path (os.PathLike) or an
    open file. The header is line 1; blank lines are skipped but still
    counted, so a reported line is the line a spreadsheet or editor shows.
    Header names are matched case-insensitively, in any order, with spaces or
    hyphens read as underscores; unknown columns are ignored. Each row holds
    the known columns present in the header, values stripped, with the
    leading apostrophe our export adds before formula-like cells removed.
    """
    text = _read_text(source)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise PeopleFileError("the file is empty: the first line must be the header (email, name, ...)")
        columns = _header_columns(header)
        rows = []
        previous_end = reader.line_num
        for cells in reader:
            # A quoted value may span several lines: a row starts right after
            # the previous one ended.
            line = previous_end + 1
            previous_end = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_ROWS_PER_FILE:
                raise PeopleFileError(
                    f"the file has more than {MAX_ROWS_PER_FILE:,} people: split it into files of at most "
                    f"{MAX_ROWS_PER_FILE:,} rows and import them one after another", line=line)
            row = {}
            for position, column in columns.items():
                row[column] = restore_formula(cells[position].strip()) if position < len(cells) else ""
            extra = [cell for cell in cells[len(header):] if cell.strip()]
            if extra:
                row[EXTRA_VALUES_KEY] = len(cells)
            rows.append((line, row))
    except csv.Error as error:
        raise PeopleFileError(f"the file is not valid CSV: {error}", line=reader.line_num) from None
    return rows


def _read_text(source) -> str:
    if isinstance(source, os.PathLike):
        with open(source, "rb") as handle:
            source = handle.read()
    elif hasattr(source, "read"):
        source = source.read()
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise PeopleFileError("the file is not UTF-8 text: save it from the spreadsheet as 'CSV UTF-8'") from None
    if not isinstance(source, str):
        raise TypeError("parse_people_csv takes text, bytes, a path or an open file")
    return source.removeprefix("\ufeff")


def _header_columns(header: list[str]) -> dict[int, str]:
    """Map cell positions to our column names; check the required ones exist."""
    columns = {}
    for position, cell in enumerate(header):
        name = re.sub(r"[\s\-]+", "_", cell.strip().lstrip("\ufeff").lower())
        if name not in PEOPLE_COLUMNS:
            continue
        if name in columns.values():
            raise PeopleFileError(f"the header has the column '{name}' twice")
        columns[position] = name
    missing = [name for name in REQUIRED_COLUMNS if name not in columns.values()]
    if missing:
        raise PeopleFileError(
            f"the header has no {' and no '.join(repr(name) for name in missing)} column "
            f"(expected columns: {', '.join(PEOPLE_COLUMNS)})"
        )
    return columns


def email_problem(address: str) -> str | None:
    """Why `address` cannot be someone's email, or None. Syntax only (no DNS
    lookups); ASCII only, since not every mail server speaks SMTPUTF8."""
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as invalid:
        return str(invalid).rstrip(".").lower()[:1] + str(invalid).rstrip(".")[1:]
    return None


# -- Checking -----------------------------------------------------------------


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_timezone(name: str) -> bool:
    return name in _known_timezones()


def normalise_team_path(text: str) -> str:
    """'Sales/EMEA /  Enterprise' -> 'Sales / EMEA / Enterprise'."""
    return TEAM_PATH_SEPARATOR.join(part.strip() for part in text.split("/"))


def validate_people(rows, *, position_word: str = "line"):
    """Check raw rows; answer (clean rows, errors).

    `rows` are (position, dict) pairs: CSV line numbers from parse_people_csv,
    or API item indexes (then pass position_word="item"). Values are text or
    None (CSV), or the fields of a PersonInput that fit its schema (API:
    `roles` a list, `active` a boolean).

    A clean row has `email` (lower-case) and `name`, and of the other fields
    only those the input had: `roles` (a sorted list; empty means rep), `team`
    (a normalised path or None), `region`, `segment`, `manager_email` (None
    when empty), `timezone` (UTC when empty), `active`.

    Errors are RowError (position, reason) pairs with a `field`, in input order. Beyond each
    row's own fields: a repeated email is bad on every row after the first,
    and a manager must be a good row of the same input or already stored (a
    manager whose own row is bad makes the rows they manage bad too, since
    they will not be imported).
    """
    errors: list[RowError] = []
    cleaned: list[tuple[int, dict]] = []
    for position, raw in rows:
        clean, problems = _clean_row(raw)
        errors.extend(RowError(position, reason, name) for name, reason in problems)
        cleaned.append((position, clean))
    bad = {error.line for error in errors}

    first_position_of_email: dict[str, int] = {}
    for position, clean in cleaned:
        email = clean.get("email")
        if not email:
            continue
        if email in first_position_of_email:
            first = first_position_of_email[email]
            errors.append(RowError(position, f"duplicate email {email} (also on {position_word} {first})", "email"))
            bad.add(position)
        else:
            first_position_of_email[email] = position

    errors.extend(_manager_errors(cleaned, bad, first_position_of_email, position_word))
    bad = {error.line for error in errors}

    order = {position: index for index, (position, _) in enumerate(cleaned)}
    errors.sort(key=lambda error: order[error.line])
    good = [clean for position, clean in cleaned if position not in bad]
    return good, errors


def _manager_errors(cleaned, bad, first_position_of_email, position_word):
    """Rows naming a manager who is neither anywhere in the file nor stored.

    A manager whose own row is bad is still "in the file": that row's fault is
    reported on its own line, and its reports are not blamed for it (with
    --skip-bad they are imported without the manager link; see import_people).
    """
    stored = existing_emails(clean["manager_email"] for _, clean in cleaned if clean.get("manager_email"))
    in_file = {clean.get("email") for _, clean in cleaned if clean.get("email")}
    errors = []
    for position, clean in cleaned:
        manager = clean.get("manager_email")
        if manager and manager not in in_file and manager not in stored:
            errors.append(RowError(position, f"manager {manager} is not in the file nor in the database", "manager_email"))
            bad.add(position)
    return errors


def _clean_row(raw: dict) -> tuple[dict, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    clean: dict = {}

    def text(name, maximum=None):
        value = raw.get(name)
        if value is None:
            return ""
        value = value.strip()
        if any(unicodedata.category(char) == "Cc" for char in value):
            problems.append((name, f"{name} contains a line break or another control character"))
        if maximum and len(value) > maximum:
            problems.append((name, f"{name} is longer than {maximum} characters"))
        return value

    if raw.get(EXTRA_VALUES_KEY):
        problems.append((None, f"the row has {raw[EXTRA_VALUES_KEY]} values but the header has fewer columns "
                               "(a value containing a comma must be in double quotes)"))

    email = text("email", MAX_EMAIL).lower()
    if not email:
        problems.append(("email", "missing email"))
    elif (reason := email_problem(email)) is not None:
        problems.append(("email", f"malformed email '{email}': {reason}"))
    clean["email"] = email

    person_name = text("name", MAX_NAME)
    if not person_name:
        problems.append(("name", "missing name"))
    clean["name"] = person_name

    if "roles" in raw:
        clean["roles"] = _clean_roles(raw["roles"], problems)

    if "team" in raw:
        team = text("team", MAX_TEAM_PATH)
        clean["team"] = None
        if team:
            path = normalise_team_path(team)
            if any(not part for part in path.split(TEAM_PATH_SEPARATOR)):
                problems.append(
                    ("team", f"team path '{team}' has an empty part (write it as 'Sales / EMEA / Enterprise')"))
            elif any(len(part) > MAX_TEAM_PART for part in path.split(TEAM_PATH_SEPARATOR)):
                problems.append(("team", f"a team name in '{team}' is longer than {MAX_TEAM_PART} characters"))
            clean["team"] = path

    for column in ("region", "segment"):
        if column in raw:
            clean[column] = text(column, MAX_REGION_OR_SEGMENT) or None

    if "manager_email" in raw:
        manager = text("manager_email", MAX_EMAIL).lower()
        if manager and (reason := email_problem(manager)) is not None:
            problems.append(("manager_email", f"malformed manager email '{manager}': {reason}"))
            manager = ""  # reported; not looked up as well
        elif manager and manager == email:
            problems.append(("manager_email", "a person cannot be their own manager"))
            manager = ""
        clean["manager_email"] = manager or None

    if "timezone" in raw:
        zone = text("timezone") or DEFAULT_TIMEZONE
        if not is_valid_timezone(zone):
            problems.append(("timezone", f"unknown time zone '{zone}' (use an IANA name such as Europe/Berlin)"))
        clean["timezone"] = zone

    if "active" in raw:
        clean["active"] = raw["active"]

    return clean, problems


def _clean_roles(value, problems) -> list[str]:
    items = value.split(ROLE_SEPARATOR) if isinstance(value, str) else value or []
    roles = {item.strip().lower() for item in items if item.strip()}
    unknown = sorted(roles - set(ROLES))
    for role in unknown:
        problems.append(("roles", f"unknown role '{role}' (roles are {', '.join(ROLES)})"))
    return sorted(roles) or list(DEFAULT_ROLES)


def _chunks(values):
    """Distinct values in sorted slices small enough for one IN (...) list."""
    values = sorted(set(values))
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start:start + _IN_CHUNK]


def existing_emails(emails) -> set[str]:
    """Which of these (lower-case) emails belong to stored people."""
    found = set()
    for chunk in _chunks(emails):
        found.update(db.session.scalars(select(Person.email).where(Person.email.in_(chunk))))
    return found


# -- Storing ------------------------------------------------------------------


def ensure_teams(paths) -> dict[str, Team]:
    """The teams at these paths, creating missing ones and their parents.

    Answers a dict from every path (and every parent path) to its Team. New
    teams are added to the session, not committed.
    """
    wanted = set()
    for path in paths:
        parts = normalise_team_path(path).split(TEAM_PATH_SEPARATOR)
        wanted.update(TEAM_PATH_SEPARATOR.join(parts[:depth]) for depth in range(1, len(parts) + 1))
    teams: dict[str, Team] = {}
    for chunk in _chunks(wanted):
        teams.update((team.path, team) for team in db.session.scalars(select(Team).where(Team.path.in_(chunk))))
    # Parents before children: a parent's path is a prefix, so shallower first.
    for path in sorted(wanted, key=lambda p: p.count(TEAM_PATH_SEPARATOR)):
        if path in teams:
            continue
        parent_path, _, name = path.rpartition(TEAM_PATH_SEPARATOR)
        team = Team(name=name, path=path, parent=teams[parent_path] if parent_path else None)
        db.session.add(team)
        teams[path] = team
    return teams


def team_and_subteams(path: str):
    """A SQL condition on Team.path: this team and every team below it."""
    path = normalise_team_path(path)
    return or_(Team.path == path, Team.path.startswith(path + TEAM_PATH_SEPARATOR, autoescape=True))


def upsert_people(rows, actor=None) -> ImportResult:
    """Create or update people from clean rows (as validate_people answers).

    Works in the caller's transaction (it flushes, the caller commits).
    Managers are resolved after every row has its person, so a manager may
    appear later in the rows than the people they manage. Raises ValueError
    for a manager that is neither in the rows nor stored: validate first.
    """
    rows = [dict(row, email=row["email"].strip().lower()) for row in rows]
    emails = [row["email"] for row in rows]
    people = _people_by_email(emails)
    teams = ensure_teams(row["team"] for row in rows if row.get("team"))

    before = {email: _snapshot(person) for email, person in people.items()}
    before_roles = {email: person.roles for email, person in people.items()}
    result = ImportResult()
    for row in rows:
        person = people.get(row["email"])
        if person is None:
            person = Person(email=row["email"], name=row["name"], timezone=DEFAULT_TIMEZONE, active=True)
            person.set_roles(DEFAULT_ROLES)
            db.session.add(person)
            people[row["email"]] = person
            result.created += 1
        person.name = row["name"]
        if "roles" in row:
            person.set_roles(row["roles"] or DEFAULT_ROLES)
        if "team" in row:
            person.team = teams[normalise_team_path(row["team"])] if row["team"] else None
        for name in ("region", "segment", "timezone", "active"):
            if name in row:
                setattr(person, name, row[name])

    _assign_managers(rows, people)
    db.session.flush()
    # Role changes of people who were already here are audited (new people's
    # roles are part of the import event).
    for email, roles_before in before_roles.items():
        audit.record_role_change(actor, people[email], roles_before, people[email].roles)
    # Deactivation revokes open rep links and ends staff sessions for good (issue 13).
    from cadence.revocation import deactivated

    for email, snapshot in before.items():
        if snapshot[6] and not people[email].active:
            deactivated(people[email], actor)
    for email, snapshot in before.items():
        if _snapshot(people[email]) == snapshot:
            result.unchanged += 1
        else:
            result.updated += 1
    return result


def _people_by_email(emails) -> dict[str, Person]:
    people = {}
    for chunk in _chunks(emails):
        people.update((p.email, p) for p in db.session.scalars(select(Person).where(Person.email.in_(chunk))))
    return people


def _assign_managers(rows, people: dict[str, Person]):
    wanted = {row["manager_email"].lower() for row in rows if row.get("manager_email")}
    people.update(_people_by_email(wanted - people.keys()))
    # Everyone has an id first; managers are then plain id values. Through the
    # self-referencing relationship, a chain of managers made the flush sort
    # its rows one by one: quadratic, 8 s for 5,000 people (issue 13).
    db.session.flush()
    for row in rows:
        if "manager_email" not in row:
            continue
        manager_email = (row["manager_email"] or "").lower()
        if manager_email and manager_email not in people:
            raise ValueError(f"manager {manager_email} of {row['email']} is not in the rows nor in the database")
        people[row["email"]].manager_id = people[manager_email].id if manager_email else None


def _snapshot(person: Person) -> tuple:
    """What an import can change, comparable before and after a flush."""
    return (
        person.name, person.team_id, person.region, person.segment, person.manager_id,
        person.timezone, person.active, tuple(sorted(person.roles)),
    )


def import_people(source, dry_run: bool = False, skip_bad: bool = False, actor=None) -> ImportReport:
    """Parse, check and store a people CSV in one transaction.

    By default nothing is stored when any row is bad; `skip_bad` stores the
    good rows. `dry_run` goes through the same steps (so its counts are
    exact) and then rolls back. Commits only at the end; any failure rolls
    everything back and propagates.
    """
    report = ImportReport(dry_run=dry_run, skip_bad=skip_bad)
    try:
        rows = parse_people_csv(source)
    except PeopleFileError as error:
        report.errors = [RowError(error.line, str(error))]
        report.file_error = str(error)
        return report
    good, errors = validate_people(rows)
    report.rows = len(rows)
    report.errors = errors
    if errors and not skip_bad and not dry_run:
        return report
    report.notes = _unlink_skipped_managers(good)
    try:
        result = upsert_people(good, actor)
        if dry_run:
            db.session.rollback()
        else:
            audit.record(actor, "people.imported", None, {"created": result.created, "updated": result.updated,
                                                          "skipped": len({e.line for e in errors})})
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    report.created, report.updated, report.unchanged = result.created, result.updated, result.unchanged
    report.skipped = len(report.bad_lines) if skip_bad else 0
    report.imported = not dry_run
    return report


def _unlink_skipped_managers(good_rows) -> list[str]:
    """A good row whose manager's row was bad (and who is not stored yet) is
    stored without the manager link; the report says so."""
    good_emails = {row["email"] for row in good_rows}
    wanted = {row.get("manager_email") for row in good_rows if row.get("manager_email")} - good_emails
    unknown = wanted - existing_emails(wanted)
    notes = []
    for row in good_rows:
        if row.get("manager_email") in unknown:
            notes.append(f"{row['email']}: stored without manager {row['manager_email']}, whose row was skipped")
            row["manager_email"] = ""
    return notes


# -- Writing ------------------------------------------------------------------


def export_people_csv() -> str:
    """Everyone, in the import's columns, sorted by email."""
    manager = aliased(Person)
    records = db.session.execute(
        select(Person.id, Person.email, Person.name, Team.path, Person.region, Person.segment,
               manager.email, Person.timezone)
        .outerjoin(Team, Person.team_id == Team.id)
        .outerjoin(manager, Person.manager_id == manager.id)
        .order_by(Person.email)
    ).all()
    roles_by_person = defaultdict(list)
    for person_id, role in db.session.execute(select(PersonRole.person_id, PersonRole.role).order_by(PersonRole.role)):
        roles_by_person[person_id].append(role)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(PEOPLE_COLUMNS)
    for person_id, email, name, team_path, region, segment, manager_email, timezone in records:
        values = (email, name, ROLE_SEPARATOR.join(roles_by_person[person_id]), team_path, region, segment,
                  manager_email, timezone)
        writer.writerow([neutralise_formula(value or "") for value in values])
    return out.getvalue()


def person_to_dict(person: Person) -> dict:
    """A person as the API shows them (load team and manager to avoid N+1)."""
    return {
        "id": person.id,
        "email": person.email,
        "name": person.name,
        "roles": sorted(person.roles),
        "team": person.team.path if person.team else None,
        "region": person.region,
        "segment": person.segment,
        "manager_email": person.manager.email if person.manager else None,
        "timezone": person.timezone,
        "active": person.active,
    }
