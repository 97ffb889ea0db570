"""A leader's journey through a scorecard of the demo organisation in a real
browser (Debian's Chromium through Playwright): open the latest closed round,
switch the slice, read the heatmap and the comments, download the CSV."""

import csv
import io
import re

import pytest
from sqlalchemy import select

from cadence.models import Round
from surveys.demo import seed_demo
from surveys.extensions import db
from tests.conftest import SCREENSHOTS, signed_in_page

pytestmark = pytest.mark.browser


def test_a_leader_reads_a_scorecard_switches_slice_and_exports(app, make_person, browser, live_server):
    seed_demo()
    make_person(email="lead@example.com", name="Lena Leader", roles=("leader",))
    latest = db.session.scalar(select(Round).where(Round.status == "closed").order_by(Round.opens_at.desc()))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = signed_in_page(browser, live_server, "lead@example.com", viewport={"width": 1280, "height": 900},
                          accept_downloads=True)
    page.set_default_timeout(30_000)  # a year of demo history behind the page
    try:
        page.goto(live_server + "/scorecards/")
        page.get_by_role("link", name=latest.period_key, exact=True).click()
        page.wait_for_url(re.compile(rf"/scorecards/rounds/{latest.id}$"))
        assert latest.period_key in page.locator("h1").inner_text()
        assert page.locator("#headline").is_visible()
        assert "Top movers" in page.locator("#headline").inner_text()
        assert page.locator(".sparkline svg title").count() > 0  # each chart has a text alternative
        page.screenshot(path=str(SCREENSHOTS / "scorecard.png"), full_page=True)

        page.get_by_label("Break down by").select_option("region")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r"slice=region"))
        page.get_by_role("navigation", name="On this page").get_by_role("link", name="Heatmap").click()
        heatmap = page.locator("table.heatmap")
        assert heatmap.is_visible()
        rows = heatmap.locator("tbody tr")
        assert rows.count() >= 2
        # Every cell says its state in words; withheld cells say why.
        assert "Heatmap by region" in page.locator("#heatmap h2").inner_text()
        page.locator("#heatmap").screenshot(path=str(SCREENSHOTS / "scorecard-heatmap.png"))

        with page.expect_download() as download_info:
            page.get_by_role("link", name="scorecard (CSV)").click()
        download = download_info.value
        table = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
        assert table and {row["version"] for row in table} == {"1"}
        assert {row["slice_kind"] for row in table} == {"", "region"}

        page.get_by_role("link", name="Comments").first.click()
        page.wait_for_url(re.compile(r"/comments$"))
        assert page.locator("h1").inner_text() == "Comments"
        page.get_by_label("Slice").select_option(label="Sales")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r"slice=team"))
        assert page.locator("ul.comments li").count() > 0 or page.locator(".withheld-comments").count() == 1
        assert "Confidential: no names" in page.content() or page.locator(".withheld-comments").count() == 1
        page.screenshot(path=str(SCREENSHOTS / "scorecard-comments.png"), full_page=True)
    finally:
        page.close()
    _prints_on_a4(browser, live_server, latest)


# A4 is 210 mm wide; with Chromium's default print margins (about 10 mm each
# side) 190 mm are printed: 718 CSS pixels at 96 px per inch.
A4_PRINTED_WIDTH = 718


def _prints_on_a4(browser, live_server, round_):
    """The print version, by team (the widest heatmap), fits the width of an
    A4 page: nothing is cut at the right margin, and Chromium makes a PDF of it."""
    page = signed_in_page(browser, live_server, "lead@example.com",
                          viewport={"width": A4_PRINTED_WIDTH, "height": 1000})
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{live_server}/scorecards/rounds/{round_.id}/print?slice=team")
        page.emulate_media(media="print")
        too_wide = page.evaluate("""(limit) => [...document.querySelectorAll('main *')]
            .filter(el => !el.closest('.visually-hidden'))  // clipped to 1 px: read aloud, never printed
            .filter(el => el.getBoundingClientRect().right > limit + 1 && el.getClientRects().length)
            .map(el => el.tagName + '.' + el.className).slice(0, 10)""", A4_PRINTED_WIDTH)
        assert page.evaluate("document.documentElement.scrollWidth") <= A4_PRINTED_WIDTH and too_wide == [], too_wide
        assert page.locator("table.heatmap").is_visible() and page.locator(".site-header").count() == 0
        pdf = page.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    finally:
        page.close()
