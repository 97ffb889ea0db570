"""Every page a staff member can reach from the demo, and a rep's form, pass
axe-core (no serious or critical violation) on a desktop and on a 390 px
phone, where nothing makes the page scroll sideways. The pages are found by
following links from the home page, so a new page is checked once it is
linked."""

from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from cadence.links import invitation_token
from cadence.models import Invitation, Round
from surveys.demo import seed_demo
from surveys.extensions import db
from tests.conftest import accessibility_violations, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Links that change something, download a file or leave the pages.
SKIPPED = ("/sign-out", "/static/", "/api/", ".csv", ".json", "/export", "/print", "/r/")
PAGES_AT_MOST = 80
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def _links(page, base) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    paths = []
    for href in hrefs:
        url = urljoin(page.url, href)
        if not url.startswith(base) or any(part in url for part in SKIPPED):
            continue
        parts = urlsplit(url)
        paths.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return paths


def _staff_pages(page, base) -> list[str]:
    """Pages reachable from /home within two links, breadth first."""
    seen, queue = [], ["/home"]
    depth = {"/home": 0}
    while queue and len(seen) < PAGES_AT_MOST:
        path = queue.pop(0)
        if path in seen:
            continue
        page.goto(base + path)
        if page.url.startswith(base + "/sign-in"):
            continue
        seen.append(path)
        if depth[path] < 2:
            for link in _links(page, base):
                if link not in depth:
                    depth[link] = depth[path] + 1
                    queue.append(link)
    return seen


@pytest.mark.parametrize("size", SIZES)
def test_every_staff_page_and_the_rep_form_pass_axe(app, make_person, browser, live_server, size):
    seed_demo()
    make_person(email="everyone@example.com", name="Eve Everyone", roles=("pm", "leader", "admin"))
    page = signed_in_page(browser, live_server, "everyone@example.com", viewport=SIZES[size],
                          is_mobile=size == "phone", has_touch=size == "phone")
    page.set_default_timeout(30_000)  # a year of demo history behind some pages
    try:
        pages = _staff_pages(page, live_server)
        assert len(pages) >= 15, pages  # the crawl reached the staff pages, not just the home page
        problems = {}
        for path in pages:
            page.goto(live_server + path)
            found = accessibility_violations(page)
            if size == "phone" and page.evaluate("document.documentElement.scrollWidth") > 390:
                found.append(f"scrolls sideways: {page.evaluate('document.documentElement.scrollWidth')} px")
            if found:
                problems[path] = found
        open_round = db.session.scalar(select(Round).where(Round.status == "open"))
        invitation = db.session.scalar(select(Invitation).where(Invitation.round_id == open_round.id))
        page.goto(f"{live_server}/r/{invitation_token(invitation)}")
        if accessibility_violations(page):
            problems["rep form"] = accessibility_violations(page)
        assert problems == {}, "\n".join(f"{path}: {found}" for path, found in problems.items())
    finally:
        page.close()
