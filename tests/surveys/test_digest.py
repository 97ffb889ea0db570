"""The leaders' digest when a round closes: finalized scorecard, one message
per active leader, once, with confidentiality respected."""

from sqlalchemy import func, select

from surveys.org.models import Person
from surveys.digest import on_round_closed
from surveys.extensions import db
from surveys.feedback import add_reply
from surveys.snapshots import DigestReceipt, ScorecardSnapshot
from tests.conftest import run_worker
from tests.builders.scorecards import ScorecardData

QUESTIONS = [
    {"key": "score", "type": "scale"},
    {"key": "lost_to", "type": "single_choice",
     "settings": {"options": [{"key": "acme", "label": "Acme"}, {"key": "globex", "label": "Globex"},
                              {"key": "initech", "label": "Initech"}, {"key": "umbrella", "label": "Umbrella"}]}},
    {"key": "secret", "type": "yes_no", "required": False},
    {"key": "why", "type": "text", "required": False},
]


def closed_rounds(make_person):
    data = ScorecardData(confidentiality="confidential", min_group_size=5)
    version = data.version(QUESTIONS)
    january = data.round("2026-01", version, 0)
    february = data.round("2026-02", version, 1)
    for round_, score, choices in ((january, 2, ["acme"] * 20 + ["globex"] * 10),
                                   (february, 5, ["globex"] * 22 + ["acme"] * 5 + ["initech"] * 3)):
        for index, choice in enumerate(choices):
            answers = {"score": score if index % 3 else score - 1, "lost_to": choice,
                       "why": "=HYPERLINK(\"http://evil\") Jane said so"}
            if index < 3:
                answers["secret"] = True  # only three answered: withheld everywhere
            data.respond(round_, data.person(region="EMEA"), answers)
    data.commit()
    leaders = [make_person(email="lee@example.com", name="Lee Leader", roles=("leader",)),
               make_person(email="lou@example.com", name="Lou Leader", roles=("leader", "pm"))]
    make_person(email="gone@example.com", name="Gone Leader", roles=("leader",), active=False)
    make_person(email="pat@example.com", name="Pat PM", roles=("pm",))
    return february, leaders


def test_digest_goes_to_active_leaders_once_with_the_headline(app, make_person, smtp):
    february, leaders = closed_rounds(make_person)
    add_reply(february, leaders[1], "lost_to", "We are building a Globex migration guide.")
    db.session.commit()
    assert on_round_closed(february.id) == {"sent": 2, "already": 0}
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp.messages) == ["lee@example.com", "lou@example.com"]
    message = smtp.messages[0]
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "2026-02 has closed" in text and "30 of 30 answered (100.0 %)" in text
    assert "Top movers since 2026-01" in text and "(significant)" in text
    assert "Biggest choice shifts" in text and "Globex: 73.3 %, +40.0 pts" in text
    shifts = text.replace("\r\n", "\n").split("Biggest choice shifts:\n", 1)[1].split("\n\n", 1)[0]
    assert len(shifts.splitlines()) == 3  # the three biggest shifts
    assert "http://canary.test/scorecards/rounds/%d" % february.id in text and "http://canary.test/scorecards/rounds" in html
    assert "We are building a Globex migration guide." in text
    # Confidential: the withheld question never appears; no comment is quoted.
    assert "Secret" not in text and "HYPERLINK" not in text and "HYPERLINK" not in html
    assert "1 question withheld" in text
    snapshot = db.session.scalar(select(ScorecardSnapshot).where(ScorecardSnapshot.round_id == february.id))
    assert snapshot is not None and snapshot.overall["round"]["id"] == february.id

    # A re-run (a retried job) sends nothing twice.
    assert on_round_closed(february.id) == {"sent": 0, "already": 2}
    assert len(smtp.messages) == 2
    assert db.session.scalar(select(func.count(DigestReceipt.id)).where(DigestReceipt.sent_at.is_not(None))) == 2


def test_a_failed_send_releases_the_claim_for_the_retry(app, make_person, smtp):
    february, _leaders = closed_rounds(make_person)
    smtp.refuse_addresses = {"lou@example.com"}
    try:
        on_round_closed(february.id)
    except Exception as error:  # the job raises so RQ retries it
        assert "550" in str(error)
    else:
        raise AssertionError("a refused address must fail the job")
    smtp.refuse_addresses = set()
    assert on_round_closed(february.id) == {"sent": 1, "already": 1}
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp.messages) == ["lee@example.com", "lou@example.com"]


def test_the_round_closed_job_runs_on_the_rollups_queue(app, make_person, smtp, redis_conn):
    from cadence.jobs import round_closed
    from cadence.queues import get_queue

    february, _leaders = closed_rounds(make_person)
    get_queue("rollups").enqueue(round_closed, february.id)
    run_worker(app, ["rollups"])
    assert smtp.wait_for(2) == 2


def test_nothing_happens_for_an_open_round(app, make_person, smtp):
    february, _leaders = closed_rounds(make_person)
    february.status = "open"
    db.session.commit()
    assert on_round_closed(february.id) == {"sent": 0, "already": 0}
    assert smtp.messages == [] and db.session.scalar(select(func.count(ScorecardSnapshot.id))) == 0
    assert db.session.get(Person, 1) is not None
