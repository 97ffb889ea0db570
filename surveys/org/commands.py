"""`flask --app wsgi people import|export`: the people CSV from the command line."""

import click
from flask.cli import AppGroup

from surveys.org.people import export_people_csv, import_people

people_cli = AppGroup("people", help="Import and export people (the CSV columns are in docs/api.md).")


@people_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check the file and print the report; change nothing.")
@click.option("--skip-bad", is_flag=True, help="Import the good rows even when some rows are bad.")
def import_command(file, dry_run, skip_bad):
    """Import people from FILE ('-' reads standard input).

    Prints one line per bad row, then a summary. By default nothing is
    imported when any row is bad; the exit status is then 1 (also for a dry
    run, so a script can check a file before importing it).
    """
    report = import_people(file.read(), dry_run=dry_run, skip_bad=skip_bad)
    for line, reason in report.bad_rows():
        click.echo(f"line {line}: {reason}")
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(report.summary())
    if report.rejected:
        click.get_current_context().exit(1)


@people_cli.command("export")
@click.argument("file", type=click.File("wb"), default="-")
def export_command(file):
    """Write everyone as CSV to FILE (standard output when omitted)."""
    file.write(export_people_csv().encode("utf-8"))


def register_people_commands(app):
    app.cli.add_command(people_cli)
