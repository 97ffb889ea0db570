"""Web journeys in a real browser: Debian's Chromium driven by Playwright."""

import re

import pytest
from sqlalchemy import func, select

from cadence.planner import tick
from surveys.extensions import db
from surveys.models import Answer, Response
from tests.conftest import SCREENSHOTS, run_worker
from tests.builders.loop import REPS, first_opening, link_path


pytestmark = pytest.mark.browser


def test_rep_answers_on_a_phone_with_an_error_then_changes_an_answer(app, client, api_token, smtp, redis_conn, browser, live_server):
    tick(first_opening(client, api_token()))
    run_worker(app)
    smtp.wait_for(len(REPS))
    path = link_path(smtp.messages[0])
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page.goto(live_server + path)
        assert page.locator("h1").inner_text() == "Pulse"
        assert "Attributed" in page.content()
        # The show-if question is hidden until "yes".
        assert not page.locator("#q-lost_to").is_visible()
        page.get_by_label("4", exact=True).first.check()
        page.locator("#q-recommend").get_by_label("9", exact=True).check()
        page.locator("#q-lost_deal").get_by_label("Yes").check()
        assert page.locator("#q-lost_to").is_visible()
        page.locator("#q-lost_to").get_by_label("Globex").check()
        page.get_by_label(re.compile("Deals closed")).fill("120")  # out of range
        page.get_by_role("button", name="Send my answers").click()
        assert page.locator("#error-summary").is_visible()
        assert "from 0 to 50" in page.locator("#q-deals").inner_text()
        assert page.locator("#q-lost_to").get_by_label("Globex").is_checked()  # input kept
        assert db.session.scalar(select(func.count(Answer.id))) == 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "rep-form-phone-error.png"), full_page=True)

        page.get_by_label(re.compile("Deals closed")).fill("12")
        page.get_by_role("button", name="Send my answers").click()
        page.wait_for_url(re.compile(r"/thanks$"))
        assert "Thank you" in page.locator("h1").inner_text()
        assert db.session.scalar(select(func.count(Response.id))) == 1

        # Back through the same link: answers are there and can change.
        page.goto(live_server + path)
        assert "You last saved your answers" in page.content()
        assert page.locator("#q-lost_deal").get_by_label("Yes").is_checked()
        page.locator("#q-lost_deal").get_by_label("No").check()
        assert not page.locator("#q-lost_to").is_visible()
        page.screenshot(path=str(SCREENSHOTS / "rep-form-phone.png"), full_page=True)
        page.get_by_role("button", name="Update my answers").click()
        page.wait_for_url(re.compile(r"/thanks$"))
        db.session.expire_all()
        keys = set(db.session.scalars(select(Answer.question_key)))
        assert "lost_to" not in keys
        assert db.session.scalar(select(Answer.value_num).where(Answer.question_key == "lost_deal")) == 0.0
    finally:
        page.close()
