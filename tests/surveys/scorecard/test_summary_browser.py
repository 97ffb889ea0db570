"""The scorecard's summary in a real browser (Debian's Chromium through
Playwright): the headline sentence and the key-metric tiles above the
questions, tiles side by side on a desktop and in one column on a 390 px
phone with no sideways scroll, charts with text alternatives, and axe finds
no serious or critical violation."""

import pytest

from tests.conftest import SCREENSHOTS, accessibility_violations, signed_in_page
from tests.surveys.scorecard.test_long_run import rising_year

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("size", SIZES)
def test_the_summary_leads_the_scorecard_on_a_desktop_and_a_phone(app, make_person, browser, live_server, size):
    _data, rounds, _raw = rising_year()
    make_person(email="lead@example.com", name="Lena Leader", roles=("leader",))
    phone = size == "phone"
    page = signed_in_page(browser, live_server, "lead@example.com", viewport=SIZES[size], is_mobile=phone,
                          has_touch=phone)
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{live_server}/scorecards/rounds/{rounds[-1].id}")
        summary = page.locator("#summary")
        assert summary.is_visible()
        assert "win confidence is up" in summary.locator(".summary-sentence").inner_text()
        tiles = summary.locator(".tile")
        assert tiles.count() == 4
        boxes = [tiles.nth(i).bounding_box() for i in range(4)]
        columns = len({round(box["x"]) for box in boxes})
        assert columns == 1 if phone else columns >= 2
        assert boxes[0]["y"] < page.locator("#questions").bounding_box()["y"]
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"], wide
        chart = tiles.nth(0).locator("svg.trend-chart")
        assert chart.get_attribute("role") == "img"
        assert chart.locator("title").text_content().startswith("Win confidence (mean) by round")
        assert chart.bounding_box()["width"] <= boxes[0]["width"]
        assert tiles.nth(0).locator("table tbody tr").count() == 12
        assert accessibility_violations(page) == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        summary.screenshot(path=str(SCREENSHOTS / f"scorecard-summary-{size}.png"))
        page.emulate_media(media="print")
        assert page.locator("#summary .tile").first.is_visible()
    finally:
        page.close()
