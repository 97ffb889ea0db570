"""The rep form on a 390 px phone, in a real browser (issue 14): the 0-10
scale is one row of eleven targets of at least 24 x 24 px; a long word in a
question's title wraps inside its card (on the form and in the designer's
preview); a text field shows a live count of its characters, and a paste
over the limit is shown as too long rather than cut."""

from datetime import timedelta

import pytest

from cadence.links import invitation_token
from tests.builders.scorecards import ScorecardData
from tests.conftest import CONTRAST, UNLABELLED, signed_in_page

pytestmark = pytest.mark.browser

LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis-and-supercalifragilisticexpialidocious"
QUESTIONS = [
    {"key": "recommend", "type": "nps", "prompt": "How likely are you to recommend us?"},
    {"key": "confidence", "type": "scale", "prompt": "How confident are you in this quarter?"},
    {"key": "tooling", "type": "scale", "prompt": f"Rate {LONG_WORD}", "settings": {"scale_max": 7}},
    {"key": "gaps", "type": "multi_choice", "required": False, "prompt": "Which gaps hurt?",
     "settings": {"options": [{"key": "sso", "label": "SSO"}], "allow_other": True}},
    {"key": "notes", "type": "text", "required": False, "prompt": "Anything else?", "settings": {"max_length": 40}},
]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

# Each scale's choices: their boxes, and how many rows they sit on.
SCALE_BOXES = """
(key) => [...document.querySelectorAll('#q-' + key + ' .choices label')].map(label => {
  const box = label.getBoundingClientRect();
  return {top: Math.round(box.top), width: box.width, height: box.height};
})
"""
# Elements whose box reaches past their question card's border (text for
# screen readers only is clipped to 1 px on purpose).
OUT_OF_CARD = """
() => [...document.querySelectorAll('.question')].flatMap(card => {
  const edge = card.getBoundingClientRect();
  return [...card.querySelectorAll('*:not(.visually-hidden)')].filter(el => {
    const box = el.getBoundingClientRect();
    return box.width && (box.right > edge.right + 0.5 || box.left < edge.left - 0.5 || el.scrollWidth > el.clientWidth + 1);
  }).map(el => card.id + ' ' + el.tagName);
})
"""


@pytest.fixture
def rep_link(app, clock):
    data = ScorecardData()
    version = data.version(QUESTIONS)
    round_ = data.round("2026-12", version, 0, status="open")
    round_.opens_at, round_.closes_at = clock() - timedelta(days=1), clock() + timedelta(days=6)
    invitation = data.invite(round_, data.person())
    data.commit()
    return data, f"/r/{invitation_token(invitation)}"


def assert_fits_a_phone(page, where):
    for key, points in (("recommend", 11), ("confidence", 5), ("tooling", 7)):
        boxes = page.evaluate(SCALE_BOXES, key)
        assert len(boxes) == points, (where, key)
        assert len({box["top"] for box in boxes}) == 1, (where, key, "wraps onto more than one row")
        assert min(box["width"] for box in boxes) >= 24 and min(box["height"] for box in boxes) >= 24, (where, key, boxes)
    assert page.evaluate(OUT_OF_CARD) == [], where
    assert page.evaluate(UNLABELLED) == [], where
    assert page.evaluate(CONTRAST) == [], where


