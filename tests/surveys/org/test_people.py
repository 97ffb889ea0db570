"""People and teams: the CSV import (library, CLI, admin page), the API and the export."""

import csv
import io

import pytest
from sqlalchemy import func, select

from surveys.org.models import Person, Team
from surveys.org.people import (
    PeopleFileError,
    export_people_csv,
    import_people,
    parse_people_csv,
    upsert_people,
    validate_people,
)
from surveys.extensions import db
from tests.conftest import MESSY_PEOPLE, SAMPLE_PEOPLE, csrf_token_from

CLEAN = SAMPLE_PEOPLE
MESSY = MESSY_PEOPLE

# The messy file's bad rows (the header is line 1, line 7 is blank), each
# with a word its reason must contain.
MESSY_FAULTS = {
    14: "duplicate email zoe.schmidt@example.com (also on line 3)",
    15: "missing email",
    16: "malformed email 'not-an-email'",
    17: "unknown time zone 'Mars/Olympus_Mons'",
    18: "unknown role 'superuser'",
    20: "manager nobody@example.com is not in the file nor in the database",
    21: "missing name",
}
FORMULA_NAME = '=HYPERLINK("http://evil.example","click")'
MARKUP_NAME = "<script>alert(1)</script>"
UNICODE_NAME = "Zoë Ångström-Ñúñez"


