"""Needs and their evidence: linking comments and chosen options, merging,
status changes with their notices to reps, and the ranking PMs read."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import func, select

from cadence import dispatch
from cadence.models import Invitation, Round
from surveys.audit import record
from surveys.extensions import db
from surveys.limits import record_id
from surveys.models import Answer, Question, QuestionSet, Response
from surveys.org.models import Person
from surveys.scorecard.confidentiality import Policy
from surveys.triage.areas import area_paths, subtree
from surveys.triage.inputs import NAME_MAX, NOTE_MAX, TriageError, get_by_id
from surveys.triage.models import ANNOUNCED_STATUSES, NEED_STATUSES, Area, Evidence, Need, NeedNotice, TriageItem

PERIOD_DAYS = 30


def validate_importance(value) -> int:
    importance = record_id(value)
    if importance not in (1, 2, 3):
        raise TriageError({"importance": "Importance is 1 (nice to have), 2 (important) or 3 (deal-breaker)."})
    return importance


def create_need(actor, name: str, area_id=None, now=None, note: str = "") -> Need:
    name = (name or "").strip()
    note = (note or "").strip()
    errors = {}
    if not name:
        errors["name"] = "Name the need, e.g. \u201cSAML SSO for banks\u201d."
    elif len(name) > NAME_MAX:
        errors["name"] = f"Keep the name to {NAME_MAX} characters."
    if len(note) > NOTE_MAX:
        errors["public_note"] = f"Keep the note to {NOTE_MAX} characters."
    area = None
    if area_id not in (None, ""):
        area = get_by_id(Area, area_id)
        if area is None:
            errors["area_id"] = "No such area."
    if errors:
        raise TriageError(errors)
    need = Need(name=name, area_id=area.id if area else None, public_note=note,
                created_by_id=actor.id if actor else None, created_at=now, status_changed_at=now)
    db.session.add(need)
    db.session.flush()
    record(actor, "need.created", need, {"name": name, "area_id": need.area_id})
    return need


def _answer_context(answer: Answer) -> tuple[Round, bool, int | None, datetime]:
    round_ = db.session.get(Round, answer.round_id)
    response = db.session.get(Response, answer.response_id)
    invitation = db.session.get(Invitation, response.invitation_id)
    attributed = Policy.for_round(round_).min_size is None
    if attributed:
        return round_, False, invitation.person_id, response.submitted_at
    return round_, True, None, round_.closed_at or round_.closes_at


def link_item(actor, item: TriageItem, need: Need, importance, now, amount=None) -> Evidence:
    """Link an inbox comment to a need (once per need) and mark it triaged."""
    importance = validate_importance(importance)
    answer = db.session.get(Answer, item.answer_id)
    existing = db.session.scalar(select(Evidence).where(Evidence.need_id == need.id,
                                                        Evidence.answer_id == answer.id))
    if existing is not None:
        raise TriageError({"need_id": "This comment is already evidence for that need."})
    round_, confidential, person_id, heard_at = _answer_context(answer)
    evidence = Evidence(need_id=need.id, kind="comment", answer_id=answer.id, round_id=round_.id,
                        question_set_id=item.question_set_id, question_key=item.question_key,
                        text=answer.value_text or "", importance=importance, amount=amount,
                        confidential=confidential, person_id=person_id, heard_at=heard_at,
                        created_by_id=actor.id if actor else None, created_at=now)
    db.session.add(evidence)
    item.state, item.triaged_by_id, item.triaged_at = "linked", actor.id if actor else None, now
    db.session.flush()
    record(actor, "need.evidence_linked", need, {"evidence_id": evidence.id, "comment": item.token,
                                                 "importance": importance, "confidential": confidential})
    return evidence


def link_option_answer(actor, answer_id, need: Need, importance, now) -> Evidence:
    """Link one chosen option (a choice answer) to a need: attributed sets
    only, since a single confidential choice is counted through option
    mappings and the scorecard, never linked one by one."""
    importance = validate_importance(importance)
    answer = get_by_id(Answer, answer_id)
    if answer is None:
        raise TriageError({"answer_id": "No such answer."})
    round_ = db.session.get(Round, answer.round_id)
    question = db.session.scalar(select(Question).where(Question.version_id == round_.question_set_version_id,
                                                        Question.key == answer.question_key))
    if question is None or question.type not in ("single_choice", "multi_choice"):
        if question is not None and question.type == "text":
            raise TriageError({"answer_id": "That answer is a comment: send its comment_id from the inbox."})
        raise TriageError({"answer_id": "Only a chosen option can be linked as answer_id."})
    if Policy.for_round(round_).min_size is not None:
        raise TriageError({"answer_id": "Choices of a confidential set are counted through area mappings, "
                                        "never linked one by one."})
    if db.session.scalar(select(Evidence.id).where(Evidence.need_id == need.id, Evidence.answer_id == answer.id)):
        raise TriageError({"answer_id": "This answer is already evidence for that need."})
    _round, confidential, person_id, heard_at = _answer_context(answer)
    label = next((o.get("label") for o in question.options if o.get("key") == answer.value_text), answer.value_text)
    text = f"{question.prompt} {label}" + (f": {answer.detail}" if answer.detail else "")
    evidence = Evidence(need_id=need.id, kind="option", answer_id=answer.id, round_id=round_.id,
                        question_set_id=round_.cadence.question_set_id, question_key=answer.question_key,
                        option_key=answer.value_text, text=text, importance=importance, confidential=confidential,
                        person_id=person_id, heard_at=heard_at, created_by_id=actor.id if actor else None,
                        created_at=now)
    db.session.add(evidence)
    db.session.flush()
    record(actor, "need.evidence_linked", need, {"evidence_id": evidence.id, "answer_id": answer.id,
                                                 "importance": importance})
    return evidence


def dismiss_item(actor, item: TriageItem, now) -> None:
    item.state, item.triaged_by_id, item.triaged_at = "dismissed", actor.id if actor else None, now
    record(actor, "triage.dismissed", f"comment {item.token}", {})


def merge_needs(actor, source: Need, target: Need) -> int:
    """Move the source need's evidence to the target (a comment already there
    is not duplicated: the higher importance is kept), then delete the source."""
    if source.id == target.id:
        raise TriageError({"target_id": "Pick a different need to merge into."})
    kept = {e.answer_id: e for e in target.evidence if e.answer_id is not None}
    moved = 0
    for evidence in list(source.evidence):
        twin = kept.get(evidence.answer_id) if evidence.answer_id is not None else None
        if twin is not None:
            twin.importance = max(twin.importance, evidence.importance)
            db.session.delete(evidence)
        else:
            evidence.need_id = target.id
            moved += 1
    for notice in db.session.scalars(select(NeedNotice).where(NeedNotice.need_id == source.id)):
        if db.session.scalar(select(NeedNotice.id).where(NeedNotice.need_id == target.id,
                                                         NeedNotice.person_id == notice.person_id,
                                                         NeedNotice.status == notice.status)):
            db.session.delete(notice)
        else:
            notice.need_id = target.id
    db.session.flush()
    record(actor, "need.merged", target, {"source_id": source.id, "source_name": source.name, "moved": moved})
    db.session.expire(source, ["evidence"])  # reread: its evidence is the target's now
    db.session.delete(source)
    db.session.flush()
    db.session.expire(target)
    return moved


def change_status(actor, need: Need, status: str, note: str | None, now) -> list[int]:
    """Move a need to `status` with its public note; for planned and shipped,
    one pending notice per rep whose attributed evidence it holds (none for
    confidential evidence, and never a second one for the same status).
    Returns the new notice ids: send them with `announce` after the commit."""
    errors = {}
    if status not in NEED_STATUSES:
        errors["status"] = f"Status is one of: {', '.join(NEED_STATUSES)}."
    note = need.public_note if note is None else (note or "").strip()
    if len(note) > NOTE_MAX:
        errors["public_note"] = f"Keep the note to {NOTE_MAX} characters."
    if status in ANNOUNCED_STATUSES and not note:
        errors["public_note"] = "Write the short public note the reps will read."
    if errors:
        raise TriageError(errors)
    before = need.status
    need.status, need.public_note = status, note
    if before != status:
        need.status_changed_at = now
    notice_ids = []
    if status in ANNOUNCED_STATUSES and before != status:
        people = sorted({e.person_id for e in need.evidence if e.person_id is not None and not e.confidential})
        already = set(db.session.scalars(select(NeedNotice.person_id).where(
            NeedNotice.need_id == need.id, NeedNotice.status == status)))
        for person_id in people:
            if person_id in already:
                continue
            notice = NeedNotice(need_id=need.id, person_id=person_id, status=status, created_at=now)
            db.session.add(notice)
            db.session.flush()
            notice_ids.append(notice.id)
    record(actor, "need.status_changed", need, {"from": before, "to": status, "notices": len(notice_ids),
                                                "confidential_evidence": sum(e.confidential for e in need.evidence)})
    return notice_ids


def announce(notice_ids: list[int]) -> None:
    """After the commit that stored them: queue the notices' messages."""
    if notice_ids:
        dispatch.need_notices(notice_ids)


