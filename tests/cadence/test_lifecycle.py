"""Archiving and restoring cadences and question sets (issue 14): an archived
one leaves every list but keeps its history; the planner opens nothing for an
archived cadence, an open round runs to its close, and restoring does not
back-fill; a set a live cadence sends cannot be archived; every action is
role-checked and audited, through the pages and the API alike."""

from datetime import timedelta

from sqlalchemy import func, select

from cadence.models import Delivery, Invitation, Round
from cadence.planner import tick
from surveys.audit import AuditEvent
from surveys.audit_text import readable_events
from surveys.extensions import db
from tests.builders.loop import REPS, instant, set_up_org_and_cadence
from tests.builders.scorecards import ScorecardData
from tests.conftest import csrf_token_from, run_worker


def preview(client, headers, cadence_id, count=3):
    return client.get(f"/api/v1/cadences/{cadence_id}/preview?count={count}", headers=headers).json["occurrences"]


def post_form(client, page_path, action_path, **fields):
    """Press a button on a page: its form's CSRF token, then the POST."""
    token = csrf_token_from(client.get(page_path).text)
    return client.post(action_path, data={"csrf_token": token, **fields})


def audit_rows(action):
    return db.session.execute(
        select(AuditEvent.actor_email, AuditEvent.target, AuditEvent.details).where(AuditEvent.action == action)
    ).all()


def test_an_archived_cadence_opens_nothing_its_open_round_runs_to_its_close_and_restoring_does_not_back_fill(
        app, client, api_token, clock, smtp, redis_conn):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers, reminder_days=(2,))
    cadence_id = cadence["id"]
    december = preview(client, headers, cadence_id, count=1)[0]
    opens = instant(december["opens_at"])
    tick(opens)  # 2026-12 opens (its window was open when the cadence was created)
    run_worker(app)
    assert smtp.wait_for(len(REPS)) == len(REPS)
    january, february, march = preview(client, headers, cadence_id, count=3)

    archived = client.post(f"/api/v1/cadences/{cadence_id}/archive", headers=headers)
    assert archived.status_code == 200, archived.text
    assert archived.json["archived_at"] == "2026-12-01T14:30:00Z" and archived.json["status"] == "active"

    # The open round's reminder still goes, and it closes as planned.
    reminder_at = instant(december["reminders_at"][0])
    tick(reminder_at)
    run_worker(app)
    assert smtp.wait_for(2 * len(REPS)) == 2 * len(REPS)
    reminders = db.session.scalar(select(func.count(Delivery.id)).where(Delivery.kind == "reminder-1",
                                                                        Delivery.status == "sent"))
    assert reminders == len(REPS)
    tick(instant(december["closes_at"]))
    assert db.session.scalar(select(Round.status).where(Round.period_key == december["period_key"])) == "closed"

    # Nothing new opens while it is archived, however many ticks pass.
    for occurrence in (january, february):
        report = tick(instant(occurrence["opens_at"]) + timedelta(minutes=1))
        assert report.opened == [] and report.skipped == []
    assert db.session.scalar(select(func.count(Round.id))) == 1

    # Restored while February's window is open: January (missed while
    # archived) is recorded as skipped and never sent; February opens late,
    # as after a pause; nothing else.
    restore_at = instant(february["opens_at"]) + timedelta(days=1)
    clock.set(restore_at)
    restored = client.post(f"/api/v1/cadences/{cadence_id}/restore", headers=headers)
    assert restored.status_code == 200 and restored.json["archived_at"] is None
    report = tick(restore_at)
    assert report.opened == [f"Monthly pulse {february['period_key']} (late)"]
    rounds = dict(db.session.execute(select(Round.period_key, Round.status)).all())
    assert rounds == {december["period_key"]: "closed", january["period_key"]: "skipped",
                      february["period_key"]: "open"}
    skipped_note = db.session.scalar(select(Round.note).where(Round.period_key == january["period_key"]))
    assert "archived" in skipped_note
    january_invitations = db.session.scalar(
        select(func.count(Invitation.id)).join(Round).where(Round.period_key == january["period_key"]))
    assert january_invitations == 0
    assert march["period_key"] not in rounds

    assert [(email, target) for email, target, _ in audit_rows("cadence.archived")] == [
        ("api-pm-leader-admin@example.com", f"cadences:{cadence_id}")]
    assert audit_rows("cadence.archived")[0][2] == {"open_round": december["period_key"]}
    archived_event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "cadence.archived"))
    [readable] = readable_events([archived_event])
    assert readable["target"] == "cadence Monthly pulse"
    assert readable["details"] == [f"round {december['period_key']} runs on to its close"]
    assert [target for _, target, _ in audit_rows("cadence.restored")] == [f"cadences:{cadence_id}"]