def clean_rows():
    with open(CLEAN, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def people_count():
    return db.session.scalar(select(func.count()).select_from(Person))


def team_count():
    return db.session.scalar(select(func.count()).select_from(Team))


def person(email):
    return db.session.scalar(select(Person).where(Person.email == email))


def import_clean():
    report = import_people(CLEAN)
    assert report.imported and not report.errors
    return report


# -- Library: import ----------------------------------------------------------


def test_clean_file_imports_everyone_with_nested_teams(app):
    report = import_people(CLEAN)

    assert (report.created, report.updated, report.errors, report.imported) == (79, 0, [], True)
    assert report.summary() == "created 79, updated 0"
    assert people_count() == 79
    enterprise = db.session.scalar(select(Team).where(Team.path == "Sales / NA / Enterprise"))
    assert enterprise.name == "Enterprise"
    assert enterprise.parent.path == "Sales / NA" and enterprise.parent.name == "NA"
    assert enterprise.parent.parent.path == "Sales" and enterprise.parent.parent.parent is None
    expected_paths = set()
    for row in clean_rows():
        parts = row["team"].split(" / ")
        expected_paths.update(" / ".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    assert set(db.session.scalars(select(Team.path))) == expected_paths
    zoe = person("zoe.schmidt@example.com")
    assert zoe.roles == {"rep", "leader"}
    assert zoe.team is enterprise
    assert zoe.manager.email == "noah.costa@example.com"
    assert (zoe.region, zoe.segment, zoe.timezone, zoe.active) == ("NA", "Enterprise", "America/New_York", True)
    assert person("ava.sato@example.com").manager is None
    assert person("ava.sato@example.com").segment is None


def test_reimport_updates_by_email_without_duplicates(app, tmp_path):
    import_clean()
    changed = tmp_path / "people-renamed.csv"
    text = CLEAN.read_text(encoding="utf-8")
    text = text.replace("lucia.patel@example.com,Lucia Patel,", "LUCIA.PATEL@example.com,Lucia Patel-Moreau,")
    changed.write_text(text, encoding="utf-8")

    report = import_people(changed)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 78)
    assert report.summary() == "created 0, updated 1, 78 unchanged"
    assert people_count() == 79
    assert person("lucia.patel@example.com").name == "Lucia Patel-Moreau"


def test_messy_file_is_rejected_row_by_row_and_nothing_is_imported(app):
    import_clean()
    before = export_people_csv()
    teams_before = team_count()

    report = import_people(MESSY)

    assert report.bad_lines == set(MESSY_FAULTS)
    for line, reason in report.bad_rows():
        assert MESSY_FAULTS[line] in reason, (line, reason)
    assert not report.imported
    assert report.summary() == "nothing imported: 7 bad rows"
    assert export_people_csv() == before
    assert team_count() == teams_before
    assert person("formula@example.com") is None


def test_messy_bad_rows_are_the_ones_its_notes_describe(app):
    """Cross-check the line numbering with the file's own Notes column."""
    import_clean()
    with open(MESSY, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        noted_bad = {reader.line_num for row in reader
                     if row and row[-1] != "ok" and "valid" not in row[-1] and "must import" not in row[-1]}
    assert import_people(MESSY).bad_lines == noted_bad


def test_a_manager_must_exist_but_a_bad_manager_row_does_not_blame_its_reports(app):
    # On an empty database Noah's manager (Ava Sato) is in neither place: his
    # row is bad. The people under Noah are fine in themselves; skipping bad
    # rows stores them without their manager link, and says so.
    report = import_people(MESSY, skip_bad=True)

    reasons = dict(report.bad_rows())
    assert reasons[2] == "manager ava.sato@example.com is not in the file nor in the database"
    assert report.bad_lines == set(MESSY_FAULTS) | {2}
    assert "zoe.schmidt@example.com: stored without manager noah.costa@example.com, whose row was skipped" in report.notes
    zoe = person("zoe.schmidt@example.com")
    assert zoe.manager is None
    assert person("lucia.patel@example.com").manager.email == "zoe.schmidt@example.com"
    assert person("noah.costa@example.com") is None


def test_skip_bad_imports_the_good_rows_as_plain_text(app):
    import_clean()

    report = import_people(MESSY, skip_bad=True)

    assert report.imported
    assert (report.created, report.updated, report.skipped) == (3, 0, 7)
    assert report.summary() == "created 3, updated 0, 10 unchanged, skipped 7 bad rows"
    assert person("formula@example.com").name == FORMULA_NAME
    assert person("xss@example.com").name == MARKUP_NAME
    assert person("zoe.angstrom@example.com").name == UNICODE_NAME
    # NOAH.COSTA@EXAMPLE.COM in the messy file is the same person.
    assert people_count() == 79 + 3
    assert person("bad.zone@example.com") is None and person("ghost.manager@example.com") is None


def test_dry_run_reports_exact_counts_and_writes_nothing(app):
    report = import_people(CLEAN, dry_run=True)

    assert (report.created, report.updated, report.imported) == (79, 0, False)
    assert report.summary() == "dry run: would create 79, update 0; nothing written"
    assert people_count() == 0 and team_count() == 0

    import_clean()
    report = import_people(MESSY, dry_run=True)
    assert report.bad_lines == set(MESSY_FAULTS)
    assert report.summary() == (
        "dry run: 7 bad rows, so nothing would be imported; without them it would create 3, update 0, 10 unchanged"
    )
    assert people_count() == 79


def test_missing_required_column_is_a_file_level_error(app):
    report = import_people("Name,Team\nAnn,Sales\n")

    assert report.file_error == "the header has no 'email' column (expected columns: email, name, roles, team, " \
        "region, segment, manager_email, timezone)"
    assert report.bad_rows() == [(1, report.file_error)]
    assert not report.imported and people_count() == 0
    with pytest.raises(PeopleFileError, match="'email' and no 'name'"):
        parse_people_csv("Team\nSales\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        ("email,name\nann@example.com,Ann Sj\xf6berg\n".encode("latin-1"), "not UTF-8"),
        (b"email,name,Email\n", "the column 'email' twice"),
    ],
)
def test_unreadable_files_are_reported_not_imported(app, content, message):
    report = import_people(content)

    assert message in report.file_error
    assert report.summary().startswith("nothing imported: ")
    assert people_count() == 0


def test_parser_counts_physical_lines_and_normalises_headers():
    text = (
        "\ufeffE-Mail Is Not It,Manager Email, NAME ,eMail,TimeZone,Notes\r\n"
        "\r\n"
        'x,,"Ann\r\nWith A Long Name",ann@example.com,UTC,a note\r\n'
        "x,,Bo,bo@example.com,UTC,other\r\n"
        "x,,Cy,cy@example.com,UTC,note,extra value\r\n"
    )

    rows = parse_people_csv(text)

    assert [line for line, _ in rows] == [3, 5, 6]
    assert rows[1][1] == {"manager_email": "", "name": "Bo", "email": "bo@example.com", "timezone": "UTC"}
    good, errors = validate_people(rows)
    assert [error.line for error in errors] == [3, 6]
    assert errors[0].reason == "name contains a line break or another control character"
    assert "7 values but the header has fewer columns" in errors[1].reason


def test_validator_checks_each_field_in_plain_words(app):
    rows = [
        (1, {"email": "ann@example.com", "name": "Ann", "team": "Sales //EMEA", "manager_email": "ANN@example.com"}),
        (2, {"email": "bo@example.com", "name": "Bo", "team": " Sales/EMEA ", "roles": " PM ; Leader;"}),
        (3, {"email": "cy@example.com", "name": "x" * 201, "region": "r" * 101}),
    ]

    good, errors = validate_people(rows)

    assert [(e.line, e.field) for e in errors] == [(1, "team"), (1, "manager_email"), (3, "name"), (3, "region")]
    line, reason = errors[1]
    assert (line, reason) == (1, "a person cannot be their own manager")
    assert "team path 'Sales //EMEA' has an empty part" in errors[0].reason
    assert errors[1].reason == "a person cannot be their own manager"
    assert errors[2].reason == "name is longer than 200 characters"
    assert good == [{"email": "bo@example.com", "name": "Bo", "team": "Sales / EMEA", "roles": ["leader", "pm"]}]


def test_columns_left_out_keep_stored_values(app):
    import_clean()

    report = import_people("email,name\nzoe.schmidt@example.com,Zoe Schmidt\nnew.person@example.com,New Person\n")

    assert (report.created, report.updated, report.unchanged) == (1, 0, 1)
    zoe = person("zoe.schmidt@example.com")
    assert zoe.team.path == "Sales / NA / Enterprise" and zoe.roles == {"rep", "leader"}
    newcomer = person("new.person@example.com")
    assert (newcomer.roles, newcomer.timezone, newcomer.team, newcomer.active) == ({"rep"}, "UTC", None, True)


def test_upsert_resolves_a_manager_listed_after_their_reports(app):
    result = upsert_people([
        {"email": "rep@example.com", "name": "Rep", "manager_email": "boss@example.com", "team": "Sales / North"},
        {"email": "boss@example.com", "name": "Boss", "team": "Sales"},
    ])
    db.session.commit()

    assert (result.created, result.updated) == (2, 0)
    assert person("rep@example.com").manager.email == "boss@example.com"
    assert person("rep@example.com").team.parent is person("boss@example.com").team


# -- Export -------------------------------------------------------------------


def test_export_neutralises_formulas_and_round_trips(app):
    import_clean()
    import_people(MESSY, skip_bad=True)

    exported = export_people_csv()

    rows = list(csv.DictReader(io.StringIO(exported)))
    by_email = {row["email"]: row for row in rows}
    assert list(rows[0]) == ["email", "name", "roles", "team", "region", "segment", "manager_email", "timezone"]
    assert len(rows) == 82
    assert by_email["formula@example.com"]["name"] == "'" + FORMULA_NAME
    assert by_email["xss@example.com"]["name"] == MARKUP_NAME
    assert by_email["zoe.schmidt@example.com"] == {
        "email": "zoe.schmidt@example.com", "name": "Zoe Schmidt", "roles": "leader;rep",
        "team": "Sales / NA / Enterprise", "region": "NA", "segment": "Enterprise",
        "manager_email": "noah.costa@example.com", "timezone": "America/New_York",
    }
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    # Importing the export changes nothing: the apostrophe is taken off again.
    report = import_people(exported)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 82)
    assert person("formula@example.com").name == FORMULA_NAME


