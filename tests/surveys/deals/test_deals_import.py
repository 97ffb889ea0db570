"""`flask --app wsgi deals import FILE [--dry-run]` and `deals replay EVENT_ID` (issue 15)."""

from sqlalchemy import func, select

from surveys.deals.models import Deal, DealEvent
from surveys.extensions import db
from tests.conftest import run_worker
from tests.builders.deals import DATA, configure, event_body, post_signed


def _rep(make_person):
    return make_person(email="ana.rep@example.com", name="Ana Rep", roles=("rep",), password=None)


def test_import_creates_closed_deals_and_a_second_import_changes_nothing(app, make_person):
    _rep(make_person)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["deals", "import", str(DATA / "closed_deals.csv")])
    assert result.exit_code == 0, result.output
    assert "imported 3 deal events (0 already imported, 0 failed)" in result.output
    deals = {d.external_id: d for d in db.session.scalars(select(Deal))}
    assert {k: (d.outcome, d.amount, d.currency) for k, d in deals.items()} == {
        "CSV-1": ("lost", 120000.0, "USD"), "CSV-2": ("won", 30000.0, "EUR"), "CSV-3": ("no_decision", 8000.0, "USD")}
    assert deals["CSV-1"].products == ["Platform", "SSO"] and deals["CSV-1"].loss_reason == "Price"
    again = runner.invoke(args=["deals", "import", str(DATA / "closed_deals.csv")])
    assert "imported 0 deal events (3 already imported, 0 failed)" in again.output
    assert db.session.scalar(select(func.count()).select_from(DealEvent)) == 3


def test_a_bad_file_reports_each_bad_line_and_imports_nothing(app, make_person):
    _rep(make_person)
    result = app.test_cli_runner().invoke(args=["deals", "import", str(DATA / "closed_deals_bad.csv")])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "line 3: unknown owner email 'ghost@example.com' (not among Canary's people)"
    assert lines[1].startswith("line 5: ") and "amount 'eight'" in lines[1] and "unknown currency 'ZZZ'" in lines[1]
    assert lines[2] == "line 6: deal 'CSV-1' is also on line 2"
    assert lines[3] == "nothing imported: 3 bad rows of 4"
    assert db.session.scalar(select(func.count()).select_from(DealEvent)) == 0
    assert db.session.scalar(select(func.count()).select_from(Deal)) == 0


def test_dry_run_checks_and_writes_nothing(app, make_person, tmp_path):
    _rep(make_person)
    result = app.test_cli_runner().invoke(args=["deals", "import", str(DATA / "closed_deals.csv"), "--dry-run"])
    assert result.exit_code == 0 and "dry run: 3 good rows; nothing written" in result.output
    assert db.session.scalar(select(func.count()).select_from(DealEvent)) == 0
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    refused = app.test_cli_runner().invoke(args=["deals", "import", str(empty)])
    assert refused.exit_code == 1 and "the file is empty" in refused.output
    headerless = tmp_path / "short.csv"
    headerless.write_text("id,account\n1,Acme\n")
    refused = app.test_cli_runner().invoke(args=["deals", "import", str(headerless)])
    assert "line 1: the header lacks owner_email, amount, currency, stage, outcome, close_date" in refused.output


def test_replay_from_the_command_line_queues_the_event_again(app, client, clock, make_person):
    configure(app)
    post_signed(client, event_body("evt_cli", owner_email="late.rep@example.com"), clock())
    run_worker(app)
    event = db.session.scalar(select(DealEvent))
    assert event.status == "failed"
    make_person(email="late.rep@example.com", name="Late Rep", roles=("rep",), password=None)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["deals", "replay", str(event.id)])
    assert result.exit_code == 0 and f"deal event {event.id} (api evt_cli) queued again" in result.output
    run_worker(app)
    db.session.expire_all()
    assert db.session.get(DealEvent, event.id).status == "processed"
    missing = runner.invoke(args=["deals", "replay", "999"])
    assert missing.exit_code != 0 and "no deal event with id 999" in missing.output
