"""Staff pages for deals: the list, the CSV import form with its report, the
replay button, and a moment's scorecard page and CSV (issue 15)."""

import csv
import io

from sqlalchemy import func, select

from surveys.deals.models import Deal, DealEvent
from surveys.extensions import db
from tests.conftest import csrf_token_from, run_worker
from tests.builders.deals import DATA, configure, event_body, post_signed
from tests.builders.deal_scorecards import lost_moment, seed


def test_the_scorecard_page_shows_both_views_and_the_calibration_table(app, signed_in_client):
    moment = lost_moment()
    made = seed(moment, count=40)
    client = signed_in_client(roles=("leader",))
    page = client.get(f"/deals/moments/{moment.id}/scorecard?period=quarter&by=segment")
    assert page.status_code == 200
    for text in ("Per deal", "Revenue-weighted", "CRM loss reason against the rep", "effective n", "Enterprise", "missing feature"):
        assert text in page.text, text
    exported = client.get(f"/deals/moments/{moment.id}/scorecard.csv?period=month")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert exported.status_code == 200 and rows and {r["period"][:4] for r in rows} <= {"2026", "2027"}
    assert sum(1 for r in rows if r["question"] == "loss_reason" and r["option"] == "price" and r["slice"] == "") == len(
        {f"{d['close_date'].year}-{d['close_date'].month:02d}" for d in made})
    assert client.get(f"/deals/moments/{moment.id}/scorecard?period=fortnight").status_code == 400


def test_reps_never_see_deal_pages(app, signed_in_client, make_person):
    moment = lost_moment()
    client = signed_in_client(roles=("rep", "pm"), email="pm.rep@example.com")
    assert client.get("/deals/").status_code == 200
    rep_only = app.test_client()
    assert rep_only.get("/deals/").status_code in (302, 401, 403)
    assert rep_only.get(f"/deals/moments/{moment.id}/scorecard").status_code in (302, 401, 403)


def test_an_admin_imports_a_csv_and_replays_a_failed_event_from_the_page(app, signed_in_client, make_person, clock):
    configure(app)
    make_person(email="ana.rep@example.com", name="Ana Rep", roles=("rep",), password=None)
    client = signed_in_client(roles=("admin",), email="admin@example.com")
    page = client.get("/deals/")
    token = csrf_token_from(page.text)
    bad = client.post("/deals/import", data={"csrf_token": token, "file": (io.BytesIO((DATA / "closed_deals_bad.csv").read_bytes()), "bad.csv")},
                      content_type="multipart/form-data")
    assert bad.status_code == 200 and "nothing imported: 3 bad rows of 4" in bad.text.replace("Nothing", "nothing")
    assert "ghost@example.com" in bad.text
    good = client.post("/deals/import", data={"csrf_token": token, "file": (io.BytesIO((DATA / "closed_deals.csv").read_bytes()), "deals.csv")},
                       content_type="multipart/form-data")
    assert good.status_code == 200 and db.session.scalar(select(func.count()).select_from(Deal)) == 3
    post_signed(app.test_client(), event_body("evt_page", owner_email="late@example.com"), clock())
    run_worker(app)
    listing = client.get("/deals/")
    assert "unknown owner email" in listing.text
    event = db.session.scalar(select(DealEvent).where(DealEvent.event_id == "evt_page"))
    make_person(email="late@example.com", name="Late Rep", roles=("rep",), password=None)
    replayed = client.post(f"/deals/events/{event.id}/replay", data={"csrf_token": csrf_token_from(listing.text)})
    assert replayed.status_code == 302
    run_worker(app)
    db.session.expire_all()
    assert db.session.get(DealEvent, event.id).status == "processed"
