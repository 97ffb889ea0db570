"""“You said, we did”: replies written on the scorecard page (pm only), shown
to leaders beside the numbers, to reps on the thank-you page and in the next
invitation."""

import pytest
from flask import render_template
from sqlalchemy import func, select

from surveys.extensions import db
from surveys.feedback import Reply, ReplyError, add_reply, replies_for_invitation
from surveys.heard import what_we_heard
from tests.conftest import csrf_token_from
from tests.builders.scorecards import ScorecardData


@pytest.fixture
def rounds(app):
    data = ScorecardData(confidentiality="attributed")
    version = data.version([{"key": "score", "type": "scale"}, {"key": "why", "type": "text", "required": False}])
    january = data.round("2026-01", version, 0)
    february = data.round("2026-02", version, 1, status="open")
    for value in (4, 5, 3):
        data.respond(january, data.person(), {"score": value})
    data.commit()
    return data, january, february


def test_add_reply_validates_and_stores_nothing_on_bad_input(rounds, make_person):
    _data, january, _february = rounds
    pm = make_person(roles=("pm",))
    with pytest.raises(ReplyError) as error:
        add_reply(january, pm, "no_such_question", "   ")
    assert set(error.value.errors) == {"body", "question_key"}
    with pytest.raises(ReplyError) as error:
        add_reply(january, pm, "score", "x" * 2001)
    assert "2,000" in error.value.errors["body"]
    db.session.rollback()
    assert db.session.scalar(select(func.count(Reply.id))) == 0
    reply = add_reply(january, pm, "score", "  We shipped SSO in February.  ")
    db.session.commit()
    assert reply.body == "We shipped SSO in February." and reply.question_key == "score"


def test_reps_see_the_previous_rounds_replies_after_answering_and_in_the_next_invitation(rounds, make_person):
    _data, january, february = rounds
    pm = make_person(roles=("pm",), name="Priya PM")
    add_reply(january, pm, "score", "Confidence dipped; we fixed the demo environment.")
    add_reply(january, pm, None, "Thank you: <b>every</b> answer was read.")
    db.session.commit()
    heard = what_we_heard(february)
    assert heard["period_key"] == "2026-01" and len(heard["items"]) == 1
    assert [(r["question_key"], r["author"]) for r in heard["replies"]] == [("score", "Priya PM"), (None, "Priya PM")]
    assert heard["replies"][0]["prompt"] == "Score?"
    html = render_template("respond/_heard.html", heard=heard)
    assert "You said, we did" in html and "we fixed the demo environment" in html
    assert "&lt;b&gt;every&lt;/b&gt;" in html  # escaped
    replies = replies_for_invitation(february)
    assert [r["body"] for r in replies][0].startswith("Confidence dipped")
    text = render_template("email/_replies.txt", replies=replies)
    assert 'On "Score?": Confidence dipped' in text and "(Priya PM)" in text
    assert "&lt;b&gt;" in render_template("email/_replies.html", replies=replies)
    # The first round has nothing before it.
    assert replies_for_invitation(january) == [] and what_we_heard(january) is None


def test_a_pm_replies_on_the_scorecard_page_and_leaders_read_it(rounds, signed_in_client):
    _data, january, _february = rounds
    pm = signed_in_client(roles=("pm",), email="pm@example.com")
    page = pm.get(f"/scorecards/rounds/{january.id}")
    assert "Reply to this question" in page.text
    token = csrf_token_from(page.text)
    bad = pm.post(f"/scorecards/rounds/{january.id}/replies", data={"csrf_token": token, "question_key": "score", "body": ""})
    assert bad.status_code == 422 and "Write what you heard" in bad.text
    assert db.session.scalar(select(func.count(Reply.id))) == 0
    assert pm.post(f"/scorecards/rounds/{january.id}/replies",
                   data={"question_key": "score", "body": "No token"}).status_code == 400
    done = pm.post(f"/scorecards/rounds/{january.id}/replies",
                   data={"csrf_token": token, "question_key": "score", "body": "Demo env fixed."})
    assert done.status_code == 302 and done.headers["Location"].endswith("#q-score")
    leader = signed_in_client(roles=("leader",), email="leader@example.com")
    page = leader.get(f"/scorecards/rounds/{january.id}")
    assert "Demo env fixed." in page.text and "Reply to this question" not in page.text
    forbidden = leader.post(f"/scorecards/rounds/{january.id}/replies",
                            data={"csrf_token": csrf_token_from(page.text), "question_key": "", "body": "Leaders cannot"})
    assert forbidden.status_code == 403
    reply_id = db.session.scalar(select(Reply.id))
    removed = pm.post(f"/scorecards/rounds/{january.id}/replies/{reply_id}/delete", data={"csrf_token": token})
    assert removed.status_code == 302 and db.session.scalar(select(func.count(Reply.id))) == 0


def test_the_thank_you_page_names_the_most_chosen_option_by_its_label_not_its_key(app, client):
    from cadence.links import invitation_token

    data = ScorecardData(confidentiality="attributed")
    options = [{"key": "globex", "label": "Globex Corp."}, {"key": "initech", "label": "Initech"}]
    areas = [{"key": "reporting", "label": "Dashboards & reports"}, {"key": "sso", "label": "Single sign-on"}]
    version = data.version([
        {"key": "lost_to", "type": "single_choice", "settings": {"options": options}},
        {"key": "gaps", "type": "multi_choice", "settings": {"options": areas}},
    ])
    january = data.round("2026-01", version, 0)
    february = data.round("2026-02", version, 1, status="open")
    for lost_to, gaps in (("globex", ["reporting"]), ("globex", ["reporting", "sso"]), ("initech", ["reporting"])):
        data.respond(january, data.person(), {"lost_to": lost_to, "gaps": gaps})
    answered = data.respond(february, data.person(), {"lost_to": "initech", "gaps": ["sso"]})
    data.commit()
    page = client.get(f"/r/{invitation_token(answered.invitation)}/thanks")
    assert page.status_code == 200
    heard = page.text[page.text.index('id="heard-title"'):]
    assert "most chosen: Globex Corp. (67 %)" in heard
    assert "most chosen: Dashboards &amp; reports (100 %)" in heard
    assert "globex" not in heard and "reporting" not in heard
