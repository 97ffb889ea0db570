"""`flask --app wsgi deals import|replay|tick|rates import|rates reconvert`."""

import click
from flask.cli import AppGroup

from cadence.clock import parse_instant, utcnow
from surveys.deals.csv_import import import_deals
from surveys.deals.currency import import_rates, reconvert, reporting_currency
from surveys.deals.models import DealEvent
from surveys.deals.moments import run_moments
from surveys.deals.processing import replay
from surveys.extensions import db

deals_cli = AppGroup("deals", help="Deals from the CRM: import a CSV of closed deals, replay an event.")


@deals_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check the file and print the report; change nothing.")
def import_command(file, dry_run):
    """Import closed deals from FILE ('-' reads standard input). Prints one
    line per bad row and a summary; any bad row and nothing is imported
    (exit status 1)."""
    report = import_deals(file.read(), utcnow(), dry_run=dry_run)
    _print_report(report)


@deals_cli.command("replay")
@click.argument("event_id", type=int)
def replay_command(event_id):
    """Process the stored deal event EVENT_ID (its Canary id) again, on a worker."""
    event = db.session.get(DealEvent, event_id)
    if event is None:
        raise click.ClickException(f"no deal event with id {event_id}")
    if event.status == "processing":
        raise click.ClickException("the event is being processed; replay it once that is done")
    replay(event, None, utcnow())
    click.echo(f"deal event {event.id} ({event.source} {event.event_id}) queued again")


@deals_cli.command("tick")
@click.option("--now", "now", default=None, help="ISO 8601 instant to run as of (default: now).")
def tick_command(now):
    """Send due deal-moment invitations, today's digests, and expire old ones."""
    report = run_moments(parse_instant(now) if now else utcnow())
    click.echo(f"sent {report['sent']} invitations, {report['digests']} digests; expired {report['expired']}")


rates_cli = AppGroup("rates", help="Exchange rates to the reporting currency, for deal amounts.")
deals_cli.add_command(rates_cli)


@rates_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check the file and print the report; change nothing.")
def rates_import_command(file, dry_run):
    """Import exchange rates from FILE ('-' reads standard input): columns
    currency, rate (units of the reporting currency per unit), effective_from
    (YYYY-MM-DD). Prints one line per bad row and a summary; any bad row and
    nothing is imported (exit status 1). The deals of the changed currencies
    are converted again by a worker."""
    report = import_rates(file.read(), None, dry_run=dry_run)
    _print_report(report)


@rates_cli.command("reconvert")
def rates_reconvert_command():
    """Convert every deal's amount again, here and now (after changing
    REPORTING_CURRENCY, say)."""
    click.echo(f"{reconvert(None)} deals converted to {reporting_currency()}")


def register_deal_commands(app):
    app.cli.add_command(deals_cli)


def _print_report(report) -> None:
    """One line per bad row, then the summary; a rejected import exits 1."""
    for line, reason in report.bad:
        click.echo(f"line {line}: {reason}")
    click.echo(report.summary())
    if report.rejected:
        click.get_current_context().exit(1)
