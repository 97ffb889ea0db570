"""Needs and evidence: linking, merging, status changes and the messages they
send (one per rep, none for confidential evidence), all audited."""

import pytest
from sqlalchemy import func, select

from surveys.audit import AuditEvent
from surveys.extensions import db
from surveys.triage.inbox import InboxFilters, item_by_token, read_inbox
from surveys.triage.inputs import TriageError
from surveys.triage.needs import announce, change_status, create_need, heard_back, link_item, merge_needs
from surveys.triage.models import Evidence, Need, NeedNotice
from tests.conftest import run_worker
from tests.builders.triage import attributed_round


def _items(filters=None):
    return read_inbox(filters or InboxFilters())["items"]


def _actions():
    return [a for (a,) in db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id))]


def test_linking_marks_the_comment_triaged_and_refuses_a_duplicate(app, clock, make_person):
    pm = make_person()
    _data, round_, (ana, _bo) = attributed_round([("Ana Rep", "Banks keep asking for SAML SSO"),
                                                 ("Bo Rep", "Globex undercut us on reporting")])
    items = _items()
    assert [i["text"] for i in items] == ["Globex undercut us on reporting", "Banks keep asking for SAML SSO"]
    sso = next(i for i in items if "SSO" in i["text"])
    assert sso["writer"] == "Ana Rep" and sso["region"] == "EMEA"
    need = create_need(pm, "SAML SSO for banks", now=clock())
    item = item_by_token(sso["id"])
    evidence = link_item(pm, item, need, 3, clock())
    db.session.commit()
    assert evidence.person_id == ana.id and not evidence.confidential and evidence.importance == 3
    assert [i["text"] for i in _items()] == ["Globex undercut us on reporting"]
    with pytest.raises(TriageError) as error:
        link_item(pm, item, need, 2, clock())
    assert "already" in error.value.errors["need_id"]
    with pytest.raises(TriageError) as error:
        link_item(pm, item, need, 4, clock())
    assert "importance" in error.value.errors
    assert _actions() == ["need.created", "need.evidence_linked"]


def test_merging_moves_evidence_without_duplicates_and_is_audited(app, clock, make_person):
    pm = make_person()
    _data, _round, _people = attributed_round([("Ana Rep", "SSO please"), ("Bo Rep", "Okta single sign-on"),
                                               ("Cy Rep", "SAML for the bank")])
    items = {i["text"]: item_by_token(i["id"]) for i in _items()}
    a = create_need(pm, "SSO", now=clock())
    b = create_need(pm, "Single sign-on", now=clock())
    link_item(pm, items["SSO please"], a, 1, clock())
    link_item(pm, items["Okta single sign-on"], a, 1, clock())
    link_item(pm, items["Okta single sign-on"], b, 3, clock())
    link_item(pm, items["SAML for the bank"], b, 2, clock())
    db.session.commit()
    moved = merge_needs(pm, a, b)
    db.session.commit()
    assert moved == 1
    assert db.session.get(Need, a.id) is None
    rows = db.session.execute(select(Evidence.text, Evidence.importance).where(Evidence.need_id == b.id)
                              .order_by(Evidence.text)).all()
    assert rows == [("Okta single sign-on", 3), ("SAML for the bank", 2), ("SSO please", 1)]
    assert db.session.scalar(select(func.count(Evidence.id))) == 3
    assert "need.merged" in _actions()
    with pytest.raises(TriageError):
        merge_needs(pm, b, b)


def test_planned_and_shipped_send_one_message_per_rep_by_rq_and_smtp(app, clock, make_person, smtp):
    pm = make_person()
    _data, _round, reps = attributed_round([("Ana Rep", "SSO please"), ("Bo Rep", "Okta SSO"),
                                            ("Cy Rep", "We lost Initech on SSO")])
    need = create_need(pm, "SSO", now=clock())
    for item in _items():
        link_item(pm, item_by_token(item["id"]), need, 2, clock())
    db.session.commit()
    with pytest.raises(TriageError) as error:
        change_status(pm, need, "planned", "", clock())
    assert "public_note" in error.value.errors
    ids = change_status(pm, need, "planned", "SAML SSO is planned for Q1.", clock())
    db.session.commit()
    announce(ids)
    assert len(ids) == 3
    run_worker(app)
    assert smtp.wait_for(3) == 3
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"{p.name} <{p.email}>" for p in reps)
    subjects = {m["Subject"] for m in smtp.messages}
    assert subjects == {"You told us, it is planned: SSO"}
    assert {m["X-Canary-Kind"] for m in smtp.messages} == {"need"}
    assert all("What you wrote" in m.get_body(preferencelist=("plain",)).get_content() for m in smtp.messages)
    assert all("SAML SSO is planned for Q1." in m.get_body().get_content() for m in smtp.messages)
    # Planned again (a note edit) sends nothing more.
    again = change_status(pm, need, "planned", "Now in beta.", clock())
    assert again == []
    db.session.commit()
    assert db.session.scalar(select(func.count(NeedNotice.id)).where(NeedNotice.state == "sent")) == 3
    assert _actions().count("need.rep_notified") == 3 and "need.status_changed" in _actions()
    assert heard_back()["share"] == 100.0


def test_a_round_that_holds_its_results_shows_no_comment_until_it_closes(app, clock):
    _data, round_, _people = attributed_round([("Ana Rep", "SSO please")], status="open", hold=True)
    assert read_inbox(InboxFilters(state="all"))["total"] == 0
    round_.status = "closed"
    db.session.commit()
    assert [i["text"] for i in _items()] == ["SSO please"]
