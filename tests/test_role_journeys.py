"""Each role's journey through the demo, on a desktop and a 390 px phone, as
the demo's own people: the menu offers what the role may use and nothing
else, every page passes axe-core, nothing scrolls sideways on the phone, and
the pictures are what the README's "Pages by role" section shows
(`make screenshots` saves them to docs/screenshots)."""

import pytest
from sqlalchemy import select

from cadence.links import invitation_token
from cadence.models import Invitation, Round
from surveys.auth.service import hash_password
from surveys.demo import seed_demo
from surveys.extensions import db
from surveys.org.models import Person
from tests.conftest import SCREENSHOTS, STAFF_PASSWORD, accessibility_violations, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}

MENU = ("Question sets", "Cadences", "Triage", "Scorecards", "Alerts", "Deals", "People", "Operations", "Outbox",
        "Audit log")

# role: (a demo person with that role alone, the menu they see, the pages of their journey by name)
JOURNEYS = {
    "leader": ("ava.sato@example.com", {"Scorecards", "Alerts", "Deals"},
               {"home": "/home", "scorecards": "/scorecards/", "alerts": "/alerts/", "deals": "/deals/"}),
    "pm": ("omar.schmidt@example.com", {"Question sets", "Cadences", "Triage", "Scorecards", "Alerts", "Deals"},
           {"home": "/home", "question-sets": "/question-sets/", "cadences": "/cadences/", "triage": "/triage/"}),
    "admin": ("lena.okafor@example.com", {"Question sets", "Cadences", "Triage", "Scorecards", "Alerts", "Deals",
                                          "People", "Operations", "Outbox", "Audit log"},
              {"home": "/home", "people": "/people/", "operations": "/cadences/operations",
               "audit": "/admin/audit/"}),
}


def _latest_scorecard_path() -> str:
    closed = db.session.scalar(select(Round).where(Round.status == "closed").order_by(Round.opens_at.desc()))
    return f"/scorecards/rounds/{closed.id}?slice=team"


def _check(page, size) -> list[str]:
    found = accessibility_violations(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    if size == "phone" and width > SIZES["phone"]["width"]:
        found.append(f"scrolls sideways: {width} px")
    return found


@pytest.mark.parametrize("size", SIZES)
def test_each_roles_journey_passes_axe_and_fits_a_phone(app, browser, live_server, size):
    """One demo for every role (seeding is the slow part), each role in a browser of its own."""
    seed_demo()
    problems = {}
    for role, (email, menu, journey) in JOURNEYS.items():
        problems.update(_staff_journey(browser, live_server, size, role, email, menu, journey))
    problems.update(_rep_journey(browser, live_server, size))
    assert problems == {}, problems


def _staff_journey(browser, live_server, size, role, email, menu, journey) -> dict:
    person = db.session.scalar(select(Person).where(Person.email == email))
    assert person.roles == {role}  # the demo person has this role alone
    person.password_hash = hash_password(STAFF_PASSWORD)
    db.session.commit()
    if role != "admin":
        journey = {**journey, "scorecard": _latest_scorecard_path()}
    page = signed_in_page(browser, live_server, email, viewport=SIZES[size], is_mobile=size == "phone",
                          has_touch=size == "phone")
    page.set_default_timeout(30_000)  # a year of demo history behind some pages
    problems = {}
    try:
        for name, path in journey.items():
            response = page.goto(live_server + path)
            assert response.status == 200, (role, path, response.status)
            if name == "home":
                offered = set(page.locator("header nav a").all_inner_texts())
                assert offered & set(MENU) == menu, (role, offered)
                assert page.locator("h1").inner_text().startswith(f"Hello, {person.name.split()[0]}")
            if found := _check(page, size):
                problems[f"{role} {path}"] = found
            page.screenshot(path=str(SCREENSHOTS / f"role-{role}-{name}-{size}.png"))
    finally:
        page.close()
    return problems


def _rep_journey(browser, live_server, size) -> dict:
    """From the personal link to the thank-you page, with no menu and no sign-in."""
    open_round = db.session.scalar(select(Round).where(Round.status == "open"))
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.round_id == open_round.id, Invitation.responded_at.is_(None)))
    page = browser.new_page(viewport=SIZES[size], is_mobile=size == "phone", has_touch=size == "phone")
    page.set_default_timeout(30_000)
    problems = {}
    try:
        page.goto(f"{live_server}/r/{invitation_token(invitation)}")
        assert page.locator("header nav").count() == 0  # a rep has no menu: the link is the whole journey
        if found := _check(page, size):
            problems["rep form"] = found
        page.screenshot(path=str(SCREENSHOTS / f"role-rep-form-{size}.png"), full_page=True)
        # Answer every required question with its first choice, or a small number.
        for field in page.locator("input[type=radio][required]").all():
            page.locator(f"input[type=radio][name='{field.get_attribute('name')}']").first.check()
        for field in page.locator("input[type=number][required]").all():
            field.fill("1")
        page.locator("form button[type=submit].primary").click()
        page.wait_for_url("**/thanks")
        if found := _check(page, size):
            problems["rep thank-you page"] = found
        page.screenshot(path=str(SCREENSHOTS / f"role-rep-thanks-{size}.png"), full_page=True)
    finally:
        page.close()
    return problems
