"""The whole loop through the public contract: API, tick, RQ workers, SMTP,
rep links, scorecard. Numbers are checked against values computed here from
the answers the test itself posted."""

import statistics
from datetime import timedelta

from sqlalchemy import func, select

from cadence.models import Delivery, Invitation, Round
from cadence.planner import tick
from surveys.extensions import db
from surveys.models import Answer, Response
from tests.conftest import csrf_token_from, run_worker

from tests.builders.loop import (
    NEW_YORK,
    REPS,
    set_up_org_and_cadence,
    instant,
    first_opening,
    link_path,
    answer_through_link,
)


def test_full_loop_from_api_to_scorecard(app, client, api_token, smtp, redis_conn):
    headers = api_token(roles=("pm", "leader", "admin"))
    cadence = set_up_org_and_cadence(client, headers)
    preview = client.get(f"/api/v1/cadences/{cadence['id']}/preview?count=3", headers=headers)
    assert preview.status_code == 200
    first, second, _ = preview.json["occurrences"]
    opens, closes = instant(first["opens_at"]), instant(first["closes_at"])
    assert opens.astimezone(NEW_YORK).strftime("%d %H:%M") == "01 09:00"

    report = tick(opens + timedelta(minutes=1))
    assert report.opened == [f"Monthly pulse {first['period_key']}"]
    run_worker(app)
    assert smtp.wait_for(len(REPS)) == len(REPS)
    recipients = sorted(m["To"].addresses[0].addr_spec for m in smtp.messages)
    assert recipients == sorted(r[0] for r in REPS)
    for message in smtp.messages:
        assert message.get_body(preferencelist=("html",)) is not None
        assert message["Message-ID"].startswith("<canary.")
    links = {m["To"].addresses[0].addr_spec: link_path(m) for m in smtp.messages}

    posted = {
        "ana.rep@example.com": {"confidence": "5", "recommend": "10", "lost_deal": "no", "gaps": ["sso", "api"], "deals": "3"},
        "ben.rep@example.com": {"confidence": "4", "recommend": "9", "lost_deal": "yes", "lost_to": "globex", "deals": "1", "notes": "Pricing"},
        "cai.rep@example.com": {"confidence": "2", "recommend": "3", "lost_deal": "yes", "lost_to": "acme", "gaps": ["sso"], "deals": "0"},
        "dee.rep@example.com": {"confidence": "3", "recommend": "7", "lost_deal": "no", "deals": "2.5"},
        "eve.rep@example.com": {"confidence": "4", "recommend": "8", "lost_deal": "no", "gaps": ["mobile"], "deals": "4"},
    }
    for email, answers in posted.items():
        response = answer_through_link(client, links[email], answers)
        assert response.status_code == 303, response.text

    # A rep changes an answer before close: only the new value counts.
    response = answer_through_link(client, links["dee.rep@example.com"], {**posted["dee.rep@example.com"], "confidence": "5"})
    assert response.status_code == 303
    posted["dee.rep@example.com"]["confidence"] = "5"
    assert db.session.scalar(select(func.count(Response.id))) == 5
    # Every answer keeps its invitation's slice, for the scorecards (surveys.models.Answer).
    copies = db.session.execute(
        select(Answer.team_id, Answer.region, Answer.segment, Invitation.team_id, Invitation.region, Invitation.segment)
        .join(Response, Response.id == Answer.response_id).join(Invitation, Invitation.id == Response.invitation_id)
    ).all()
    assert copies and all(row[:3] == row[3:] and row[0] is not None for row in copies)

    # Day 3: the reminder goes to the one rep who has not answered.
    smtp.messages.clear()
    report = tick(opens + timedelta(days=2, minutes=1))
    assert report.reminders_enqueued == len(REPS)
    run_worker(app)
    smtp.wait_for(1)
    assert [m["To"].addresses[0].addr_spec for m in smtp.messages] == ["fay.rep@example.com"]
    assert smtp.messages[0]["Subject"].startswith("Reminder:")
    cancelled = db.session.scalar(select(func.count(Delivery.id)).where(Delivery.status == "cancelled"))
    assert cancelled == 5  # the answered reps' reminders were not sent

    # The window ends: the tick closes the round; the link says so.
    report = tick(closes)
    assert report.closed == [f"Monthly pulse {first['period_key']}"]
    closed_page = client.get(links["fay.rep@example.com"])
    assert closed_page.status_code == 200 and "closed on" in closed_page.text
    late = client.post(links["fay.rep@example.com"], data={"confidence": "3"})
    assert late.status_code == 410
    assert db.session.scalar(select(func.count(Response.id))) == 5

    round_id = db.session.scalar(select(Round.id).where(Round.period_key == first["period_key"]))
    rounds = client.get(f"/api/v1/cadences/{cadence['id']}/rounds", headers=headers).json
    assert rounds == [{**rounds[0], "period_key": first["period_key"], "status": "closed", "invited": 6, "responded": 5}]

    card = client.get(f"/api/v1/rounds/{round_id}/scorecard", headers=headers)
    assert card.status_code == 200, card.text
    card = card.json
    assert card["response_rate"]["invited"] == 6 and card["response_rate"]["responded"] == 5
    assert card["previous_round"] is None
    questions = {q["key"]: q for q in card["questions"]}

    confidence = [int(a["confidence"]) for a in posted.values()]
    assert questions["confidence"]["n"] == 5
    assert abs(questions["confidence"]["metrics"]["mean"] - statistics.mean(confidence)) < 0.01
    assert questions["confidence"]["metrics"]["favorable_pct"] == round(100 * sum(c >= 4 for c in confidence) / 5, 1)

    scores = [int(a["recommend"]) for a in posted.values()]
    promoters = sum(s >= 9 for s in scores) / 5
    detractors = sum(s <= 6 for s in scores) / 5
    assert abs(questions["recommend"]["metrics"]["nps"] - 100 * (promoters - detractors)) < 0.05

    assert questions["lost_deal"]["metrics"]["yes_pct"] == 40.0
    assert questions["lost_to"]["n"] == 2
    assert questions["lost_to"]["metrics"]["option_pct"] == {"acme": 50.0, "globex": 50.0}
    assert questions["gaps"]["metrics"]["option_pct"] == {"sso": 66.7, "api": 33.3, "mobile": 33.3}
    deals = [float(a["deals"]) for a in posted.values()]
    assert abs(questions["deals"]["metrics"]["sum"] - sum(deals)) < 1e-9
    assert abs(questions["deals"]["metrics"]["median"] - statistics.median(deals)) < 1e-9
    assert questions["notes"]["metrics"]["count"] == 1

    # A PM closes the loop on the first round ("you said, we did").
    from surveys.org.models import Person
    from surveys.feedback import add_reply

    pm = db.session.scalar(select(Person).where(Person.email.like("api-%")))
    add_reply(db.session.get(Round, round_id), pm, "lost_to", "Globex pricing: we launched a competitive bundle.")
    db.session.commit()

    # The next month: a second round, compared with the first.
    smtp.messages.clear()
    report = tick(instant(second["opens_at"]))
    assert report.opened == [f"Monthly pulse {second['period_key']}"]
    run_worker(app)
    smtp.wait_for(len(REPS) + 1)  # the invitations, and the leaders' digest of the first round
    march_links = {m["To"].addresses[0].addr_spec: link_path(m) for m in smtp.messages if m["X-Canary-Kind"] == "invite"}
    assert len(march_links) == len(REPS)
    march = {email: {"confidence": "1", "recommend": "5", "lost_deal": "no", "deals": "1"} for email in list(march_links)[:3]}
    invite = next(m for m in smtp.messages if m["X-Canary-Kind"] == "invite")
    assert "competitive bundle" in invite.get_body(preferencelist=("plain",)).get_content()
    for email, answers in march.items():
        assert answer_through_link(client, march_links[email], answers).status_code == 303
    thanks = client.get(march_links[list(march)[0]] + "/thanks")
    assert thanks.status_code == 200
    assert f"What we heard last time ({first['period_key']})" in thanks.text
    assert "competitive bundle" in thanks.text and "5 of 6 people answered" in thanks.text
    tick(instant(second["closes_at"]))
    march_id = db.session.scalar(select(Round.id).where(Round.period_key == second["period_key"]))
    card = client.get(f"/api/v1/rounds/{march_id}/scorecard", headers=headers).json
    assert card["previous_round"]["id"] == round_id
    confidence_q = next(q for q in card["questions"] if q["key"] == "confidence")
    assert confidence_q["comparable"] is True
    assert abs(confidence_q["delta"]["mean"] - (1 - statistics.mean(confidence))) < 0.01
    # Five and three respondents: too few to test significance.
    assert confidence_q["significant"]["mean"] is None


