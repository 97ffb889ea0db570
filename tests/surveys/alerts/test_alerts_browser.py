"""The alerts page in a real browser on a phone: nothing wider than 390 px,
every control labelled, text contrast at least 4.5:1, charts with a text
alternative, and an alert explained with the keyboard-free form."""

from sqlalchemy import select

from surveys.alert_models import Alert
from surveys.extensions import db
from tests.conftest import CONTRAST, SCREENSHOTS, UNLABELLED, signed_in_page
from tests.surveys.alerts.test_alerts_api import _alerts, _watch

def test_the_alerts_page_on_a_phone(app, make_person, browser, live_server, redis_conn):
    make_person(email="pm@example.com", name="Pat PM", roles=("pm",))
    _data, rounds = _alerts()
    _watch(rounds)
    page = signed_in_page(browser, live_server, "pm@example.com", viewport={"width": 390, "height": 844},
                          is_mobile=True, has_touch=True)
    try:
        page.goto(live_server + "/alerts/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate(UNLABELLED) == []
        assert page.evaluate(CONTRAST) == []
        charts = page.locator("svg.alert-chart")
        assert charts.count() == db.session.query(Alert).count()
        assert "baseline" in charts.first.get_attribute("aria-label")
        page.screenshot(path=str(SCREENSHOTS / "alerts-phone.png"), full_page=False)
        first = page.locator("article.alert-card").first
        title = first.locator("h2").inner_text()
        first.get_by_label("Explained").check()
        first.get_by_label("Note (what explains it)").fill("pricing change in October")
        first.get_by_role("button", name="Save").click()
        page.wait_for_load_state()
        assert "Alert marked explained." in page.content()
        assert title not in [h.inner_text() for h in page.locator("article.alert-card h2").all()]
        db.session.expire_all()
        explained = db.session.scalars(select(Alert).where(Alert.state == "explained")).all()
        assert [a.note for a in explained] == ["pricing change in October"]
    finally:
        page.close()