def test_the_rep_form_fits_a_phone_one_scale_row_and_titles_inside_their_cards(rep_link, browser, live_server):
    _data, path = rep_link
    page = browser.new_page(**PHONE)
    page.set_default_timeout(5000)
    try:
        page.goto(live_server + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert_fits_a_phone(page, "rep form")
        page.locator("#q-recommend").get_by_label("10", exact=True).click()
        assert page.locator("#recommend-10").is_checked()
    finally:
        page.close()


def test_the_designer_preview_fits_its_phone_frame(rep_link, make_person, browser, live_server):
    data, _path = rep_link
    make_person(email="pm@example.com", roles=("pm",))
    page = signed_in_page(browser, live_server, "pm@example.com", viewport={"width": 1280, "height": 900})
    try:
        page.goto(live_server + f"/question-sets/{data.question_set.id}/preview?version=1")
        assert page.locator(".phone-frame").bounding_box()["width"] <= 390
        assert_fits_a_phone(page, "designer preview")
    finally:
        page.close()


def test_a_text_field_counts_its_characters_and_shows_a_paste_over_the_limit(rep_link, browser, live_server):
    _data, path = rep_link
    page = browser.new_page(**PHONE)
    page.set_default_timeout(5000)
    try:
        page.goto(live_server + path)
        notes = page.locator("#notes")
        counter = page.locator("#notes-count")
        assert counter.inner_text() == "0 of 40 characters"
        assert not page.locator("#q-notes .length-hint").is_visible()  # the count replaces "Up to 40 characters."
        assert "notes-count" in notes.get_attribute("aria-describedby")
        notes.fill("Short note")
        assert counter.inner_text() == "10 of 40 characters"
        pasted = "x" * 55
        notes.focus()
        page.keyboard.insert_text(pasted)  # what a paste does: one insertion
        assert notes.input_value() == "Short note" + pasted  # nothing cut behind the rep's back
        assert counter.inner_text() == "65 of 40 characters: 25 too many"
        assert "over" in counter.get_attribute("class")
        assert page.evaluate(CONTRAST) == []
        # The "Other" text has its own counter.
        page.locator("#q-gaps").get_by_role("checkbox", name="Other").check()
        assert page.locator("#gaps__other-count").inner_text() == "0 of 200 characters"
        # The server still refuses the long note.
        page.locator("#q-recommend").get_by_label("9", exact=True).check()
        page.locator("#q-confidence").get_by_label("4", exact=True).check()
        page.locator("#q-tooling").get_by_label("5", exact=True).check()
        page.locator("#q-gaps").get_by_role("checkbox", name="Other").uncheck()
        page.get_by_role("button", name="Send my answers").click()
        page.wait_for_load_state()
        assert page.locator("#error-summary").is_visible()
        assert "40" in page.locator("#q-notes .field-errors").inner_text()
        assert page.locator("#notes").input_value() == "Short note" + pasted
    finally:
        page.close()


# -- Staff lists on a phone: tables become cards ------------------------------------

CARD_CELLS = """
(selector) => [...document.querySelectorAll(selector + ' tbody td, ' + selector + ' tbody th')].map(cell => ({
  label: cell.getAttribute('data-label'), role: cell.getAttribute('role'),
  before: getComputedStyle(cell, '::before').content, text: cell.textContent.trim()}))
"""


def test_a_wide_list_becomes_cards_on_a_phone_and_stays_a_table_on_a_desktop(app, browser, live_server, make_person):
    from tests.conftest import accessibility_violations

    make_person(email="admin@example.com", name="Ada Admin", roles=("admin",))
    for index in range(4):
        make_person(email=f"rep{index}.with.a.rather.long.address@example.com", name=f"Rep Number {index}",
                    roles=("rep",), team=None)
    phone = signed_in_page(browser, live_server, "admin@example.com", **PHONE)
    desktop = signed_in_page(browser, live_server, "admin@example.com", viewport={"width": 1366, "height": 900})
    try:
        phone.goto(live_server + "/people/")
        table = phone.locator("main table").first
        assert "as-cards" in table.get_attribute("class") and table.get_attribute("role") == "table"
        cells = phone.evaluate(CARD_CELLS, "main table")
        headings = phone.eval_on_selector_all("main table:first-of-type thead th", "ths => ths.map(th => th.textContent.trim())")
        assert cells and all(cell["role"] in ("cell", "rowheader") for cell in cells)
        assert {cell["label"] for cell in cells} - {None} == {heading for heading in headings if heading}
        assert any(cell["before"] not in ("none", "normal") for cell in cells)  # the heading is shown in the card
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert phone.evaluate("document.querySelector('main table').scrollWidth <= document.querySelector('main table').clientWidth + 1")
        assert accessibility_violations(phone) == []

        desktop.goto(live_server + "/people/")
        assert "as-cards" not in (desktop.locator("main table").first.get_attribute("class") or "")
        assert desktop.locator("main table").first.get_attribute("role") is None
    finally:
        phone.close()
        desktop.close()


def test_the_designers_settings_read_in_words_on_a_phone(app, browser, live_server, make_person):
    """A long term ("Results held until the round closes") once left its value
    a letter wide, one letter per line."""
    data = ScorecardData()
    data.version(QUESTIONS)
    data.commit()
    make_person(email="pm@example.com", roles=("pm",))
    page = signed_in_page(browser, live_server, "pm@example.com", **PHONE)
    try:
        page.goto(f"{live_server}/question-sets/{data.question_set.id}")
        widths = page.eval_on_selector_all(".designer-settings dd", "dds => dds.map(dd => dd.getBoundingClientRect().width)")
        assert widths and min(widths) > 200, widths
    finally:
        page.close()
