"""The demo seeds product areas, needs with evidence and a shipped need whose
reporters were told (the demo set is confidential: through "you said, we
did", never one by one)."""

from sqlalchemy import func, select

from surveys.demo import seed_demo
from surveys.extensions import db
from surveys.feedback import Reply
from surveys.triage.areas import area_rollup, areas_tree
from surveys.triage.inbox import InboxFilters, read_inbox
from surveys.triage.models import Evidence, Need, NeedNotice


def test_the_demo_seeds_areas_needs_and_a_shipped_need_answered_to_its_audience(app, clock):
    lines = seed_demo(clock())
    assert any(line.startswith("triage:") for line in lines)
    paths = [area["path"] for area in areas_tree()]
    assert "Platform / Security / SSO" in paths and "Analytics / Reporting" in paths
    shipped = db.session.scalar(select(Need).where(Need.status == "shipped"))
    assert shipped.name == "SAML SSO for enterprise prospects"
    evidence = db.session.scalars(select(Evidence).where(Evidence.need_id == shipped.id)).all()
    assert evidence and all(e.confidential and e.person_id is None for e in evidence)
    assert db.session.scalar(select(func.count(NeedNotice.id))) == 0
    assert "SAML SSO shipped" in db.session.scalar(select(Reply.body).order_by(Reply.id.desc()))
    assert read_inbox(InboxFilters())["total"] > 0
    rollup = {row["path"]: row["total"] for row in area_rollup()}
    assert rollup["Platform / Security / SSO"] > 0 and rollup["Platform"] >= rollup["Platform / Security / SSO"]
