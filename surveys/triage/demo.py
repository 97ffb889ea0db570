"""The demo's triage: product areas owned by the demo PM, the pulse's
"missing capabilities" options mapped to them, a few needs with comments
linked as evidence, and SSO shipped. The demo set is confidential, so its
reps hear about SSO through a "you said, we did" reply on the latest closed
round, never one by one."""

from __future__ import annotations

from sqlalchemy import select

from cadence.models import Round
from surveys.feedback import add_reply
from surveys.extensions import db
from surveys.triage.areas import create_area, map_to_area
from surveys.triage.inbox import InboxFilters, item_by_token, read_inbox
from surveys.triage.needs import announce, change_status, create_need, link_item

AREAS = [("Platform", None), ("Security", "Platform"), ("SSO", "Security"), ("Analytics", None),
         ("Reporting", "Analytics"), ("Mobile", None), ("Integrations", "Platform")]
OPTION_AREAS = {"sso": "SSO", "reporting": "Reporting", "mobile": "Mobile", "integrations": "Integrations",
                "api": "Platform"}
NEEDS = [("SAML SSO for enterprise prospects", "SSO", ("SSO",), 3),
         ("Scheduled CSV exports for finance", "Reporting", ("Reporting", "CSV"), 2),
         ("Mobile app on par with Initech", "Mobile", ("mobile",), 2),
         ("Faster Salesforce sync", "Integrations", ("Salesforce",), 1)]
LINKED_PER_NEED = 4  # the rest stay in the inbox to triage


def seed_triage(question_set, pm, now) -> list[str]:
    made = {}
    for name, parent in AREAS:
        made[name] = create_area(pm, name, made[parent].id if parent else None, [pm.id])
    for option, area in OPTION_AREAS.items():
        map_to_area(pm, made[area], question_set.id, "missing_features", option)
    map_to_area(pm, made["Platform"], question_set.id, "biggest_gap")
    items = read_inbox(InboxFilters(), limit=10_000)["items"]
    linked = 0
    needs = {}
    for name, area, words, importance in NEEDS:
        need = needs[name] = create_need(pm, name, made[area].id, now)
        matching = [item for item in items if any(word.lower() in item["text"].lower() for word in words)]
        for item in matching[:LINKED_PER_NEED]:
            link_item(pm, item_by_token(item["id"]), need, importance, now)
            linked += 1
        items = [item for item in items if item not in matching[:LINKED_PER_NEED]]
    sso = needs[NEEDS[0][0]]
    notices = change_status(pm, sso, "shipped", "SAML single sign-on shipped for every plan this month.", now)
    latest = db.session.scalar(select(Round).where(Round.cadence.has(question_set_id=question_set.id),
                                                   Round.status == "closed").order_by(Round.opens_at.desc()))
    if latest is not None:
        add_reply(latest, pm, "missing_features", "You asked for single sign-on: SAML SSO shipped this month, "
                                                  "for every plan.")
    db.session.commit()
    announce(notices)
    return [f"triage: {len(AREAS)} product areas, {len(NEEDS)} needs, {linked} comments linked, "
            f"{len(items)} left in the inbox; SSO shipped and answered through \u201cyou said, we did\u201d"]
