"""Storing a rep's answers (surveys.answers.store_response): once per
invitation, replaced whole on change, with the invitation's slice copied."""

from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import select

from cadence.models import Invitation
from surveys.answers import store_response
from surveys.extensions import db
from surveys.models import Answer, Response
from tests.builders.scorecards import FIRST_OPEN, ScorecardData


def test_a_racing_first_submission_replaces_the_answer_instead_of_adding_one(app):
    data = ScorecardData()
    version = data.version([{"key": "score", "type": "scale"}, {"key": "why", "type": "text", "required": False}])
    round_ = data.round("2026-01", version, 0, status="open")
    invitation = data.invite(round_, data.person(team="Sales / EMEA", region="EMEA", segment="SMB"))
    data.commit()
    # What a second request read before the first one committed: no answer yet.
    twin_read = SimpleNamespace(id=invitation.id, round_id=round_.id, team_id=invitation.team_id,
                                region="EMEA", segment="SMB", responded_at=None)
    first_at = FIRST_OPEN + timedelta(hours=1)
    first_id = store_response(invitation, version, {"score": 2, "why": "Price"}, first_at)
    second_id = store_response(twin_read, version, {"score": 5}, first_at + timedelta(seconds=1))

    assert second_id == first_id
    responses = db.session.scalars(select(Response).where(Response.invitation_id == invitation.id)).all()
    assert len(responses) == 1 and responses[0].updated_at == first_at + timedelta(seconds=1)
    answers = db.session.execute(select(Answer.question_key, Answer.value_num, Answer.team_id, Answer.region,
                                        Answer.segment)).all()
    assert answers == [("score", 5.0, invitation.team_id, "EMEA", "SMB")]
    assert db.session.get(Invitation, invitation.id).responded_at == first_at  # the first answer's time stays
