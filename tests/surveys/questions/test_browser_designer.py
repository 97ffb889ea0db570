"""Designer and rep form journeys in a real browser (Debian's Chromium via
Playwright): a PM builds, previews, publishes and republishes with a
breaking change; a rep on a phone answers with the keyboard only."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from cadence.planner import tick
from surveys.extensions import db
from surveys.models import Answer, QuestionSet, Response
from tests.conftest import SCREENSHOTS, run_worker, signed_in_page
from tests.builders.loop import REPS, first_opening, link_path

pytestmark = pytest.mark.browser


def add_question(page, prompt, type_label, key=None, **fields):
    form = page.locator("form.question-form")
    form.get_by_label("Question", exact=True).fill(prompt)
    if key:
        form.get_by_label("Key", exact=True).fill(key)
    form.get_by_label("Type", exact=True).select_option(label=type_label)
    for label, value in fields.items():
        target = form.get_by_label(label.replace("_", " "), exact=True)
        if isinstance(value, bool):
            target.set_checked(value)
        elif target.evaluate("element => element.tagName") == "SELECT":
            target.select_option(value)
        else:
            target.fill(value)
    form.get_by_role("button", name="Add question").click()
    page.wait_for_load_state()
    assert "Added “" in page.locator(".flashes").inner_text(), page.locator("main").inner_text()[:2000]


def test_pm_builds_previews_publishes_and_confirms_a_breaking_change(app, make_person, browser, live_server):
    make_person(email="pm@example.com", roles=("pm",))
    page = signed_in_page(browser, live_server, "pm@example.com", viewport={"width": 1280, "height": 900})
    try:
        page.goto(live_server + "/question-sets/")
        assert "Start from a template" in page.content()
        page.get_by_role("link", name="Create your first question set").click()
        page.get_by_label("Name").fill("Monthly pulse")
        page.get_by_role("button", name="Create question set").click()
        assert page.locator("h1").inner_text() == "Monthly pulse"

        # designer.js shows only the chosen type's settings and suggests a key.
        form = page.locator("form.question-form")
        form.get_by_label("Type", exact=True).select_option(label="Scale (1 to N)")
        assert form.get_by_label("Scale points").is_visible()
        assert not form.get_by_label("Options").is_visible()
        form.get_by_label("Question", exact=True).fill("How confident are you in the quarter?")
        assert form.get_by_label("Key", exact=True).input_value() == "confident_quarter"
        form.get_by_label("Scale points").fill("5")
        form.get_by_label("Low end label").fill("Not at all")
        form.get_by_label("High end label").fill("Completely")
        form.get_by_role("button", name="Add question").click()
        page.wait_for_load_state()

        add_question(page, "Would your customers recommend us?", "NPS (0 to 10)", key="recommend")
        add_question(page, "Did you lose a deal this month?", "Yes / no", key="lost_deal")
        add_question(page, "Who did you lose to?", "Single choice", key="lost_to",
                     Options="acme: Acme\nglobex: Globex", Show_only_if_question="lost_deal",
                     **{"…has the answer": "yes"})
        add_question(page, "Which gaps hurt?", "Multiple choice", key="gaps",
                     Options="sso: SSO\nreporting: Reporting", **{"Offer an “Other” free-text answer (multiple choice)": True})
        add_question(page, "How many deals did you close?", "Number", key="deals", Minimum="0", Maximum="50", Unit="deals")
        add_question(page, "Anything else?", "Free text", key="notes", Maximum_length="500")
        assert "shown if lost_deal = yes" in page.locator("#q-lost_to").inner_text()
        keys = page.locator("ol.designer-questions > li").evaluate_all("items => items.map(i => i.dataset.key)")
        assert keys == ["confident_quarter", "recommend", "lost_deal", "lost_to", "gaps", "deals", "notes"]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "designer.png"), full_page=True)

        # Preview: the rep form at a phone's width, show-if live, nothing stored.
        page.get_by_role("link", name="Preview as a rep").click()
        frame = page.locator(".phone-frame")
        assert frame.bounding_box()["width"] <= 390
        assert not page.locator("#q-lost_to").is_visible()
        page.locator("#q-lost_deal").get_by_label("Yes").check()
        assert page.locator("#q-lost_to").is_visible()
        page.get_by_role("button", name="Send my answers").click()
        assert page.locator("#error-summary").is_visible()
        assert db.session.scalar(select(func.count(Response.id))) == 0
        page.screenshot(path=str(SCREENSHOTS / "designer-preview.png"), full_page=True)
        page.get_by_role("link", name="← Monthly pulse").click()

        page.get_by_role("button", name="Publish version 1").click()
        assert "Published version 1" in page.locator(".flashes").inner_text()

        # A breaking change: the scale grows from 5 to 7 points.
        page.get_by_role("link", name="Edit confident_quarter").click()
        assert page.get_by_label("Key", exact=True).get_attribute("readonly") is not None
        page.get_by_label("Scale points").fill("7")
        page.get_by_label("Question", exact=True).fill("How confident are you in this quarter?")
        page.get_by_role("button", name="Save question").click()
        page.get_by_role("link", name="Edit recommend").click()
        page.get_by_label("Question", exact=True).fill("Would customers recommend us to a peer?")
        page.get_by_role("button", name="Save question").click()
        assert "1 question changes what it measures" in page.content()

        page.get_by_role("link", name=re.compile("Review what changed")).click()
        assert page.locator("h1").inner_text() == "What changed in draft version 2"
        measure = page.locator(".diff-item.diff-measure")
        assert measure.count() == 1 and "Scale changed from 1–5 to 1–7." in measure.inner_text()
        assert "Would customers recommend us to a peer?" in page.locator(".diff-item.diff-wording").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "diff.png"), full_page=True)

        page.get_by_role("button", name="Publish version 2").click()
        assert page.locator("h1").inner_text() == "Publishing version 2 breaks 1 trend"
        assert "confident_quarter" in page.locator(".confirm-panel").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "diff-confirm-publish.png"), full_page=True)
        question_set = db.session.scalar(select(QuestionSet))
        db.session.expire_all()
        assert [v.status for v in question_set.versions] == ["published", "draft"]
        page.get_by_role("button", name="Publish and break these trends").click()
        assert "Published version 2" in page.locator(".flashes").inner_text()
        db.session.expire_all()
        assert [v.status for v in question_set.versions] == ["published", "published"]
        assert question_set.versions[0].questions[0].settings["scale_max"] == 5
        assert question_set.versions[1].questions[0].settings["scale_max"] == 7
    finally:
        page.close()


def focused_matches(page, selector) -> bool:
    return page.evaluate("(selector) => !!document.activeElement && document.activeElement.matches(selector)", selector)


def tab_to(page, selector, limit=60):
    """Press Tab (only) until the focused element matches `selector`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_matches(page, selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_rep_answers_with_the_keyboard_only_on_a_phone(app, client, api_token, smtp, redis_conn, browser, live_server):
    tick(first_opening(client, api_token()))
    run_worker(app)
    smtp.wait_for(len(REPS))
    path = link_path(smtp.messages[0])
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.set_default_timeout(5000)
    try:
        page.goto(live_server + path)
        intro = page.locator("header.intro").inner_text()
        assert "7 questions · about 2 minutes · open until" in intro
        assert "Attributed. Product managers can see your name" in intro
        # Nothing wider than the phone: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        tab_to(page, "#confidence-0")
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        assert page.locator("#confidence-3").is_checked()  # 4 on the scale
        # Focus is visible: the focused choice gets the outline.
        outline = page.evaluate("getComputedStyle(document.activeElement.closest('label')).outlineStyle")
        assert outline == "solid"
        tab_to(page, "#recommend-0")
        for _ in range(9):
            page.keyboard.press("ArrowRight")
        assert page.locator("#recommend-9").is_checked()
        tab_to(page, "#lost_deal-0")
        page.keyboard.press("Space")
        assert page.locator("#lost_deal-0").is_checked()
        assert page.locator("#q-lost_to").is_visible()
        tab_to(page, "#lost_to-0")
        page.keyboard.press("ArrowRight")
        assert page.locator("#lost_to-1").is_checked()  # Globex
        tab_to(page, "#deals")
        page.keyboard.type("120")  # out of range
        tab_to(page, "button[type=submit]")
        # Wait for the answered page itself: the page being left counts as loaded too.
        with page.expect_navigation():
            page.keyboard.press("Enter")

        # The error summary is announced, focused and links to the field.
        summary = page.locator("#error-summary")
        assert summary.get_attribute("role") == "alert"
        expect(summary).to_be_focused()  # respond.js focuses it once it runs
        assert "Enter a number from 0 to 50." in summary.inner_text()
        assert page.locator("#deals").get_attribute("aria-invalid") == "true"
        assert "err-deals" in page.locator("#deals").get_attribute("aria-describedby")
        assert page.locator("#lost_to-1").is_checked()  # input kept
        assert db.session.scalar(select(func.count(Answer.id))) == 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "rep-form-phone-keyboard-error.png"), full_page=True)
        page.keyboard.press("Tab")
        assert focused_matches(page, "#error-summary a")
        page.keyboard.press("Enter")
        assert focused_matches(page, "#deals")
        page.keyboard.press("Control+A")
        page.keyboard.type("12")
        tab_to(page, "button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/thanks(#.*)?$"))
        assert db.session.scalar(select(func.count(Response.id))) == 1

        # Back through the same link: change an answer, still keyboard only.
        page.goto(live_server + path)
        assert "You last saved your answers" in page.locator(".last-saved").inner_text()
        tab_to(page, "#lost_deal-0")  # the group's checked radio takes the focus
        page.keyboard.press("ArrowRight")
        assert page.locator("#lost_deal-1").is_checked()
        assert not page.locator("#q-lost_to").is_visible()
        page.screenshot(path=str(SCREENSHOTS / "rep-form-phone-keyboard.png"), full_page=True)
        tab_to(page, "button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/thanks(#.*)?$"))
        db.session.expire_all()
        stored = dict(db.session.execute(select(Answer.question_key, Answer.value_num)).all())
        assert "lost_to" not in stored  # hidden now, so discarded
        assert (stored["lost_deal"], stored["deals"], stored["confidence"], stored["recommend"]) == (0.0, 12.0, 4.0, 9.0)
    finally:
        page.close()
