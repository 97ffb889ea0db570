"""The staff home page leads each role (issue 14): a leader sees what moved,
participation by team against the 60 % flag and new replies; a PM sees their
sets, the rounds that need attention and what waits for them; open rounds'
counts refresh without a reload, through the same gates as every round list."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from cadence.models import Delivery, Invitation
from surveys.extensions import db
from surveys.feedback import Reply
from surveys.org.models import Person
from tests.builders.scorecards import ScorecardData
from tests.conftest import CONTRAST, SCREENSHOTS, UNLABELLED, accessibility_violations, signed_in_page

QUESTIONS = [{"key": "confidence", "type": "scale", "prompt": "How confident are you in this quarter?"},
             {"key": "why", "type": "text", "required": False}]


def _history(data: ScorecardData, reps=20):
    """Two closed rounds, confidence 2 then 4 from the same 20 reps (a significant rise),
    and an open round past half its window: EMEA 1 of 5 answered, Americas 4 of 5."""
    version = data.version(QUESTIONS)
    people = [data.person(team="Sales / EMEA" if i % 2 else "Sales / Americas") for i in range(reps)]
    before = data.round("2026-09", version, months_after_first=8)
    after = data.round("2026-10", version, months_after_first=9)
    for person in people:
        data.respond(before, person, {"confidence": 2})
        data.respond(after, person, {"confidence": 4, "why": f"Banks keep asking for SSO ({person.name})"})
    live = data.round("2026-11", version, months_after_first=10, status="open")
    emea = [p for p in people if p.team.path == "Sales / EMEA"][:5]
    americas = [p for p in people if p.team.path == "Sales / Americas"][:5]
    for index, person in enumerate(emea):
        if index < 1:
            data.respond(live, person, {"confidence": 3})
        else:
            data.invite(live, person)
    for index, person in enumerate(americas):
        if index < 4:
            data.respond(live, person, {"confidence": 4})
        else:
            data.invite(live, person)
    return before, after, live


def test_a_leader_sees_what_moved_participation_by_team_and_new_replies(app, signed_in_client, clock):
    data = ScorecardData()
    _before, after, live = _history(data)
    db.session.add(Reply(round_id=after.id, body="SSO for banks is planned for Q1.", created_at=clock() - timedelta(days=3)))
    db.session.add(Reply(round_id=after.id, body="An old reply.", created_at=clock() - timedelta(days=45)))
    data.commit()

    page = signed_in_client(roles=("leader",)).get("/home").text
    moved = page.split('id="moved-heading"')[1].split("</section>")[0]
    assert "Monthly pulse · 2026-10" in moved and "How confident are you in this quarter?" in moved
    assert "significant" in moved
    # The scorecard's own headline sentence, word for word.
    from surveys.scorecard.overview import round_overview

    headline = round_overview(after)["headline"]
    assert headline.startswith("Confidence is up 2.0 since 2026-09 (significant, better)")
    assert f'<p class="summary-sentence">{headline}</p>' in moved
    teams = page.split('id="teams-heading"')[1].split("</section>")[0]
    emea = teams.split("Sales / EMEA")[1].split("</tr>")[0]
    americas = teams.split("Sales / Americas")[1].split("</tr>")[0]
    assert "20.0 %" in emea and "under 60 %" in emea
    assert "80.0 %" in americas and "under 60 %" not in americas
    replies = page.split('id="replies-heading"')[1].split("</section>")[0]
    assert "SSO for banks is planned for Q1." in replies and "An old reply." not in replies
    assert 'id="sets-heading"' not in page and 'id="waiting-heading"' not in page  # a PM's sections


def test_a_pm_sees_their_sets_rounds_needing_attention_and_what_waits(app, signed_in_client, make_person):
    data = ScorecardData()
    _before, _after, live = _history(data)
    client = signed_in_client(roles=("pm",), email="pat@example.com")
    pm = db.session.scalar(select(Person).where(Person.email == "pat@example.com"))
    data.question_set.owner_id = pm.id
    invitation = db.session.scalar(db.select(Invitation).where(Invitation.round_id == live.id))
    db.session.add(Delivery(invitation_id=invitation.id, kind="invite", status="failed", due_at=live.opens_at,
                            attempts=3, last_error="550 mailbox unavailable"))
    data.commit()

    page = client.get("/home").text
    attention = page.split('id="attention-heading"')[1].split("</section>")[0]
    assert "Monthly pulse · 2026-11" in attention
    assert "1 message could not be delivered" in attention and "50.0 % answered, past half its window" in attention
    sets = page.split('id="sets-heading"')[1].split("</section>")[0]
    assert "Win/loss pulse" in sets and "version 1 published" in sets
    waiting = page.split('id="waiting-heading"')[1].split("</section>")[0]
    assert "20 new comments in the triage inbox" in waiting  # the closed round's 20 attributed comments
    assert 'id="moved-heading"' not in page  # a leader's section

    # A healthy round is not flagged: everyone answered and nothing failed.
    db.session.execute(update(Delivery).values(status="sent"))
    db.session.execute(update(Invitation).where(Invitation.round_id == live.id).values(responded_at=live.opens_at))
    db.session.commit()
    assert 'id="attention-heading"' not in client.get("/home").text


def test_a_held_round_shows_nothing_that_moves_with_answers_on_home_or_its_live_counts(app, signed_in_client):
    data = ScorecardData(confidentiality="confidential", min_group_size=3, hold_until_close=True)
    _history(data)
    data.commit()
    client = signed_in_client(roles=("leader", "pm"))
    page = client.get("/home").text
    live = page.split('id="open-heading"')[1].split("</section>\n</section>")[0]
    assert "10 invited" in live and "answers held until close" in live
    assert "5 / 10" not in page and "50.0 %" not in page
    counts = client.get("/home/live").json["rounds"]
    assert [(c["invited"], c["responded"], c["rate"], c["held"]) for c in counts] == [(10, None, None, True)]
    teams = page.split('id="teams-heading"')[1].split("</section>")[0]
    assert "held" in teams and "under 60 %" not in teams


def test_a_confidential_team_under_the_minimum_is_withheld_on_home(app, signed_in_client):
    data = ScorecardData(confidentiality="confidential", min_group_size=5)
    version = data.version(QUESTIONS)
    live = data.round("2026-11", version, months_after_first=10, status="open")
    big = [data.person(team="Sales / EMEA") for _ in range(8)]
    small = [data.person(team="Sales / Nordics") for _ in range(2)]
    for person in big[:6]:
        data.respond(live, person, {"confidence": 4})
    for person in big[6:] + small:
        data.invite(live, person)
    data.commit()
    page = signed_in_client(roles=("leader",)).get("/home").text
    teams = page.split('id="teams-heading"')[1].split("</section>")[0]
    nordics = teams.split("Sales / Nordics")[1].split("</tr>")[0]
    emea = teams.split("Sales / EMEA")[1].split("</tr>")[0]
    assert "withheld" in nordics and "2" not in nordics.replace("Nordics", "")
    # EMEA is withheld too: with Sales shown, EMEA's counts would give the Nordics' away.
    assert "withheld" in emea and "8" not in emea


def test_live_counts_move_with_answers_and_need_a_staff_session(app, client, signed_in_client):
    data = ScorecardData()
    _before, _after, live = _history(data)
    data.commit()
    assert client.get("/home/live").status_code == 302  # to sign-in
    staff = signed_in_client(roles=("admin",))
    assert staff.get("/home/live").json == {"rounds": [
        {"round_id": live.id, "invited": 10, "responded": 5, "rate": 50.0, "withheld": False, "held": False}]}
    db.session.execute(update(Invitation).where(Invitation.round_id == live.id, Invitation.responded_at.is_(None))
                       .values(responded_at=live.opens_at))
    db.session.commit()
    assert staff.get("/home/live").json["rounds"][0]["responded"] == 10


@pytest.mark.browser
def test_home_on_a_phone_refreshes_its_counts_and_passes_axe(app, make_person, browser, live_server):
    refresh, app.config["HOME_REFRESH_SECONDS"] = app.config["HOME_REFRESH_SECONDS"], 1
    data = ScorecardData()
    _before, _after, live = _history(data)
    data.commit()
    make_person(email="lead@example.com", name="Lena Leader", roles=("leader", "pm"))
    page = signed_in_page(browser, live_server, "lead@example.com", viewport={"width": 390, "height": 844},
                          is_mobile=True, has_touch=True)
    try:
        page.goto(live_server + "/home")
        panel = page.locator(f'[data-live-round="{live.id}"]')
        assert panel.locator('[data-field="responded"]').inner_text() == "5"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate(UNLABELLED) == [] and page.evaluate(CONTRAST) == []
        assert accessibility_violations(page) == []
        page.screenshot(path=str(SCREENSHOTS / "home-leader-phone.png"), full_page=True)
        db.session.execute(update(Invitation).where(Invitation.round_id == live.id,
                                                    Invitation.responded_at.is_(None)).values(responded_at=live.opens_at))
        db.session.commit()
        # No reload: the page's script reads /home/live again within a few seconds.
        expect(panel.locator('[data-field="responded"]')).to_have_text("10", timeout=10_000)
        expect(panel.locator('[data-field="rate"]')).to_have_text("100.0 %")
        expect(page.locator("[data-live-status]")).to_contain_text("Counts updated")
    finally:
        page.close()
        app.config["HOME_REFRESH_SECONDS"] = refresh