def test_archived_cadences_leave_the_api_list_keep_their_history_and_need_an_editor(app, client, api_token):
    headers = api_token()
    cadence_id = set_up_org_and_cadence(client, headers)["id"]
    tick(instant(preview(client, headers, cadence_id, count=1)[0]["opens_at"]))
    round_id = db.session.scalar(select(Round.id))
    leader = api_token(roles=("leader",), email="leader@example.com")

    refused = client.post(f"/api/v1/cadences/{cadence_id}/archive", headers=leader)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    assert client.post(f"/api/v1/cadences/{cadence_id}/archive", headers=headers).status_code == 200
    twice = client.post(f"/api/v1/cadences/{cadence_id}/archive", headers=headers)
    assert twice.status_code == 409 and twice.mimetype == "application/problem+json"
    assert "already archived" in twice.json["detail"]

    assert client.get("/api/v1/cadences", headers=leader).json == []
    listed = client.get("/api/v1/cadences?archived=true", headers=leader).json
    assert [c["id"] for c in listed] == [cadence_id]
    bad = client.get("/api/v1/cadences?archived=maybe", headers=leader)
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    # History stays readable by URL.
    assert client.get(f"/api/v1/cadences/{cadence_id}", headers=leader).json["archived_at"] is not None
    assert [r["id"] for r in client.get(f"/api/v1/cadences/{cadence_id}/rounds", headers=leader).json] == [round_id]
    assert client.get(f"/api/v1/rounds/{round_id}/scorecard", headers=leader).status_code == 200

    assert client.post(f"/api/v1/cadences/{cadence_id}/restore", headers=leader).status_code == 403
    assert client.post(f"/api/v1/cadences/{cadence_id}/restore", headers=headers).status_code == 200
    assert [c["id"] for c in client.get("/api/v1/cadences", headers=leader).json] == [cadence_id]
    again = client.post(f"/api/v1/cadences/{cadence_id}/restore", headers=headers)
    assert again.status_code == 409 and "not archived" in again.json["detail"]


def test_a_question_set_in_use_cannot_be_archived_and_an_archived_set_cannot_be_scheduled(app, client, api_token):
    headers = api_token()
    cadence = set_up_org_and_cadence(client, headers)
    set_id = cadence["question_set_id"]

    refused = client.post(f"/api/v1/question-sets/{set_id}/archive", headers=headers)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert "Monthly pulse" in refused.json["detail"]
    assert refused.json["errors"] == {"cadences": {str(cadence["id"]): "Monthly pulse"}}
    assert audit_rows("question_set.archived") == []

    assert client.post(f"/api/v1/cadences/{cadence['id']}/archive", headers=headers).status_code == 200
    leader = api_token(roles=("leader",), email="leader@example.com")
    assert client.post(f"/api/v1/question-sets/{set_id}/archive", headers=leader).status_code == 403
    archived = client.post(f"/api/v1/question-sets/{set_id}/archive", headers=headers)
    assert archived.status_code == 200 and archived.json["archived_at"] == "2026-12-01T14:30:00Z"
    assert client.get("/api/v1/question-sets", headers=leader).json == []
    assert [s["id"] for s in client.get("/api/v1/question-sets?archived=true", headers=leader).json] == [set_id]
    assert client.get(f"/api/v1/question-sets/{set_id}", headers=leader).status_code == 200

    # A cadence never sends an archived set: not a new one, not a restored one.
    new = client.post("/api/v1/cadences", json={"name": "Again", "question_set_id": set_id,
                                                "rrule": "FREQ=MONTHLY;BYMONTHDAY=1"}, headers=headers)
    assert new.status_code == 422 and "archived" in new.json["errors"]["question_set_id"]
    blocked = client.post(f"/api/v1/cadences/{cadence['id']}/restore", headers=headers)
    assert blocked.status_code == 409 and "restore the question set first" in blocked.json["detail"]

    assert client.post(f"/api/v1/question-sets/{set_id}/restore", headers=headers).status_code == 200
    assert client.post(f"/api/v1/cadences/{cadence['id']}/restore", headers=headers).status_code == 200
    assert [target for _, target, _ in audit_rows("question_set.archived")] == [f"question_sets:{set_id}"]
    assert [target for _, target, _ in audit_rows("question_set.restored")] == [f"question_sets:{set_id}"]


