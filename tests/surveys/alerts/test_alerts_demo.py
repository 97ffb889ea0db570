"""The demo plants a shift (win confidence in EMEA sliding over the last
three months) so that a newcomer sees an alert on first run, at the top of
the alerts page."""

from sqlalchemy import select

from cadence.clock import utcnow
from surveys.alert_models import Alert
from surveys.alerts import list_alerts
from surveys.demo import SLIDE_REGION, seed_demo
from surveys.extensions import db


def test_the_demo_history_raises_the_planted_alert_first(app):
    lines = seed_demo(utcnow())
    assert any("alerts:" in line for line in lines)
    planted = db.session.scalars(select(Alert).where(
        Alert.slice_kind == "region", Alert.slice_name == SLIDE_REGION, Alert.question_key == "win_confidence",
        Alert.metric == "mean", Alert.direction == "down")).all()
    assert len(planted) == 1 and planted[0].severity == "high"
    assert list_alerts(state="open")[0].id == planted[0].id
