"""Where alerts go after a round close: one email per person (the set's owner
and the leaders who follow the cadence) and one post per webhook of the set,
each recorded as an `AlertNotification` (claimed once, so a re-run of the
round-closed job sends nothing twice) and sent by an RQ job with Retry.

Who follows a cadence: Canary has no per-cadence "follow" yet, so every
active leader follows every cadence (the same people the digest goes to).
The owner is the set's `owner_id` (its creator unless changed); an owner who
is inactive gets nothing.

Every number in a message comes from an alert, and alerts exist only for
published slices (see `surveys.alerts`): nothing withheld can be mailed or posted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from email.message import EmailMessage
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from cadence import dispatch, mail
from cadence.clock import isoformat_z, utcnow
from cadence.mail import mail_backend
from cadence.models import Round
from surveys.org.models import Person, PersonRole
from surveys.alert_chart import chart_svg
from surveys.alert_models import Alert, AlertNotification, AlertWebhook
from surveys.alerts import METRIC_LABELS, alert_dict, chart_history, published, watch_round
from surveys import payloads
from surveys.extensions import db
from surveys.models import QuestionSet

WEBHOOK_FORMATS = ("json", "slack", "teams")
WEBHOOK_TIMEOUT = 10.0
SIGNATURE_HEADER = "Canary-Signature"


class WebhookFailed(Exception):
    pass


def watch_and_notify(round_: Round) -> dict:
    """Watch the closed round, then plan and enqueue its notifications (after commit)."""
    watch_round(round_)
    planned = plan_notifications(round_)
    for notification_id in planned:
        dispatch.alert_notification(notification_id)
    return {"notifications": len(planned)}


def recipients(question_set: QuestionSet) -> list[Person]:
    """The owner and every active leader, each once."""
    people = db.session.scalars(
        select(Person)
        .join(PersonRole, and_(PersonRole.person_id == Person.id, PersonRole.role == "leader"))
        .where(Person.active.is_(True))
    ).all()
    owner = db.session.get(Person, question_set.owner_id) if question_set.owner_id else None
    if owner is not None and owner.active:
        people.append(owner)
    return sorted({p.id: p for p in people}.values(), key=lambda p: p.id)


def plan_notifications(round_: Round) -> list[int]:
    """Record one notification per person and per webhook for the round's
    alerts; returns the ids still to send (new or pending)."""
    alerts = db.session.scalars(select(Alert).where(Alert.round_id == round_.id).order_by(Alert.id)).all()
    if not alerts:
        return []
    alert_ids = [a.id for a in alerts]
    question_set = db.session.get(QuestionSet, alerts[0].question_set_id)
    targets = [("email", str(p.id)) for p in recipients(question_set)]
    webhooks = db.session.scalars(
        select(AlertWebhook).where(AlertWebhook.question_set_id == question_set.id, AlertWebhook.active.is_(True))
    ).all()
    targets += [("webhook", str(w.id)) for w in webhooks]
    for channel, target in targets:
        db.session.add(AlertNotification(round_id=round_.id, channel=channel, target=target, alert_ids=alert_ids))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    return list(db.session.scalars(
        select(AlertNotification.id).where(AlertNotification.round_id == round_.id,
                                           AlertNotification.status == "pending")
    ))


def send_notification(notification_id: int) -> str:
    """Send one notification unless it was sent already. A failure is
    recorded and raised (RQ retries it); after the last try it is marked failed."""
    notification = db.session.get(AlertNotification, notification_id)
    if notification is None or notification.status == "sent":
        return "already"
    alerts = db.session.scalars(select(Alert).where(Alert.id.in_(notification.alert_ids)).order_by(Alert.id)).all()
    round_ = db.session.get(Round, notification.round_id)
    db.session.execute(update(AlertNotification).where(AlertNotification.id == notification_id)
                       .values(attempts=AlertNotification.attempts + 1))
    db.session.commit()
    try:
        if notification.channel == "email":
            person = db.session.get(Person, int(notification.target))
            with mail_backend() as backend:
                backend.send(compose_email(person, round_, alerts))
        else:
            webhook = db.session.get(AlertWebhook, int(notification.target))
            post_webhook(webhook, round_, alerts)
    except Exception as error:
        db.session.rollback()
        from rq import get_current_job

        job = get_current_job()
        final = job is None or not job.retries_left
        db.session.execute(update(AlertNotification).where(AlertNotification.id == notification_id)
                           .values(last_error=str(error)[:500], status="failed" if final else "pending"))
        db.session.commit()
        raise
    db.session.execute(update(AlertNotification).where(AlertNotification.id == notification_id)
                       .values(status="sent", sent_at=utcnow(), last_error=""))
    db.session.commit()
    return "sent"


# -- Messages ----------------------------------------------------------------------------


def alert_title(alert: Alert) -> str:
    metric = METRIC_LABELS.get(alert.metric, alert.metric)
    if alert.option:
        metric = f"share choosing {alert.option}"
    where = "everyone" if alert.slice_kind == "overall" else f"{alert.slice_kind} {alert.slice_name}"
    return f"{alert.question_key}: {metric} went {alert.direction} ({where})"


def scorecard_link(alert: Alert) -> str:
    base = current_app.config["BASE_URL"].rstrip("/")
    link = f"{base}/scorecards/rounds/{alert.round_id}"
    if alert.slice_kind != "overall":
        return f"{link}?slice={alert.slice_kind}#heatmap"  # the slice's row of the heatmap
    return f"{link}#q-{alert.question_key}"


def message_items(alerts) -> list[dict]:
    return [{"alert": a, "data": alert_dict(a), "title": alert_title(a), "link": scorecard_link(a),
             "chart": chart_svg(chart_history(a), alert_title(a))} for a in published(alerts)]


def compose_email(person: Person, round_: Round, alerts) -> EmailMessage:
    cadence = round_.cadence
    items = message_items(alerts)
    return mail.compose(to=(person.name, person.email),
                        subject=f"Canary: {len(items)} alert{'s' if len(items) != 1 else ''} in {cadence.name} {round_.period_key}",
                        kind="alerts", key=f"alerts.{round_.id}.{person.id}", template="email/alerts",
                        person=person, round=round_, cadence=cadence, items=items,
                        alerts_link=current_app.config["BASE_URL"].rstrip("/") + "/alerts")


def webhook_payload(webhook_format: str, round_: Round, alerts) -> dict:
    """The body for a webhook: Canary's JSON, a Slack incoming-webhook message
    (text fallback plus Block Kit sections) or a Teams incoming-webhook
    message (an Adaptive Card attachment)."""
    items = message_items(alerts)
    headline = f"Canary: {len(items)} alert{'s' if len(items) != 1 else ''} in {round_.cadence.name} {round_.period_key}"
    lines = [_line(item) for item in items]
    if webhook_format == "slack":
        blocks = [{"type": "header", "text": {"type": "plain_text", "text": headline[:150]}}]
        blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(line)[:2900]}} for line in lines]
        return {"text": headline, "blocks": blocks[:50]}
    if webhook_format == "teams":
        body = [{"type": "TextBlock", "text": headline, "weight": "Bolder", "size": "Medium", "wrap": True}]
        body += [{"type": "TextBlock", "text": line, "wrap": True} for line in lines]
        return {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
            "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                        "version": "1.2", "body": body},
        }]}
    return {"event": "alerts.raised", "round": {"id": round_.id, "period_key": round_.period_key,
                                                 "cadence_id": round_.cadence_id},
            "alerts": [{**item["data"], "link": item["link"]} for item in items]}


def _line(item) -> str:
    data = item["data"]
    low, high = data["limits"]
    ci = data["ci95"]
    interval = f", 95 % interval {ci[0]} to {ci[1]}" if ci else ""
    return (f"{item['title']}: {data['value']} (n = {data['n']}{interval}); baseline {data['baseline']}, "
            f"limits {low} to {high}. {item['link']}")


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, the scheme docs/api.md uses for deal events."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post_webhook(webhook: AlertWebhook, round_: Round, alerts) -> None:
    body = json.dumps(webhook_payload(webhook.format, round_, alerts), separators=(",", ":")).encode()
    request = urllib.request.Request(webhook.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "Canary-Alerts",
        SIGNATURE_HEADER: sign(webhook.secret, int(utcnow().timestamp()), body),
    })
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise WebhookFailed(f"webhook {webhook.id} answered {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise WebhookFailed(f"webhook {webhook.id} unreachable: {error}") from None
    if not 200 <= status < 300:
        raise WebhookFailed(f"webhook {webhook.id} answered {status}")


class WebhookInvalid(ValueError):
    def __init__(self, errors: dict):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


payloads.declare("AlertWebhookInput", {
    "type": "object", "required": ["url", "secret"],
    "properties": {"url": {"type": "string", "format": "uri", "maxLength": 2000, "description": "An http(s) address."},
                   "format": {"type": "string", "enum": list(WEBHOOK_FORMATS), "default": "json"},
                   "secret": {"type": "string", "minLength": 16, "maxLength": 200}},
}, sentences=True)
payloads.declare("QuestionSetOwner", {
    "type": "object", "required": ["email"], "additionalProperties": False,
    "properties": {"email": {"type": "string", "maxLength": 320, "description": "An active person with the pm role."}},
}, sentences=True)


def add_webhook(question_set: QuestionSet, url, webhook_format, secret) -> AlertWebhook:
    """A new webhook for the set (the caller commits). Raises WebhookInvalid with field errors."""
    errors = payloads.shape_errors("AlertWebhookInput", {"url": url, "format": webhook_format, "secret": secret})
    if "url" not in errors and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname):
        errors["url"] = "Give an http(s) address."
    if errors:
        raise WebhookInvalid(errors)
    webhook = AlertWebhook(question_set_id=question_set.id, url=url, format=webhook_format, secret=secret)
    db.session.add(webhook)
    db.session.flush()
    return webhook


def webhooks_of(question_set: QuestionSet) -> list[AlertWebhook]:
    return db.session.scalars(
        select(AlertWebhook).where(AlertWebhook.question_set_id == question_set.id).order_by(AlertWebhook.id)).all()


def webhook_dict(webhook: AlertWebhook) -> dict:
    return {"id": webhook.id, "question_set_id": webhook.question_set_id, "url": webhook.url, "format": webhook.format,
            "active": webhook.active, "created_at": isoformat_z(webhook.created_at)}


def set_owner(question_set: QuestionSet, email: str) -> int | None:
    """Name an active PM as the set's owner (a QuestionSetOwner's email; the
    caller commits); returns the previous owner's id."""
    person = db.session.scalar(select(Person).where(Person.email == email.strip().lower())) if email.strip() else None
    if person is None or not person.active or not person.has_role("pm"):
        raise WebhookInvalid({"email": "Name an active person with the pm role."})
    before = question_set.owner_id
    question_set.owner_id = person.id
    return before


def _person_dict(person):
    return None if person is None else {"id": person.id, "email": person.email, "name": person.name}


def routing_dict(question_set: QuestionSet) -> dict:
    owner = db.session.get(Person, question_set.owner_id) if question_set.owner_id else None
    return {"question_set_id": question_set.id, "owner": _person_dict(owner),
            "recipients": [_person_dict(p) for p in recipients(question_set)],
            "webhooks": [webhook_dict(w) for w in webhooks_of(question_set)]}


def failed_notifications(limit: int = 50) -> list[AlertNotification]:
    return db.session.scalars(
        select(AlertNotification).where(AlertNotification.status == "failed")
        .order_by(AlertNotification.id.desc()).limit(limit)
    ).all()
