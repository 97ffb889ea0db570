"""Participation: invited, responded and rate, overall and per published slice,
the share gained after each reminder, and (attributed sets only) who has not
answered."""

from __future__ import annotations

from sqlalchemy import and_, func, select

from cadence.models import Delivery, Invitation
from surveys.org.models import Person, Team
from surveys import disclosure, metrics
from surveys.extensions import db
from surveys.models import Response
from surveys.scorecard.confidentiality import Policy, round_plan
from surveys.scorecard.cube import load_aggregates
from surveys.scorecard.groups import ALL_KINDS, OVERALL, SLICE_KINDS, TeamTree
from surveys.scorecard.stored import stored_snapshot


LOW_PARTICIPATION_PCT = 60.0



def participation_summary(round_, aggregates, tree, policy, plan=None) -> dict:
    """Invited, responded, rate per slice kind (low rates flagged) and the share
    gained after each reminder. Response counts are hidden while held; for a
    confidential set, a group the plan withholds shows only its name and
    `withheld` (rule 3: who did not answer is confidential too)."""
    invited, responded = aggregates[(round_.id, None)].participation.get(OVERALL, (0, 0))
    held = policy.held
    overall_withheld = plan is not None and plan.participation_reason(None, None) is not None
    result = {
        "invited": None if overall_withheld else invited,
        "responded": None if held or overall_withheld else responded,
        "rate": None if held or overall_withheld else response_rate_pct(invited, responded),
        "withheld": overall_withheld,
        "slices": {},
        "reminders": [] if held or overall_withheld else reminder_gains(round_, invited),
    }
    for kind in SLICE_KINDS:
        entries = []
        for group, (slice_invited, slice_responded) in aggregates[(round_.id, kind)].participation.items():
            if group is OVERALL:
                continue
            name = tree.path(group) if kind == "team" else group
            if plan is not None and plan.participation_reason(kind, group):
                entries.append({"name": name, "withheld": True, "invited": None, "responded": None, "rate": None,
                                "low": False})
                continue
            rate = response_rate_pct(slice_invited, slice_responded)
            entries.append({
                "name": name,
                "invited": slice_invited,
                "responded": None if held else slice_responded,
                "rate": None if held else rate,
                "low": (not held) and rate is not None and rate < LOW_PARTICIPATION_PCT,
            })
        result["slices"][kind] = sorted(entries, key=lambda e: e["name"].lower())
    return result


def participation(round_) -> dict:
    """Invited, responded and rate, overall and per slice kind (slices under
    60 % flagged `low`), and the share gained after each reminder."""
    snapshot = stored_snapshot(round_)
    if snapshot is not None:
        return snapshot.overall["participation"]
    tree = TeamTree.for_round(round_)
    aggregates = load_aggregates([round_], ALL_KINDS, tree, answers=False)
    return participation_summary(round_, aggregates, tree, Policy.for_round(round_), round_plan(round_, tree))


def reminder_gains(round_, invited: int) -> list[dict]:
    """How many answered after the invitation alone, and after each reminder.

    A response counts for the last reminder its person had been sent before
    they first answered (reminders only go to people who have not answered)."""
    reminders_before = (
        select(Response.id.label("response_id"), func.count(Delivery.id).label("reminders"))
        .select_from(Response)
        .outerjoin(
            Delivery,
            and_(
                Delivery.invitation_id == Response.invitation_id,
                Delivery.kind.like("reminder-%"),
                Delivery.sent_at.is_not(None),
                Delivery.sent_at <= Response.submitted_at,
            ),
        )
        .where(Response.round_id == round_.id)
        .group_by(Response.id)
        .subquery()
    )
    gained = dict(
        db.session.execute(
            select(reminders_before.c.reminders, func.count()).group_by(reminders_before.c.reminders)
        ).all()
    )
    sent = dict(
        db.session.execute(
            select(Delivery.kind, func.count())
            .join(Invitation, Invitation.id == Delivery.invitation_id)
            .where(Invitation.round_id == round_.id, Delivery.kind.like("reminder-%"), Delivery.sent_at.is_not(None))
            .group_by(Delivery.kind)
        ).all()
    )
    steps = max([0, *gained, *(int(kind.split("-", 1)[1]) for kind in sent if kind.split("-", 1)[1].isdigit())])
    out, cumulative = [], 0
    for step in range(steps + 1):
        count = gained.get(step, 0)
        cumulative += count
        out.append({
            "after": "invitation" if step == 0 else f"reminder {step}",
            "sent": invited if step == 0 else sent.get(f"reminder-{step}", 0),
            "responded": count,
            "gained_pct": response_rate_pct(invited, count),
            "cumulative_pct": response_rate_pct(invited, cumulative),
        })
    return out


def non_responders(round_) -> list[dict] | None:
    """For attributed sets only: who was invited and has not answered yet."""
    if Policy.for_round(round_).min_size is not None:  # confidential, now or when invited
        return None
    rows = db.session.execute(
        select(Person.name, Person.email, Team.path)
        .select_from(Invitation)
        .join(Person, Person.id == Invitation.person_id)
        .outerjoin(Team, Team.id == Invitation.team_id)
        .outerjoin(Response, Response.invitation_id == Invitation.id)
        .where(Invitation.round_id == round_.id, Response.id.is_(None))
        .order_by(Person.name)
    )
    return [{"name": name, "email": email, "team": team} for name, email, team in rows]


def participation_by_round(rounds) -> dict:
    """{round_id: {"invited", "responded", "rate"}} for a list of rounds, in one
    query; response counts stay hidden for open rounds that hold results."""
    round_ids = [r.id for r in rounds]
    counts = {}
    if round_ids:
        counts = {
            round_id: (invited, responded)
            for round_id, invited, responded in db.session.execute(
                select(Invitation.round_id, func.count(Invitation.id), func.count(Response.id))
                .outerjoin(Response, Response.invitation_id == Invitation.id)
                .where(Invitation.round_id.in_(round_ids))
                .group_by(Invitation.round_id)
            )
        }
    out = {}
    for round_ in rounds:
        invited, responded = counts.get(round_.id, (0, 0))
        out[round_.id] = disclosure.round_counts(round_, invited, responded)
    return out




def response_rate_pct(invited, responded):
    return metrics.rounded(100.0 * responded / invited, metrics.PERCENT_DIGITS) if invited else None
