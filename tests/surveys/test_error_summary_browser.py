"""Errors in view on every staff form (issue 14), in a real browser on a
390 px phone: the designer's add-question form, the cadence form, set
settings and a "you said, we did" reply, each sent with several faults,
come back with one error summary at the top of the page that has focus,
lists every fault and links to each field; the pages pass axe."""

import pytest
from playwright.sync_api import expect

from surveys.extensions import db
from tests.builders.scorecards import ScorecardData
from tests.conftest import SCREENSHOTS, accessibility_violations, signed_in_page

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def submitted(page, button):
    """Press a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        button.click()
    page.wait_for_load_state()


def assert_summary_in_view(page, expected_targets, name):
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    assert page.locator(".error-summary").count() == 1
    # At the top of the page: within the first screen, whatever the scroll.
    top = summary.evaluate("el => el.getBoundingClientRect().top + window.scrollY")
    assert top < PHONE["height"] / 2, f"{name}: the summary starts {top}px down the page"
    targets = summary.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href').slice(1))")
    assert sorted(targets) == sorted(expected_targets), name
    for target in targets:
        assert page.locator(f"[id='{target}']").count() == 1, f"{name}: the link to #{target} leads nowhere"
    assert accessibility_violations(page) == [], name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"error-summary-{name}-phone.png"), full_page=True)


def test_every_staff_form_summarizes_all_its_errors_at_the_top_with_focus_on_a_phone(
        app, make_person, browser, live_server):
    data = ScorecardData()
    version = data.version([{"key": "confidence", "type": "scale", "prompt": "How confident are you?"}])
    round_ = data.round("2026-10", version, months_after_first=9)
    data.commit()
    set_id, round_id = data.question_set.id, round_.id
    make_person(email="pm@example.com", roles=("pm",))
    page = signed_in_page(browser, live_server, "pm@example.com", viewport=PHONE)
    try:
        # The designer: the add-question form sits below the set's versions and questions.
        page.goto(f"{live_server}/question-sets/{set_id}")
        form = page.locator("form.question-form")
        form.get_by_label("Type", exact=True).select_option("single_choice")
        submitted(page, form.get_by_role("button", name="Add question"))
        assert_summary_in_view(page, ["prompt", "options"], "designer")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")  # the first link moves to its field
        expect(page.locator("#prompt")).to_be_focused()

        # The cadence form: every fault at once, not one per attempt.
        page.goto(f"{live_server}/cadences/new")
        page.get_by_label("Repeats").select_option("custom")
        page.get_by_label("Send time").fill("25:99")
        page.get_by_label("Time zone").fill("Mars/Olympus")
        page.get_by_label("Reminders after (days)").fill("9")
        submitted(page, page.get_by_role("button", name="Create cadence"))
        assert_summary_in_view(page, ["name", "rrule", "send_time", "timezone", "reminder_days"], "cadence")
        assert page.get_by_label("Time zone").input_value() == "Mars/Olympus"  # kept

        # Set settings.
        page.goto(f"{live_server}/question-sets/{set_id}/settings")
        page.get_by_label("Name").fill("")
        page.get_by_label("Minimum group size").fill("")
        page.get_by_label("Comments shown from").fill("1")
        submitted(page, page.get_by_role("button", name="Save settings"))
        assert_summary_in_view(page, ["name", "min_group_size", "comment_min_group_size"], "settings")

        # A reply about the round, far down the scorecard.
        page.goto(f"{live_server}/scorecards/rounds/{round_id}")
        reply = page.locator("details.reply-form").first
        reply.locator("summary").click()
        reply.get_by_label("You said, we did").fill("   ")
        submitted(page, reply.get_by_role("button", name="Publish reply"))
        assert_summary_in_view(page, ["reply-round"], "reply")
        assert page.locator("#reply-round").get_attribute("aria-invalid") == "true"
    finally:
        page.close()
        db.session.rollback()
