"""The heatmap in a real browser (issue 14): it fits a 1366 px screen with its
first column sticky, wraps into cards on a 390 px phone without sideways
scrolling, says "withheld" with the reason on keyboard focus as on hover, and
passes axe."""

import pytest

from tests.builders.scorecards import ScorecardData
from tests.conftest import SCREENSHOTS, accessibility_violations, signed_in_page
from tests.surveys.scorecard.test_direction import JANUARY, MARCH, PER_REGION, QUESTIONS, answers

pytestmark = pytest.mark.browser


@pytest.fixture
def heatmap_round(app, make_person):
    """A confidential set answered in three regions, one of them too small to show."""
    data = ScorecardData(confidentiality="confidential", min_group_size=5)
    version = data.version(QUESTIONS)
    january = data.round("2026-01", version, 0)
    march = data.round("2026-03", version, 2)
    for region in ("EMEA", "AMER"):
        for index in range(PER_REGION):
            data.respond(january, data.person(region=region), answers(index, **JANUARY))
            data.respond(march, data.person(region=region), answers(index, **MARCH[region]))
    for index in range(2):
        data.respond(march, data.person(region="APAC"), answers(index, **MARCH["AMER"]))
    data.commit()
    make_person(email="lead@example.com", name="Lena Leader", roles=("leader",))
    return march


def _page_width(page):
    return page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")


@pytest.mark.parametrize("width", [1366, 390])
def test_the_heatmap_fits_the_screen_and_explains_withheld_cells(heatmap_round, browser, live_server, width):
    page = signed_in_page(browser, live_server, "lead@example.com", viewport={"width": width, "height": 900})
    try:
        page.goto(f"{live_server}/scorecards/rounds/{heatmap_round.id}?slice=region#heatmap")
        heatmap = page.locator("table.heatmap")
        assert heatmap.is_visible()
        scroll_width, client_width = _page_width(page)
        assert scroll_width <= client_width, f"the page scrolls sideways at {width} px"
        region = page.locator(".heatmap-scroll")
        inner, outer = region.evaluate("(node) => [node.scrollWidth, node.clientWidth]")
        assert inner <= outer, f"the heatmap scrolls sideways at {width} px ({inner} > {outer})"
        first_column = heatmap.locator('tbody th[scope="row"]').first
        if width == 1366:
            assert first_column.evaluate("(node) => getComputedStyle(node).position") == "sticky"
            # Short column titles, the full prompt kept for screen readers.
            title = heatmap.locator("thead th").nth(2)
            assert title.locator('span[aria-hidden="true"]').text_content() == "How confident are you in…"
            assert "in hitting your number this quarter?" in title.locator(".visually-hidden").text_content()
        else:
            # A card per slice: its cells wrap under the slice's name, each titled by its question.
            shown = heatmap.locator("tbody tr").filter(has=page.locator('td[class*="heat-"]:not(.heat-withheld)'))
            cells = shown.first.locator("td")
            first_column = shown.first.locator('th[scope="row"]')
            assert cells.nth(2).bounding_box()["y"] > first_column.bounding_box()["y"]
            label = cells.nth(1).evaluate("(node) => getComputedStyle(node, '::before').content")
            assert "How confident" in label

        # Withheld says so, with its reason on keyboard focus, not only on hover.
        mark = page.locator(".withheld-mark").first
        assert mark.inner_text() == "withheld"
        reason = page.locator(".withheld-reason").first
        assert reason.bounding_box()["width"] <= 1
        page.keyboard.press("Tab")  # focus moves by keyboard through the page to the mark
        mark.focus()
        assert reason.bounding_box()["width"] > 50
        assert "Fewer than 5" in reason.inner_text() or "worked out" in reason.inner_text()
        assert mark.get_attribute("aria-describedby") == reason.get_attribute("id")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#heatmap").screenshot(path=str(SCREENSHOTS / f"scorecard-heatmap-{width}.png"))

        assert accessibility_violations(page) == []
    finally:
        page.close()
