"""CLI: `flask --app wsgi users create|token`, `demo seed`, `scorecard check-tallies`."""

import click
from flask import current_app
from flask.cli import AppGroup

from surveys.org.models import Person, ROLES, STAFF_ROLES
from surveys.auth.service import find_person_by_email, hash_password, issue_api_token
from surveys.extensions import db
from surveys import audit

users_cli = AppGroup("users", help="Staff accounts and API tokens.")
demo_cli = AppGroup("demo", help="The demo organisation.")
scorecard_cli = AppGroup("scorecard", help="Scorecards' stored sums.")


def _roles(ctx, param, value):
    roles = [r.strip() for r in (value or "").replace(",", ";").split(";") if r.strip()]
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise click.BadParameter(f"unknown role {unknown[0]!r}; use {';'.join(ROLES)}")
    if not set(roles) & set(STAFF_ROLES):
        raise click.BadParameter("a staff user needs at least one of pm, leader, admin")
    return roles


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--roles", required=True, callback=_roles, help="e.g. 'pm;leader'")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user(email, name, roles, password):
    """Create or update a staff user."""
    email = email.strip().lower()
    if "@" not in email:
        raise click.BadParameter("not an email address", param_hint="--email")
    if len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    person = find_person_by_email(email)
    created = person is None
    if created:
        person = Person(email=email, name=name.strip(), timezone="UTC")
        db.session.add(person)
    else:
        person.name = name.strip()
    roles_before = set() if created else person.roles
    person.set_roles(set(roles) | (person.roles - set(STAFF_ROLES)))
    db.session.flush()
    audit.record_role_change(None, person, roles_before, person.roles)
    person.password_hash = hash_password(password)
    person.active = True
    db.session.commit()
    click.echo(f"{'created' if created else 'updated'} {email} ({';'.join(sorted(person.roles))})")


@users_cli.command("token")
@click.option("--email", required=True)
@click.option("--name", default="Command line token", show_default=True,
              help="What will use the token, as its owner's account page lists it.")
def create_token(email, name):
    """Print a new API token for a user (shown once, stored hashed)."""
    person = find_person_by_email(email)
    if person is None:
        raise click.ClickException(f"no user with email {email}")
    if not person.is_staff:
        raise click.ClickException(f"{email} has no staff role (pm, leader or admin)")
    try:
        token = issue_api_token(person, name=name)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(token)


@demo_cli.command("seed")
@click.option("--force", is_flag=True, help="Seed even in production.")
def seed_command(force):
    """Create the demo organisation with a year of answered monthly rounds."""
    from surveys.demo import seed_demo

    if current_app.config["CANARY_ENV"] == "production" and not force:
        raise click.ClickException("refusing to seed demo data in production (use --force if you mean it)")
    for line in seed_demo():
        click.echo(line)


@scorecard_cli.command("check-tallies")
@click.option("--round", "round_ids", type=int, multiple=True, help="A round id (repeatable); every round by default.")
@click.option("--repair", is_flag=True, help="Recount the tallies of the rounds that differ.")
def check_tallies_command(round_ids, repair):
    """Compare each round's tallies with a recount of its answers; exit 1 when any differ (and were not repaired)."""
    from sqlalchemy import select

    from cadence.models import Round
    from surveys.scorecard.tallies import rebuild_tallies, tally_drift

    statement = select(Round).order_by(Round.id)
    if round_ids:
        statement = statement.where(Round.id.in_(round_ids))
    rounds = db.session.scalars(statement).all()
    missing = sorted(set(round_ids) - {r.id for r in rounds})
    if missing:
        raise click.ClickException(f"no round {missing[0]}")
    drifted = 0
    for round_ in rounds:
        drift = tally_drift(round_)
        if not drift:
            continue
        drifted += 1
        for line in drift:
            click.echo(line)
        if repair:
            rebuild_tallies(round_)
            db.session.commit()
            click.echo(f"round {round_.id}: recounted")
    click.echo(f"{len(rounds)} rounds checked, {drifted} differed" + (", recounted" if repair and drifted else ""))
    if drifted and not repair:
        raise SystemExit(1)


def register_survey_commands(app):
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(scorecard_cli)
