"""Telling reps that a need they raised is planned or shipped: one message
per rep per status, only for evidence from attributed sets (a confidential
comment records no writer, so it can reach nobody personally; its set's
audience hears through "you said, we did")."""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy import update

from cadence import mail
from cadence.mail import mail_backend
from surveys.org.models import Person
from surveys.audit import record
from surveys.extensions import db
from surveys.triage.models import STATUS_LABELS, Need, NeedNotice


def compose(notice: NeedNotice, need: Need, person: Person, quoted: list[str]) -> EmailMessage:
    verb = "is planned" if notice.status == "planned" else "has shipped"
    return mail.compose(to=(person.name, person.email), subject=f"You told us, it {verb}: {need.name}",
                        kind="need", key=f"need.{need.id}.{notice.status}.{person.id}",
                        template="email/need_notice", person=person, need=need, verb=verb,
                        status_label=STATUS_LABELS[notice.status], quoted=quoted[:3])


def send_notices(notice_ids: list[int], now) -> dict:
    """Send each pending notice once; a failure is recorded and raised so RQ retries."""
    sent = skipped = 0
    for notice_id in notice_ids:
        notice = db.session.get(NeedNotice, notice_id)
        if notice is None or notice.state == "sent":
            skipped += 1
            continue
        need = db.session.get(Need, notice.need_id)
        person = db.session.get(Person, notice.person_id)
        quoted = [e.text for e in need.evidence
                  if e.person_id == person.id and not e.confidential and e.kind == "comment"]
        db.session.execute(update(NeedNotice).where(NeedNotice.id == notice_id)
                           .values(attempts=NeedNotice.attempts + 1))
        db.session.commit()
        try:
            with mail_backend() as backend:
                backend.send(compose(notice, need, person, quoted))
        except Exception as error:
            db.session.rollback()
            db.session.execute(update(NeedNotice).where(NeedNotice.id == notice_id)
                               .values(last_error=str(error)[:500]))
            db.session.commit()
            raise
        notice = db.session.get(NeedNotice, notice_id)
        notice.state, notice.sent_at, notice.last_error = "sent", now, ""
        record(None, "need.rep_notified", need, {"notice_id": notice.id, "person_id": person.id,
                                                 "status": notice.status})
        db.session.commit()
        sent += 1
    return {"sent": sent, "skipped": skipped}