# -- Ranking -------------------------------------------------------------------------------


def ranked_needs(now, area_id=None, status=None) -> list[dict]:
    """Needs with mentions (all time, this period and the one before, of
    PERIOD_DAYS each, by when the evidence was heard), weighted importance,
    revenue at stake (None until deals exist), ranked by mentions this
    period, then weighted importance, revenue and mentions of all time."""
    statement = select(Need)
    if area_id is not None:
        statement = statement.where(Need.area_id.in_(subtree(area_id)))
    if status is not None:
        statement = statement.where(Need.status == status)
    needs = db.session.scalars(statement).all()
    paths = area_paths()
    start = now - timedelta(days=PERIOD_DAYS)
    before = start - timedelta(days=PERIOD_DAYS)
    stats = defaultdict(lambda: {"mentions": 0, "this_period": 0, "last_period": 0, "importance": 0,
                                 "revenue": None, "confidential": 0})
    if needs:
        for need_id, heard_at, importance, amount, confidential in db.session.execute(
            select(Evidence.need_id, Evidence.heard_at, Evidence.importance, Evidence.amount, Evidence.confidential)
            .where(Evidence.need_id.in_([n.id for n in needs]))
        ):
            s = stats[need_id]
            s["mentions"] += 1
            s["importance"] += importance
            s["confidential"] += bool(confidential)
            if heard_at >= start:
                s["this_period"] += 1
            elif heard_at >= before:
                s["last_period"] += 1
            if amount is not None:
                s["revenue"] = float(amount) + (s["revenue"] or 0.0)
    heard = heard_back()
    out = []
    for need in needs:
        s = stats[need.id]
        out.append({"id": need.id, "name": need.name, "status": need.status, "public_note": need.public_note,
                    "area_id": need.area_id, "area": paths.get(need.area_id), **s,
                    "trend": s["this_period"] - s["last_period"], "heard_back": heard["needs"].get(need.id)})
    out.sort(key=lambda n: (-n["this_period"], -n["importance"], -(n["revenue"] or 0), -n["mentions"],
                            n["name"].lower()))
    return out


