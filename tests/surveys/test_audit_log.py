"""The audit page reads in words: which round (by its period), what was done,
no empty values (issue 14)."""

import re

from tests.builders.scorecards import ScorecardData


def _details_and_targets(html: str) -> list[tuple[str, str, list[str]]]:
    """(action, target, [detail, ...]) of each row of the audit table."""
    rows = []
    for row in re.findall(r"<tr>\s*<td>.*?</tr>", html, re.S):
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        details = re.findall(r'<span class="audit-detail">(.*?)</span>', cells[4])
        rows.append((re.sub(r"<[^>]+>", "", cells[2]), cells[3], details))
    return rows


def test_the_audit_page_names_rounds_by_their_period_and_omits_empty_details(app, signed_in_client):
    data = ScorecardData(confidentiality="attributed")
    version = data.version([{"key": "score", "type": "scale"}])
    january = data.round("2026-01", version, 0)
    for value in (4, 5, 3):
        data.respond(january, data.person(), {"score": value})
    data.commit()
    pm = signed_in_client(roles=("pm",), email="pm@example.com")
    assert pm.get(f"/scorecards/rounds/{january.id}/scorecard.csv").status_code == 200
    assert pm.get(f"/scorecards/rounds/{january.id}/scorecard.json?slice=team").status_code == 200
    admin = signed_in_client(roles=("admin",), email="admin@example.com")
    page = admin.get("/admin/audit/?action=scorecard.exported")
    assert page.status_code == 200
    rows = _details_and_targets(page.text)
    assert [action for action, _target, _details in rows] == ["scorecard.exported"] * 2
    by_team, whole = rows
    assert whole[1] == by_team[1] == "round 2026-01 of Monthly pulse"
    assert whole[2] == ["as CSV"]
    assert by_team[2] == ["as JSON", "by team"]
    assert "None" not in page.text and "rounds:" not in page.text


def test_a_round_named_in_an_events_details_reads_by_its_period(app, signed_in_client):
    from tests.conftest import csrf_token_from

    data = ScorecardData(confidentiality="attributed")
    version = data.version([{"key": "score", "type": "scale"}])
    january = data.round("2026-01", version, 0)
    data.commit()
    pm = signed_in_client(roles=("pm",), email="pm@example.com")
    token = csrf_token_from(pm.get(f"/scorecards/rounds/{january.id}").text)
    assert pm.post(f"/scorecards/rounds/{january.id}/replies",
                   data={"csrf_token": token, "question_key": "", "body": "Thank you all."}).status_code == 302
    admin = signed_in_client(roles=("admin",), email="admin@example.com")
    [(_action, target, details)] = _details_and_targets(admin.get("/admin/audit/?action=reply.added").text)
    assert target.startswith("replies:")
    assert details == ["body: Thank you all.", "round 2026-01 of Monthly pulse"]
