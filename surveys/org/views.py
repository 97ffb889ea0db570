"""The admin's people page: the list, the CSV upload with its report, the export."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms import BooleanField

from cadence.clock import utcnow
from surveys.org.models import Person, Team
from surveys.org.people import export_people_csv, import_people, normalise_team_path, team_and_subteams
from surveys.auth.access import roles_required
from surveys.extensions import db
from surveys import audit, limits
from surveys.permissions import ADMINS
from surveys.tabular import download

people_bp = Blueprint("people", __name__, url_prefix="/people")

PER_PAGE = 50
MAX_PAGE = 1_000_000  # keeps OFFSET within what every database accepts


class PeopleImportForm(FlaskForm):
    file = FileField(
        "People CSV",
        description="Columns: email, name, roles, team, region, segment, manager_email, timezone "
        "(any order; other columns are ignored). At most 2 MB.",
        validators=[FileRequired("Choose a CSV file to import."), FileAllowed(["csv", "txt"], "Choose a .csv file.")],
    )
    dry_run = BooleanField("Dry run: check the file and show the report, change nothing")
    skip_bad = BooleanField("Skip bad rows: import the good rows even when some rows are bad")


@people_bp.get("/")
@roles_required(*ADMINS)
def index():
    return _people_page(PeopleImportForm())


@people_bp.post("/import")
@roles_required(*ADMINS)
def import_csv():
    form = PeopleImportForm()
    if not form.validate_on_submit():
        return _people_page(form, status=422)
    report = import_people(form.file.data.read(), dry_run=form.dry_run.data, skip_bad=form.skip_bad.data,
                           actor=current_user._get_current_object())
    # A file that cannot be read at all (too many rows, not UTF-8...) is a 422.
    return _people_page(form, report=report, status=422 if report.file_error else 200)


@people_bp.post("/<int:person_id>/rep-links/revoke")
@roles_required(*ADMINS)
def revoke_links(person_id):
    """Every link already sent to this person for an open round stops working."""
    from cadence.revocation import revoke_rep_links

    person = db.session.get(Person, person_id) or abort(404)
    count = revoke_rep_links(person, current_user._get_current_object())
    db.session.commit()
    flash(f"Revoked {person.name}'s links to {count} open round(s): the links already sent now answer 'not found'.",
          "success")
    return redirect(url_for("people.index"))


@people_bp.post("/<int:person_id>/rep-links/resend")
@roles_required(*ADMINS)
def resend_links(person_id):
    """Revoke this person's open links and send each open round's new link."""
    from cadence.revocation import resend_rep_links

    person = db.session.get(Person, person_id) or abort(404)
    if not person.active:
        flash(f"{person.name} is not active: nothing was sent.", "error")
        return redirect(url_for("people.index"))
    count = resend_rep_links(person, current_user._get_current_object())
    db.session.commit()
    flash(f"Revoked {person.name}'s old links; {count} new one(s) go out with the next scheduler tick.", "success")
    return redirect(url_for("people.index"))


@people_bp.get("/export.csv")
@roles_required(*ADMINS)
def export_csv():
    # The byte-order mark lets Excel read the names as UTF-8; import skips it.
    body = "\ufeff" + export_people_csv()
    audit.record(current_user._get_current_object(), "people.exported")
    db.session.commit()
    return download(body, "text/csv", f"people-{utcnow():%Y-%m-%d}.csv")


def _people_page(form, report=None, status=200):
    team_path = normalise_team_path(request.args.get("team", "").strip())
    query = select(Person).options(selectinload(Person.team)).order_by(Person.name, Person.email)
    if team_path:
        query = query.join(Team, Person.team_id == Team.id).where(team_and_subteams(team_path))
    page_number = limits.whole_number(request.args.get("page"), minimum=1, maximum=MAX_PAGE) or 1
    page = db.paginate(query, page=page_number, per_page=PER_PAGE, error_out=False)
    return render_template(
        "people/index.html",
        form=form,
        report=report,
        page=page,
        team_path=team_path,
        team_paths=db.session.scalars(select(Team.path).order_by(Team.path)).all(),
        # The admin looking at the page is a person too: "no people yet"
        # means nobody else.
        anyone_else=db.session.scalar(select(func.count()).where(Person.id != current_user.id)) > 0,
    ), status