def test_tick_twice_and_at_the_same_instant_creates_nothing_twice(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    opens = first_opening(client, headers)
    moment = opens + timedelta(minutes=5)
    first = tick(moment)
    second = tick(moment)
    third = tick(moment + timedelta(minutes=1))
    assert first.opened and not second.opened and not third.opened
    assert second.invites_enqueued == 0 and third.invites_enqueued == 0
    run_worker(app)
    tick(moment)
    run_worker(app)
    smtp.wait_for(len(REPS))
    assert db.session.scalar(select(func.count(Round.id))) == 1
    assert db.session.scalar(select(func.count(Invitation.id))) == len(REPS)
    assert len(smtp.messages) == len(REPS)
    assert db.session.scalar(select(func.count(Delivery.id)).where(Delivery.kind == "invite", Delivery.status == "sent")) == len(REPS)


def test_bad_answers_get_field_errors_keep_input_and_store_nothing(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    tick(first_opening(client, headers) + timedelta(minutes=5))
    run_worker(app)
    smtp.wait_for(len(REPS))
    path = link_path(smtp.messages[0])
    response = answer_through_link(client, path, {"confidence": "9", "recommend": "8", "lost_deal": "no", "deals": "51", "notes": "keep me"})
    assert response.status_code == 422
    assert "Not a valid choice" in response.text  # 9 is off a 1..5 scale
    assert "from 0 to 50" in response.text
    assert "keep me" in response.text  # what the rep typed is kept
    assert 'value="8"' in response.text and "checked" in response.text
    assert db.session.scalar(select(func.count(Answer.id))) == 0
    # A field the form does not have is tampering: rejected, nothing stored.
    page = client.get(path)
    tampered = client.post(path, data={"csrf_token": csrf_token_from(page.text), "confidence": "3", "recommend": "8",
                                       "lost_deal": "no", "deals": "1", "is_admin": "1"})
    assert tampered.status_code == 400
    assert db.session.scalar(select(func.count(Answer.id))) == 0
    # A hidden question's answer is discarded, never stored.
    ok = answer_through_link(client, path, {"confidence": "3", "recommend": "8", "lost_deal": "no", "lost_to": "acme", "deals": "1"})
    assert ok.status_code == 303
    keys = set(db.session.scalars(select(Answer.question_key)))
    assert "lost_to" not in keys and {"confidence", "recommend", "lost_deal", "deals"} <= keys


def test_forged_truncated_and_foreign_links_answer_404(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    tick(first_opening(client, headers) + timedelta(minutes=5))
    run_worker(app)
    smtp.wait_for(len(REPS))
    path = link_path(smtp.messages[0])
    assert client.get(path).status_code == 200
    assert client.get(path[:-3]).status_code == 404
    assert client.get(path + "x").status_code == 404
    assert client.get("/r/not-a-token").status_code == 404
    # A link signed with another key (another installation) is foreign.
    from itsdangerous import URLSafeSerializer

    invitation = db.session.scalar(select(Invitation).limit(1))
    foreign = URLSafeSerializer("another-secret", salt="canary.rep-link.v1").dumps([invitation.id, invitation.nonce])
    assert client.get(f"/r/{foreign}").status_code == 404
    # Revoking (a new nonce) kills the old links.
    invitation.nonce = "revoked-nonce"
    db.session.commit()
    paths = [link_path(m) for m in smtp.messages]
    assert sum(client.get(p).status_code == 404 for p in paths) == 1