# -- CLI ----------------------------------------------------------------------


def test_cli_imports_the_clean_file(app):
    result = app.test_cli_runner().invoke(args=["people", "import", str(CLEAN)])

    assert result.exit_code == 0, result.output
    assert result.output == "created 79, updated 0\n"
    assert people_count() == 79


def test_cli_rejects_the_messy_file_with_one_line_per_bad_row(app):
    import_clean()

    result = app.test_cli_runner().invoke(args=["people", "import", str(MESSY)])

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[-1] == "nothing imported: 7 bad rows"
    assert [line.split(":")[0] for line in lines[:-1]] == [f"line {n}" for n in sorted(MESSY_FAULTS)]
    assert lines[0] == "line 14: duplicate email zoe.schmidt@example.com (also on line 3)"
    assert people_count() == 79


def test_cli_dry_run_and_skip_bad(app):
    import_clean()
    runner = app.test_cli_runner()

    dry = runner.invoke(args=["people", "import", str(MESSY), "--dry-run", "--skip-bad"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[-1] == "dry run: would create 3, update 0, 10 unchanged, skip 7 bad rows; nothing written"
    assert people_count() == 79

    skipped = runner.invoke(args=["people", "import", str(MESSY), "--skip-bad"])
    assert skipped.exit_code == 0, skipped.output
    assert "line 17: unknown time zone 'Mars/Olympus_Mons'" in skipped.output
    assert skipped.output.splitlines()[-1] == "created 3, updated 0, 10 unchanged, skipped 7 bad rows"
    assert people_count() == 82


def test_cli_reports_a_file_error_with_exit_status_1(app, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,team\nAnn,Sales\n")

    result = app.test_cli_runner().invoke(args=["people", "import", str(bad)])

    assert result.exit_code == 1
    assert result.output.startswith("line 1: the header has no 'email' column")


def test_cli_exports_to_a_file_and_to_standard_output(app, tmp_path):
    import_clean()
    runner = app.test_cli_runner()
    target = tmp_path / "out.csv"

    assert runner.invoke(args=["people", "export", str(target)]).exit_code == 0
    printed = runner.invoke(args=["people", "export"])

    assert target.read_bytes().decode("utf-8") == export_people_csv()
    assert printed.exit_code == 0 and printed.output.replace("\r\n", "\n") == export_people_csv().replace("\r\n", "\n")
    assert len(printed.output.splitlines()) == 80


# -- API ----------------------------------------------------------------------


def test_api_upsert_counts_created_and_updated(client, api_token):
    headers = api_token(roles=("admin",))
    body = [
        {"email": "Ann@Example.com", "name": "Ann", "roles": ["rep"], "team": "Sales / North", "timezone": "Europe/Oslo"},
        {"email": "boss@example.com", "name": "Boss", "roles": ["leader", "pm"], "team": "Sales"},
    ]
    first = client.post("/api/v1/people", json=body, headers=headers)
    assert first.status_code == 200, first.json
    assert first.json == {"created": 2, "updated": 0, "unchanged": 0}

    body[0]["manager_email"] = "boss@example.com"
    second = client.post("/api/v1/people", json=body, headers=headers)
    assert second.json == {"created": 0, "updated": 1, "unchanged": 1}

    ann = person("ann@example.com")
    assert (ann.manager.email, ann.team.path, ann.timezone) == ("boss@example.com", "Sales / North", "Europe/Oslo")
    listed = client.get("/api/v1/people", query_string={"team": "Sales / North"}, headers=headers).json["items"]
    assert listed == [{
        "id": ann.id, "email": "ann@example.com", "name": "Ann", "roles": ["rep"], "team": "Sales / North",
        "region": None, "segment": None, "manager_email": "boss@example.com", "timezone": "Europe/Oslo",
        "active": True,
    }]
    # What GET answers can be sent back as is.
    resent = client.post("/api/v1/people", json=listed, headers=headers)
    assert resent.json == {"created": 0, "updated": 0, "unchanged": 1}


def test_api_upsert_rejects_bad_items_and_stores_nothing(client, api_token):
    headers = api_token(roles=("admin",))
    body = [
        {"email": "ok@example.com", "name": "Fine"},
        {"email": "zone@example.com", "name": "Zone", "timezone": "Mars/Olympus_Mons", "active": "yes"},
        {"email": "OK@example.com", "name": "Twice", "roles": ["superuser"], "colour": "red"},
        "not an object",
        {"email": "orphan@example.com", "name": "Orphan", "manager_email": "nobody@example.com"},
    ]

    response = client.post("/api/v1/people", json=body, headers=headers)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = response.json["errors"]
    assert set(errors) == {"[1].timezone", "[1].active", "[2].roles", "[2].colour", "[2].email", "[3]", "[4].manager_email"}
    assert errors["[1].timezone"].startswith("unknown time zone 'Mars/Olympus_Mons'")
    assert errors["[2].email"] == "duplicate email ok@example.com (also on item 0)"
    assert errors["[4].manager_email"] == "manager nobody@example.com is not in the file nor in the database"
    assert people_count() == 1  # only the token's owner
    assert team_count() == 0


def test_api_list_paginates_and_filters_by_team_with_sub_teams(client, api_token):
    headers = api_token(roles=("leader",))  # one more person, without a team
    import_clean()

    first = client.get("/api/v1/people", headers=headers).json
    second = client.get("/api/v1/people?page=2", headers=headers).json
    assert (first["page"], first["per_page"], first["total"], len(first["items"])) == (1, 50, 80, 50)
    assert (second["page"], len(second["items"])) == (2, 30)
    emails = [item["email"] for item in first["items"] + second["items"]]
    assert emails == sorted(emails) and len(set(emails)) == 80

    in_na = {row["email"] for row in clean_rows() if row["team"] == "Sales / NA" or row["team"].startswith("Sales / NA / ")}
    filtered = client.get("/api/v1/people", query_string={"team": "Sales / NA"}, headers=headers).json
    assert filtered["total"] == len(in_na) == 20
    assert {item["email"] for item in filtered["items"]} == in_na
    smb = client.get("/api/v1/people", query_string={"team": "Sales / NA / SMB"}, headers=headers).json
    assert smb["total"] == 8

    assert client.get("/api/v1/people", query_string={"team": "Sales / Mars"}, headers=headers).status_code == 404
    assert client.get("/api/v1/people?page=0", headers=headers).status_code == 400


def test_api_people_needs_a_token_and_the_right_role(client, api_token):
    assert client.get("/api/v1/people").status_code == 401
    assert client.post("/api/v1/people", json=[]).status_code == 401
    pm = api_token(roles=("pm",), email="pm-api@example.com")
    assert client.get("/api/v1/people", headers=pm).status_code == 200
    refused = client.post("/api/v1/people", json=[{"email": "a@example.com", "name": "A"}], headers=pm)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    rep = api_token(roles=("rep",), email="rep-api@example.com")
    assert client.get("/api/v1/people", headers=rep).status_code == 403
    admin = api_token(roles=("admin",), email="admin-api@example.com")
    assert client.post("/api/v1/people", json={"email": "a@example.com"}, headers=admin).status_code == 400
    assert person("a@example.com") is None


def test_openapi_documents_the_people_endpoints(client):
    document = client.get("/api/v1/openapi.json").json
    assert set(document["paths"]["/people"]) == {"get", "post"}
    assert "'[<item index>].<field>'" in document["paths"]["/people"]["post"]["description"]
    assert "Person" in document["components"]["schemas"]


# -- Admin page ---------------------------------------------------------------


def upload(client, content, **options):
    page = client.get("/people/")
    data = {"csrf_token": csrf_token_from(page.text), "file": (io.BytesIO(content), "people.csv")}
    data.update({name: "y" for name, ticked in options.items() if ticked})
    return client.post("/people/import", data=data, content_type="multipart/form-data")


def test_admin_page_shows_the_empty_state_and_refuses_non_admins(signed_in_client, app):
    admin = signed_in_client(roles=("admin",))
    page = admin.get("/people/")
    assert page.status_code == 200
    assert "No people yet: import a CSV" in page.text
    assert 'enctype="multipart/form-data"' in page.text

    pm = signed_in_client(roles=("pm",), email="pm@example.com")
    assert "No people yet" not in admin.get("/people/").text
    assert pm.get("/people/").status_code == 403
    assert pm.get("/people/export.csv").status_code == 403
    assert app.test_client().get("/people/").status_code == 302


def test_admin_upload_shows_the_report_and_imports_nothing_when_rows_are_bad(signed_in_client):
    admin = signed_in_client(roles=("admin",))
    import_clean()

    response = upload(admin, MESSY.read_bytes())

    assert response.status_code == 200
    assert "Nothing imported: 7 bad rows." in response.text
    for line in MESSY_FAULTS:
        assert f'<td class="num">{line}</td>' in response.text
    assert "duplicate email zoe.schmidt@example.com (also on line 3)" in response.text
    assert "unknown time zone &#39;Mars/Olympus_Mons&#39;" in response.text
    assert people_count() == 80


def test_admin_upload_with_options_and_the_export_link(signed_in_client):
    admin = signed_in_client(roles=("admin",))
    import_clean()

    dry = upload(admin, MESSY.read_bytes(), dry_run=True, skip_bad=True)
    assert "Dry run: would create 3, update 0, 10 unchanged, skip 7 bad rows; nothing written." in dry.text
    assert people_count() == 80

    done = upload(admin, MESSY.read_bytes(), skip_bad=True)
    assert "Created 3, updated 0, 10 unchanged, skipped 7 bad rows." in done.text
    assert person("formula@example.com").name == FORMULA_NAME

    exported = admin.get("/people/export.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.headers["Content-Disposition"].startswith('attachment; filename="people-')
    assert exported.text.startswith("\ufeffemail,name,")
    assert "'" + FORMULA_NAME.replace('"', '""') in exported.text


def test_admin_upload_needs_csrf_and_a_file(signed_in_client):
    admin = signed_in_client(roles=("admin",))
    no_token = admin.post("/people/import", data={"file": (io.BytesIO(CLEAN.read_bytes()), "people.csv")},
                          content_type="multipart/form-data")
    assert no_token.status_code == 400
    page = admin.get("/people/")
    no_file = admin.post("/people/import", data={"csrf_token": csrf_token_from(page.text)})
    assert no_file.status_code == 422
    assert "Choose a CSV file to import." in no_file.text
    assert people_count() == 1


def test_admin_list_paginates_and_filters_by_team(signed_in_client):
    admin = signed_in_client(roles=("admin",))
    import_clean()

    first = admin.get("/people/")
    assert "Page 1 of 2" in first.text and first.text.count("<tr>") == 51
    assert admin.get("/people/?page=2").text.count("<tr>") == 31
    emea = admin.get("/people/", query_string={"team": "Sales / EMEA"})
    assert "Everyone in Sales / EMEA" in emea.text
    assert "Sales / EMEA / Mid-Market" in emea.text and "Sales / NA / SMB</td>" not in emea.text
    assert emea.text.count("<tr>") == 1 + 19


def test_markup_in_a_name_renders_escaped(signed_in_client, make_person):
    admin = signed_in_client(roles=("admin",))
    make_person(email="xss@example.com", name=MARKUP_NAME, roles=("rep",))

    page = admin.get("/people/")

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert MARKUP_NAME not in page.text
