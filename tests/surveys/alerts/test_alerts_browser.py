"""The alerts page in a real browser on a phone: nothing wider than 390 px,
every control labelled, text contrast at least 4.5:1, charts with a text
alternative, and an alert explained with the keyboard-free form."""

from sqlalchemy import select

from surveys.alert_models import Alert
from surveys.extensions import db
from tests.conftest import SCREENSHOTS
from tests.surveys.alerts.test_alerts_api import _alerts, _watch

PASSWORD = "correct horse battery"

CONTRAST = """
() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const worst = [];
  for (const el of document.querySelectorAll('main *')) {
    if (!el.childNodes.length || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    if (el.closest('svg')) continue;
    const a = lum(getComputedStyle(el).color), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) worst.push(el.tagName + ' ' + el.textContent.trim().slice(0, 40) + ' ' + ratio.toFixed(2));
  }
  return worst;
}
"""

UNLABELLED = """
() => [...document.querySelectorAll('main input:not([type=hidden]), main textarea, main select')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.outerHTML)
"""


def test_the_alerts_page_on_a_phone(app, make_person, browser, live_server, redis_conn):
    make_person(email="pm@example.com", name="Pat PM", roles=("pm",))
    _data, rounds = _alerts()
    _watch(rounds)
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.set_default_timeout(5000)
    try:
        page.goto(live_server + "/sign-in")
        page.get_by_label("Email").fill("pm@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
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
