"""Keyboard triage in a real browser: ten comments triaged with j/k, the
suggestion digits and d, on a 390 px phone-sized page whose controls are all
labelled and whose text keeps a 4.5:1 contrast; the needs, need and areas
pages on the same phone."""

from sqlalchemy import select

from surveys.extensions import db
from surveys.triage.inbox import InboxFilters, item_by_token, read_inbox
from surveys.triage.needs import create_need, link_item
from surveys.triage.models import Evidence, Need, TriageItem
from tests.conftest import CONTRAST, UNLABELLED, signed_in_page
from tests.builders.triage import attributed_round

SSO = ["Okta SSO is required by the bank", "They need SAML single sign-on", "No SSO, no deal at Initech",
       "Single sign-on with Azure AD please"]
REPORTS = ["Custom reports for the VP of sales", "Dashboards and reports by region", "Scheduled reports every Monday"]
NOISE = ["Great lunch with the champion", "Customer moved offices", "Call rescheduled to Friday"]


def test_ten_comments_triaged_by_keyboard_on_a_phone(app, make_person, browser, live_server, clock):
    pm = make_person(email="pm@example.com", name="Pat PM", roles=("pm",))
    seeded = [("Seed One", "Banks keep asking for SAML SSO"), ("Seed Two", "Customer wants custom reports")]
    comments = seeded + [(f"Rep {chr(65 + i)}", text) for i, text in enumerate(SSO + REPORTS + NOISE)]
    attributed_round(comments)
    sso = create_need(pm, "SAML SSO", now=clock())
    reports = create_need(pm, "Custom reports", now=clock())
    items = {i["text"]: i["id"] for i in read_inbox(InboxFilters())["items"]}
    link_item(pm, item_by_token(items[seeded[0][1]]), sso, 2, clock())
    link_item(pm, item_by_token(items[seeded[1][1]]), reports, 2, clock())
    db.session.commit()
    wanted = {**{text: sso.id for text in SSO}, **{text: reports.id for text in REPORTS}}
    page = signed_in_page(browser, live_server, "pm@example.com", viewport={"width": 390, "height": 844},
                          is_mobile=True, has_touch=True)
    try:
        page.goto(live_server + "/triage/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate(UNLABELLED) == []
        assert page.evaluate(CONTRAST) == []
        # j and k move the focus between comments.
        first = page.evaluate("document.activeElement.id")
        page.keyboard.press("j")
        assert page.evaluate("document.activeElement.id") != first
        page.keyboard.press("k")
        assert page.evaluate("document.activeElement.id") == first
        for _ in range(10):
            focused = page.locator("[data-triage-item]:focus")
            text = focused.locator("blockquote").inner_text()
            if text in wanted:
                digits = focused.locator("[data-suggestion]")
                values = [digits.nth(i).get_attribute("value") for i in range(digits.count())]
                key = str(values.index(str(wanted[text])) + 1)
            else:
                key = "d"
            with page.expect_navigation():
                page.keyboard.press(key)
            page.wait_for_selector("[data-triage-item]:focus, .empty")
        assert "Nothing to triage here" in page.content()
        # The other triage pages fit a phone too, every control labelled, text readable.
        for path in ("/triage/needs", f"/triage/needs/{sso.id}", "/triage/areas"):
            page.goto(live_server + path)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
            assert page.evaluate(UNLABELLED) == [], path
            assert page.evaluate(CONTRAST) == [], path
    finally:
        page.close()
    db.session.expire_all()
    linked = dict(db.session.execute(select(Evidence.text, Evidence.need_id)).all())
    assert {text: need for text, need in linked.items() if text in wanted} == wanted
    assert db.session.scalars(select(TriageItem.state).where(TriageItem.state == "dismissed")).all() == ["dismissed"] * 3
    assert db.session.scalar(select(Need.id).where(Need.name == "SAML SSO")) == sso.id
