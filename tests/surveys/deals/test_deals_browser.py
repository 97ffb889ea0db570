"""Every deal page a PM, leader or admin sees, in a real browser at 1366 px
and on a 390 px phone: the deals list (filtered too), the events that could
not be applied, the CSV import and its report, and each moment's scorecard
per deal and revenue-weighted, by quarter, by segment and by product line.
No serious or critical axe-core violation, every control labelled, text at
4.5:1 contrast, and nothing wider than the phone (issue 15)."""

from surveys.deals.currency import deals_without_rate
from tests.builders.deal_scorecards import lost_moment, seed
from tests.builders.deals import DATA, configure, event_body, post_signed
from tests.conftest import CONTRAST, UNLABELLED, accessibility_violations, run_worker, signed_in_page

WIDTHS = ({"viewport": {"width": 1366, "height": 900}}, {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True})


def check(page, where, width):
    assert page.evaluate(UNLABELLED) == [], where
    assert page.evaluate(CONTRAST) == [], where
    assert accessibility_violations(page) == [], where
    if width <= 390:
        assert page.evaluate("document.documentElement.scrollWidth") <= width, where


def test_deal_pages_in_a_browser_at_desktop_and_phone_widths(app, client, clock, make_person, browser, live_server):
    configure(app)
    make_person(email="ana.rep@example.com", name="Ana Rep", roles=("rep",), password=None)
    moment = lost_moment()
    seed(moment, count=40)
    # An event that cannot be applied (its owner is unknown), for the failed events table.
    post_signed(client, event_body("evt_browser_unknown_owner_with_a_long_identifier", owner_email="nobody@example.com"), clock())
    run_worker(app)
    make_person(email="admin@example.com", name="Ada Admin", roles=("admin",))
    make_person(email="leader@example.com", name="Lee Leader", roles=("leader",))
    make_person(email="pm@example.com", name="Pat PM", roles=("pm",))
    scorecards = [f"/deals/moments/{moment.id}/scorecard",
                  f"/deals/moments/{moment.id}/scorecard?period=quarter&by=segment",
                  f"/deals/moments/{moment.id}/scorecard?period=month&by=product"]
    for device in WIDTHS:
        width = device["viewport"]["width"]
        page = signed_in_page(browser, live_server, "admin@example.com", **device)
        try:
            for path in ["/deals/", "/deals/?outcome=lost"] + scorecards:
                response = page.goto(live_server + path)
                assert response.status == 200, path
                check(page, f"{path} at {width}px", width)
            page.goto(live_server + "/deals/")
            assert page.get_by_role("button", name="Replay").count() == 1
            # The import: a file with bad rows (dry run), then a good one.
            page.get_by_label("Closed deals CSV").set_input_files(str(DATA / "closed_deals_bad.csv"))
            page.get_by_role("checkbox", name="Dry run").check()
            page.get_by_role("button", name="Import").click()
            page.wait_for_load_state()
            assert "Dry run report" in page.content()
            check(page, f"import report (bad rows) at {width}px", width)
            page.get_by_label("Closed deals CSV").set_input_files(str(DATA / "closed_deals.csv"))
            page.get_by_role("checkbox", name="Dry run").uncheck()
            page.get_by_role("button", name="Import").click()
            page.wait_for_load_state()
            assert "Import report" in page.content()
            check(page, f"import report at {width}px", width)
            page.get_by_label("Closed deals CSV").set_input_files([])
            page.get_by_role("button", name="Import").click()  # no file: the form's own error
            page.wait_for_load_state()
            check(page, f"import without a file at {width}px", width)
        finally:
            page.close()
        for email in ("leader@example.com", "pm@example.com"):
            page = signed_in_page(browser, live_server, email, **device)
            try:
                for path in ["/deals/"] + scorecards[1:]:
                    assert page.goto(live_server + path).status == 200, path
                    check(page, f"{path} as {email} at {width}px", width)
            finally:
                page.close()


def test_exchange_rates_page_in_a_browser_at_desktop_and_phone_widths(app, client, clock, make_person, browser, live_server):
    """The admin's rates: deals without a rate named, a rate added (and one
    refused with its field errors, the input kept), the CSV import's report
    with its bad lines; the scorecard naming the deals its weighted view
    leaves out. Leaders and PMs may not open it."""
    configure(app)
    make_person(email="ana.rep@example.com", name="Ana Rep", roles=("rep",), password=None)
    for n, code in enumerate(("EUR", "BRL", "BRL")):
        post_signed(client, event_body(f"evt_rate_{n}", id=f"OPP-{n}", currency=code, amount=50_000 + n), clock())
    run_worker(app)
    moment = lost_moment()
    seed(moment, count=20)
    make_person(email="admin@example.com", name="Ada Admin", roles=("admin",))
    make_person(email="leader@example.com", name="Lee Leader", roles=("leader",))
    for device in WIDTHS:
        width = device["viewport"]["width"]
        page = signed_in_page(browser, live_server, "admin@example.com", **device)
        try:
            assert page.goto(live_server + "/deals/rates").status == 200
            assert "2 deals in BRL" in page.content() and "1 deal in EUR" in page.content()
            check(page, f"rates at {width}px", width)
            page.get_by_label("Currency").fill("EURO")
            page.get_by_label("Rate", exact=True).fill("-2")
            page.get_by_label("Effective from").fill("2026-02-30")
            page.get_by_role("button", name="Save rate").click()
            page.wait_for_load_state()
            errors = page.locator(".field-errors").all_inner_texts()
            assert len(errors) == 3 and "Unknown currency 'EURO'" in errors[0], errors
            assert page.get_by_label("Currency").input_value() == "EURO"  # the input is kept
            check(page, f"rate refused at {width}px", width)
            page.get_by_label("Currency").fill("EUR")
            page.get_by_label("Rate", exact=True).fill("1.1")
            page.get_by_label("Effective from").fill("2026-01-01")
            page.get_by_role("button", name="Save rate").click()
            page.wait_for_load_state()
            assert "EUR from 2026-01-01: 1.1 USD" in page.content()
            check(page, f"rate saved at {width}px", width)
            page.get_by_label("Exchange rates CSV").set_input_files(str(DATA / "exchange_rates_bad.csv"))
            page.get_by_role("button", name="Import").click()
            page.wait_for_load_state()
            assert "Nothing imported: 6 bad rows of 7" in page.content()
            assert page.locator(".bad-rows tbody tr").count() == 6
            check(page, f"rates import report at {width}px", width)
            assert page.goto(live_server + f"/deals/moments/{moment.id}/scorecard").status == 200
            check(page, f"scorecard at {width}px", width)
        finally:
            page.close()
        page = signed_in_page(browser, live_server, "leader@example.com", **device)
        try:
            assert page.goto(live_server + "/deals/rates").status == 403
        finally:
            page.close()
    run_worker(app)  # the reconversion the saved rate queued
    assert deals_without_rate() == [("BRL", 2)]
