"""The triage pages (pm, admin): the inbox, the ranked needs, a need's page
and the product areas. Thin: the rules are in `surveys.triage.areas`, `.inbox` and `.needs`.
Every form posts with its CSRF token; every page works without JavaScript
(static/triage.js only adds keyboard shortcuts)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from cadence.clock import utcnow
from surveys.auth.access import roles_required
from surveys.extensions import db
from surveys.models import Question, QuestionSet, QuestionSetVersion
from surveys.org.models import Person, PersonRole
from surveys.limits import record_id
from surveys.permissions import EDITORS
from surveys.triage.areas import area_paths, area_rollup, areas_tree, create_area, map_to_area
from surveys.triage.inbox import InboxFilters, item_by_token, read_inbox
from surveys.triage.inputs import TriageError, get_by_id
from surveys.triage.needs import (
    PERIOD_DAYS, announce, change_status, create_need, dismiss_item, evidence_by_period, heard_back, link_item,
    merge_needs, need_evidence, ranked_needs,
)
from surveys.triage.models import IMPORTANCE_LABELS, NEED_STATUSES, STATUS_LABELS, Area, Need

triage_bp = Blueprint("triage", __name__, url_prefix="/triage")
FILTER_ARGS = ("area", "set", "team", "region", "segment", "state")


def _filter_args(source) -> dict:
    return {name: source.get(name) for name in FILTER_ARGS if source.get(name)}


def _inbox_url(source) -> str:
    query = urlencode(_filter_args(source))
    return url_for("triage.inbox") + (f"?{query}" if query else "")


def _all_needs():
    return db.session.scalars(select(Need).order_by(Need.name)).all()


def _render_inbox(errors=None, kept=None, status=200):
    filters = InboxFilters.from_args(request.args, current_user)
    result = read_inbox(filters)
    db.session.commit()  # the items (and their tokens) of comments seen for the first time
    sets = db.session.execute(select(QuestionSet.id, QuestionSet.name).order_by(QuestionSet.name)).all()
    return render_template(
        "triage/inbox.html", result=result, filters=filters, areas=area_paths(), sets=sets,
        needs=_all_needs(), importance=IMPORTANCE_LABELS, errors=errors or {}, kept=kept or {},
        query=_filter_args(request.args),
    ), status


@triage_bp.get("/")
@roles_required(*EDITORS)
def inbox():
    return _render_inbox()


def _item_or_404(token):
    item = item_by_token(token)
    if item is None:
        abort(404)
    return item


def _refused(token, error: TriageError):
    db.session.rollback()
    return _render_inbox(errors={token: error.errors}, kept={token: request.form.to_dict()}, status=422)


@triage_bp.post("/comments/<token>/link")
@roles_required(*EDITORS)
def link(token):
    item = _item_or_404(token)
    need_id = request.form.get("other_need_id") if request.form.get("use_other") else request.form.get("need_id")
    need = get_by_id(Need, need_id)
    try:
        if need is None:
            raise TriageError({"need_id": "Pick the need this comment is evidence for."})
        link_item(current_user, item, need, request.form.get("importance"), utcnow())
    except TriageError as error:
        return _refused(token, error)
    db.session.commit()
    flash(f"Linked to \u201c{need.name}\u201d.", "success")
    return redirect(_inbox_url(request.args))


@triage_bp.post("/comments/<token>/new-need")
@roles_required(*EDITORS)
def new_need(token):
    item = _item_or_404(token)
    now = utcnow()
    try:
        need = create_need(current_user, request.form.get("name"), request.form.get("area_id"), now)
        link_item(current_user, item, need, request.form.get("importance"), now)
    except TriageError as error:
        return _refused(token, error)
    db.session.commit()
    flash(f"New need \u201c{need.name}\u201d, with this comment as its first evidence.", "success")
    return redirect(_inbox_url(request.args))


@triage_bp.post("/comments/<token>/dismiss")
@roles_required(*EDITORS)
def dismiss(token):
    dismiss_item(current_user, _item_or_404(token), utcnow())
    db.session.commit()
    flash("Dismissed.", "success")
    return redirect(_inbox_url(request.args))


@triage_bp.get("/needs")
@roles_required(*EDITORS)
def needs():
    area = request.args.get("area")
    status = request.args.get("status") if request.args.get("status") in NEED_STATUSES else None
    area_id = record_id(area)
    return render_template("triage/needs.html", needs=ranked_needs(utcnow(), area_id, status),
                           areas=area_paths(), statuses=STATUS_LABELS, area_id=area_id, status=status,
                           heard=heard_back(), rollup=area_rollup(),
                           period_days=PERIOD_DAYS)


def _render_need(need, errors=None, status=200):
    evidence = need_evidence(need)
    reply_rounds = list({e["round_id"]: e for e in evidence if e["confidential"] and e["round_id"]}.values())
    return render_template("triage/need.html", need=need, evidence=evidence, reply_rounds=reply_rounds,
                           chart=evidence_by_period(need), statuses=STATUS_LABELS,
                           importance=IMPORTANCE_LABELS, others=[n for n in _all_needs() if n.id != need.id],
                           area=area_paths().get(need.area_id), errors=errors or {},
                           heard=heard_back()["needs"].get(need.id)), status


@triage_bp.get("/needs/<int:need_id>")
@roles_required(*EDITORS)
def need(need_id):
    return _render_need(db.get_or_404(Need, need_id))


@triage_bp.post("/needs/<int:need_id>/status")
@roles_required(*EDITORS)
def need_status(need_id):
    need = db.get_or_404(Need, need_id)
    try:
        notice_ids = change_status(current_user, need, request.form.get("status"),
                                           request.form.get("public_note", ""), utcnow())
    except TriageError as error:
        db.session.rollback()
        return _render_need(need, error.errors, 422)
    db.session.commit()
    announce(notice_ids)
    flash(f"Status: {STATUS_LABELS[need.status]}." + (f" {len(notice_ids)} rep(s) will be told." if notice_ids else ""),
          "success")
    return redirect(url_for("triage.need", need_id=need.id))


@triage_bp.post("/needs/<int:need_id>/merge")
@roles_required(*EDITORS)
def need_merge(need_id):
    source = db.get_or_404(Need, need_id)
    target_id = request.form.get("target_id")
    target = get_by_id(Need, target_id)
    try:
        if target is None:
            raise TriageError({"target_id": "Pick the need to merge this one into."})
        moved = merge_needs(current_user, source, target)
    except TriageError as error:
        db.session.rollback()
        return _render_need(source, error.errors, 422)
    db.session.commit()
    flash(f"Merged: {moved} piece(s) of evidence moved.", "success")
    return redirect(url_for("triage.need", need_id=target.id))


def _render_areas(errors=None, status=200):
    pms = db.session.scalars(select(Person).join(PersonRole).where(PersonRole.role == "pm").order_by(Person.name)).all()
    questions = db.session.execute(
        select(QuestionSet.id, QuestionSet.name, Question.key, Question.prompt, Question.type, Question.settings)
        .join(QuestionSetVersion, QuestionSetVersion.question_set_id == QuestionSet.id)
        .join(Question, Question.version_id == QuestionSetVersion.id)
        .order_by(QuestionSet.name, Question.key, QuestionSetVersion.number.desc())).all()
    choices, seen = [], set()
    for set_id, set_name, key, prompt, qtype, settings in questions:
        if (set_id, key) in seen:
            continue
        seen.add((set_id, key))
        choices.append((f"{set_id}:{key}:", f"{set_name}: {prompt}"))
        for option in (settings or {}).get("options", []) if qtype in ("single_choice", "multi_choice") else []:
            choices.append((f"{set_id}:{key}:{option.get('key')}", f"{set_name}: {prompt} \u2192 {option.get('label')}"))
    return render_template("triage/areas.html", areas=areas_tree(), pms=pms, choices=choices,
                           errors=errors or {}, form=request.form), status


@triage_bp.get("/areas")
@roles_required(*EDITORS)
def areas():
    return _render_areas()


@triage_bp.post("/areas", endpoint="create_area")
@roles_required(*EDITORS)
def add_area():
    try:
        area = create_area(current_user, request.form.get("name"), request.form.get("parent_id") or None,
                           request.form.getlist("owner_ids"))
    except TriageError as error:
        db.session.rollback()
        return _render_areas(error.errors, 422)
    db.session.commit()
    flash(f"Area \u201c{area.name}\u201d added.", "success")
    return redirect(url_for("triage.areas"))


@triage_bp.post("/areas/mappings")
@roles_required(*EDITORS)
def map_area():
    area_id = request.form.get("area_id")
    area = get_by_id(Area, area_id)
    set_id, _, rest = (request.form.get("question") or "").partition(":")
    key, _, option = rest.partition(":")
    try:
        if area is None:
            raise TriageError({"area_id": "Pick an area."})
        map_to_area(current_user, area, set_id, key, option or None)
    except TriageError as error:
        db.session.rollback()
        return _render_areas({"mapping": " ".join(error.errors.values())}, 422)
    db.session.commit()
    flash("Mapped.", "success")
    return redirect(url_for("triage.areas"))