def test_archive_and_restore_through_the_pages_hide_from_every_list_and_keep_the_rounds(app, signed_in_client):
    data = ScorecardData()
    version = data.version([{"key": "confidence", "type": "scale", "prompt": "How confident are you?"}])
    round_ = data.round("2026-10", version, months_after_first=9)
    data.commit()
    cadence, question_set = data.cadence, data.question_set
    pm = signed_in_client(roles=("pm",), email="pm@example.com")
    leader = signed_in_client(roles=("leader",), email="leader@example.com")
    assert "Monthly pulse" in pm.get("/cadences/").text
    for path in ("/scorecards/", "/home"):
        assert "Monthly pulse" in leader.get(path).text

    show = f"/cadences/{cadence.id}"
    assert post_form(leader, "/scorecards/", f"{show}/archive").status_code == 403
    archived = post_form(pm, show, f"{show}/archive")
    assert archived.status_code == 302
    page = pm.get(show).text
    assert 'class="badge archived"' in page and f'action="{show}/restore"' in page
    assert "Monthly pulse" not in pm.get("/cadences/").text
    assert "Monthly pulse" in pm.get("/cadences/?archived=true").text
    assert "Archived cadences (1)" in pm.get("/cadences/").text
    assert "Monthly pulse" not in leader.get("/scorecards/").text
    assert "Monthly pulse" in leader.get("/scorecards/?archived=true").text
    assert "Monthly pulse" not in leader.get("/home").text
    # The round's scorecard stays readable by URL, marked, with Restore only for editors.
    scorecard = f"/scorecards/rounds/{round_.id}"
    as_leader = leader.get(scorecard)
    assert as_leader.status_code == 200 and 'class="badge archived"' in as_leader.text
    assert "/restore" not in as_leader.text
    as_pm = pm.get(scorecard).text
    assert f'action="{show}/restore"' in as_pm and f'value="{scorecard}"' in as_pm

    # The set is now unused: it can be archived from its page, and leaves the designer's list.
    designer = f"/question-sets/{question_set.id}"
    assert f'href="{designer}"' in pm.get("/question-sets/").text
    assert post_form(pm, designer, f"{designer}/archive").status_code == 302
    assert 'class="badge archived"' in pm.get(designer).text
    listed = pm.get("/question-sets/").text
    assert f'href="{designer}"' not in listed and "Archived question sets (1)" in listed
    assert f'href="{designer}"' in pm.get("/question-sets/?archived=true").text

    # Restoring the cadence first is refused (its set is archived); in order, both come back.
    refused = post_form(pm, show, f"{show}/restore")
    assert refused.status_code == 302
    assert "restore the question set first" in pm.get(show).text
    assert post_form(pm, designer, f"{designer}/restore").status_code == 302
    back = post_form(pm, scorecard, f"{show}/restore", next=scorecard)
    assert back.status_code == 302 and back.headers["Location"].endswith(scorecard)
    assert "Monthly pulse" in pm.get("/cadences/").text and "Monthly pulse" in leader.get("/scorecards/").text
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("%.archived")
                                                                 | AuditEvent.action.like("%.restored"))
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["cadence.archived", "question_set.archived", "question_set.restored", "cadence.restored"]


def test_a_set_in_use_is_refused_on_its_page_naming_the_cadence(app, signed_in_client):
    data = ScorecardData()
    data.version([{"key": "confidence", "type": "scale", "prompt": "How confident are you?"}])
    data.commit()
    pm = signed_in_client(roles=("admin",), email="admin@example.com")
    designer = f"/question-sets/{data.question_set.id}"
    assert post_form(pm, designer, f"{designer}/archive").status_code == 302
    page = pm.get(designer).text
    assert "Not archived" in page and "Monthly pulse" in page and "archive it first" in page
    assert 'class="badge archived"' not in page
    assert audit_rows("question_set.archived") == []