def heard_back() -> dict:
    """The loop: of needs planned or shipped holding attributed evidence, how
    many have told every such rep, and the median days from the first
    evidence to the last message."""
    per_need = {}
    rows = db.session.execute(select(NeedNotice.need_id, NeedNotice.state, NeedNotice.sent_at)).all()
    by_need = defaultdict(list)
    for need_id, state, sent_at in rows:
        by_need[need_id].append((state, sent_at))
    first_heard = dict(db.session.execute(select(Evidence.need_id, func.min(Evidence.created_at))
                                          .group_by(Evidence.need_id)).all())
    days = []
    for need_id, notices in by_need.items():
        done = all(state == "sent" for state, _ in notices)
        per_need[need_id] = {"told": sum(state == "sent" for state, _ in notices), "of": len(notices)}
        if done and first_heard.get(need_id):
            last = max(sent_at for _, sent_at in notices)
            days.append((last - first_heard[need_id]).total_seconds() / 86400)
    eligible = len(by_need)
    closed = sum(1 for v in per_need.values() if v["told"] == v["of"])
    median_days = median(days) if days else None
    return {"needs": per_need, "eligible": eligible, "closed": closed,
            "share": round(100.0 * closed / eligible, 1) if eligible else None,
            "median_days": round(median_days, 1) if median_days is not None else None}


def need_evidence(need: Need) -> list[dict]:
    """A need's evidence, oldest first: the text, where it came from, and the
    rep's name only for attributed sets."""
    set_names = dict(db.session.execute(select(QuestionSet.id, QuestionSet.name)).all())
    periods = dict(db.session.execute(select(Round.id, Round.period_key).where(
        Round.id.in_({e.round_id for e in need.evidence if e.round_id}))).all()) if need.evidence else {}
    people = dict(db.session.execute(select(Person.id, Person.name).where(
        Person.id.in_({e.person_id for e in need.evidence if e.person_id}))).all()) if need.evidence else {}
    return [{"id": e.id, "kind": e.kind, "text": e.text, "round_id": e.round_id, "importance": e.importance,
             "amount": float(e.amount) if e.amount is not None else None, "confidential": e.confidential,
             "question_set": set_names.get(e.question_set_id), "period_key": periods.get(e.round_id),
             "writer": None if e.confidential else people.get(e.person_id), "heard_at": e.heard_at}
            for e in need.evidence]


def evidence_by_period(need: Need) -> list[tuple[str, int]]:
    """[(YYYY-MM, mentions)] for the need's chart, every month from the first to the last."""
    months = defaultdict(int)
    for e in need.evidence:
        months[e.heard_at.strftime("%Y-%m")] += 1
    if not months:
        return []
    first, last = min(months), max(months)
    year, month = int(first[:4]), int(first[5:])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        key = f"{year:04d}-{month:02d}"
        out.append((key, months.get(key, 0)))
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out
