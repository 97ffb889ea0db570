"""What each role's home page shows: plain functions over the models, which
`surveys/home.py` renders (and the tests call).

Every number comes through the same gates as the scorecard: a round's counts
through `surveys.disclosure.round_counts` (nothing that moves with answers
while a held round is open, nothing at all for a confidential group under
the minimum), participation by team through the round's publication plan,
what moved from the round's overall card (finalized, or live for an open
round), alerts through `surveys.alerts.published`. Archived cadences and
sets are left out of every list here (`surveys.lifecycle`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from cadence.models import Cadence, Delivery, Invitation, Round
from surveys import alerts
from surveys.disclosure import round_counts
from surveys.extensions import db
from surveys.feedback import Reply
from surveys.formatting import percent
from surveys.lifecycle import archived_filter
from surveys.models import QuestionSet
from surveys.scorecard.assembly import build_scorecard
from surveys.scorecard.participation import LOW_PARTICIPATION_PCT, participation
from surveys.scorecard.overview import round_overview
from surveys.triage.inbox import InboxFilters, read_inbox

HOME_MOVERS = 3
RECENT_REPLIES = timedelta(days=30)
RECENT_REPLIES_SHOWN = 5


def open_rounds() -> list[dict]:
    """Open rounds, soonest to close first, each with its counts as every round list shows them."""
    rows = db.session.execute(
        select(Round, Cadence.name, func.count(Invitation.id), func.count(Invitation.responded_at))
        .join(Cadence, Cadence.id == Round.cadence_id)
        .outerjoin(Invitation, Invitation.round_id == Round.id)
        .where(Round.status == "open", archived_filter(Cadence, False))
        .group_by(Round.id, Cadence.name)
        .order_by(Round.closes_at, Round.id)
    ).all()
    return [{"round": round_, "cadence": name, "counts": round_counts(round_, invited, responded)}
            for round_, name, invited, responded in rows]


def live_counts() -> list[dict]:
    """The open rounds' counts as the home page refreshes them (JSON)."""
    return [{"round_id": row["round"].id, **{key: row["counts"][key] for key in
                                               ("invited", "responded", "rate", "withheld", "held")}}
            for row in open_rounds()]


def team_participation(round_) -> list[dict]:
    """Invited, responded and rate per team, under 60 % flagged `low`: the
    scorecard's participation table, so withheld teams say only that."""
    return participation(round_)["slices"]["team"]


def what_moved() -> list[dict]:
    """Per cadence, its latest closed round's headline sentence (what changed
    since the round before and over the last 6 and 12 rounds) and its largest
    significant changes since the round before."""
    latest = (
        select(Round.cadence_id, func.max(Round.closes_at).label("closes_at"))
        .join(Cadence, Cadence.id == Round.cadence_id)
        .where(Round.status == "closed", archived_filter(Cadence, False))
        .group_by(Round.cadence_id)
        .subquery()
    )
    rounds = db.session.scalars(
        select(Round)
        .join(latest, (latest.c.cadence_id == Round.cadence_id) & (latest.c.closes_at == Round.closes_at))
        .where(Round.status == "closed")
        .order_by(Round.closes_at.desc(), Round.id.desc())
    ).all()
    out = []
    for round_ in rounds:
        card = build_scorecard(round_)
        out.append({"round": round_, "cadence": round_.cadence.name, "previous": card.get("previous_round"),
                    # The scorecard's own sentence: round to round and over 6 and 12 rounds.
                    "headline": round_overview(round_, card)["headline"],
                    "movers": card["top_movers"][:HOME_MOVERS], "rate": card["response_rate"]})
    return out


def recent_replies(now) -> list[dict]:
    """"You said, we did" replies of the last 30 days, newest first."""
    replies = db.session.scalars(
        select(Reply).where(Reply.created_at >= now - RECENT_REPLIES)
        .order_by(Reply.created_at.desc(), Reply.id.desc()).limit(RECENT_REPLIES_SHOWN)
    ).all()
    return [{"reply": reply, "round": reply.round, "cadence": reply.round.cadence.name,
             "author": reply.author.name if reply.author else None} for reply in replies]


def rounds_needing_attention(rows: list[dict], now) -> list[dict]:
    """Open rounds with failed deliveries, or past half their window with a
    response rate under 60 % (a held or withheld round has no rate to judge)."""
    failed = dict(db.session.execute(
        select(Invitation.round_id, func.count(Delivery.id))
        .join(Delivery, Delivery.invitation_id == Invitation.id)
        .where(Delivery.status == "failed", Invitation.round_id.in_([row["round"].id for row in rows]))
        .group_by(Invitation.round_id)
    ).all()) if rows else {}
    out = []
    for row in rows:
        round_, counts = row["round"], row["counts"]
        reasons = []
        if failed.get(round_.id):
            reasons.append(f"{failed[round_.id]} message{'s' if failed[round_.id] != 1 else ''} could not be delivered")
        halfway = round_.opens_at + (round_.closes_at - round_.opens_at) / 2
        if counts["rate"] is not None and counts["rate"] < LOW_PARTICIPATION_PCT and now >= halfway:
            reasons.append(f"{percent(counts['rate'])} answered, past half its window")
        if reasons:
            out.append({**row, "reasons": reasons})
    return out


def owned_sets(person) -> list[dict]:
    """The question sets this PM owns, with their published version and whether a draft waits."""
    sets = db.session.scalars(
        select(QuestionSet).where(QuestionSet.owner_id == person.id, archived_filter(QuestionSet, False))
        .options(selectinload(QuestionSet.versions)).order_by(QuestionSet.name, QuestionSet.id)
    ).all()
    return [{"set": s, "published": s.latest_published, "draft": s.draft is not None} for s in sets]


def waiting_for(person) -> dict:
    """What waits for a PM: new comments in the triage inbox (in the areas
    they own, if they own any) and open alerts on the sets they own."""
    everywhere = read_inbox(InboxFilters(state="new"), limit=0)["total"]
    mine = read_inbox(InboxFilters(state="new", owner_id=person.id), limit=0)["total"]
    own_set_ids = set(db.session.scalars(select(QuestionSet.id).where(QuestionSet.owner_id == person.id)))
    open_alerts = [a for a in alerts.list_alerts("open") if a.question_set_id in own_set_ids]
    return {"inbox_new": everywhere, "inbox_mine": mine, "open_alerts": len(open_alerts)}


def leader_alerts() -> int:
    """Open alerts a leader may read (every published one: leaders follow every cadence)."""
    return len(alerts.list_alerts("open"))
