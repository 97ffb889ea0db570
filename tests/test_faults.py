"""Faults with real processes: a worker SIGKILLed mid-delivery."""

import signal
import subprocess
import sys
import time
from datetime import timedelta

import psutil
import pytest
from sqlalchemy import func, select

from cadence.clock import utcnow
from cadence.models import Delivery, Invitation
from cadence.planner import REQUEUE_QUEUED_AFTER, REQUEUE_SENDING_AFTER, tick
from surveys.extensions import db
from tests.conftest import ROOT
from tests.builders.loop import QUESTIONS, instant
from tests.test_processes import flask, flask_env

pytestmark = pytest.mark.slow

PEOPLE = 1000


# The worker in another process stamps the batch it claims with the system
# clock, so the test's "later" must be later than that clock too: on the
# suite's fixed clock it was not, whenever the suite ran within minutes after
# TEST_NOW's time of day.
@pytest.mark.system_clock
def test_worker_killed_mid_delivery_of_1000_invitations_loses_none_and_duplicates_at_most_one(app, client, api_token, smtp, redis_conn):
    headers = api_token()
    people = [{"email": f"rep{i:04d}@example.com", "name": f"Rep {i}", "roles": ["rep"], "team": "Sales / Field",
               "timezone": "UTC"} for i in range(PEOPLE)]
    assert client.post("/api/v1/people", json=people, headers=headers).status_code == 200
    set_id = client.post("/api/v1/question-sets", json={"name": "Pulse", "questions": QUESTIONS}, headers=headers).json["id"]
    client.post(f"/api/v1/question-sets/{set_id}/publish", headers=headers)
    cadence = client.post("/api/v1/cadences", headers=headers, json={
        "name": "Pulse", "question_set_id": set_id, "rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "timezone": "UTC"}).json
    opens = instant(client.get(f"/api/v1/cadences/{cadence['id']}/preview?count=1", headers=headers).json["occurrences"][0]["opens_at"])
    assert tick(opens).invites_enqueued == PEOPLE

    # A forking worker, slowed to 250 messages a second so the kill lands mid-batch.
    env = flask_env(app, MAIL_RATE_PER_SECOND="250")
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(smtp.messages) < 250:
            assert time.monotonic() < deadline, "the worker did not start delivering"
            time.sleep(0.01)
        # Kill the worker and its work-horse child (which would otherwise finish the job).
        family = [psutil.Process(worker.pid)] + psutil.Process(worker.pid).children(recursive=True)
        for process in family:
            process.send_signal(signal.SIGKILL)
        psutil.wait_procs(family, timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    delivered_before_restart = len(smtp.messages)
    assert delivered_before_restart < PEOPLE
    db.session.expire_all()
    stuck = dict(db.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
    assert stuck.get("sending", 0) >= 1  # the killed batch is left claimed

    # Later, the tick finds what is owed: queued work Redis may have lost and
    # the claimed batch its worker abandoned. A new worker delivers it all.
    later = max(opens, utcnow()) + max(REQUEUE_QUEUED_AFTER, REQUEUE_SENDING_AFTER) + timedelta(minutes=1)
    report = tick(later)
    assert report.requeued == PEOPLE - stuck.get("sent", 0)
    result = flask(flask_env(app), "worker", "--burst")
    assert result.returncode == 0, result.stderr

    smtp.wait_for(PEOPLE)
    recipients = [m["To"].addresses[0].addr_spec for m in smtp.messages]
    assert len(set(recipients)) == PEOPLE  # nobody lost
    assert len(recipients) - PEOPLE <= 1  # at most one duplicate for the one kill
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Delivery.id)).where(Delivery.status == "sent")) == PEOPLE
    assert db.session.scalar(select(func.count(Invitation.id))) == PEOPLE
