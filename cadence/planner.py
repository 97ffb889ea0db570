"""The scheduler pass ("tick"): what is due as of `now`, from the database.

A tick
1. closes rounds whose window has ended (and cancels their unsent reminders);
2. opens each cadence's due occurrences: one whose window is still open opens
   (late, if the scheduler was down), older missed ones are recorded as
   skipped, never sent in a burst;
3. hands due deliveries (invites, reminders) to the `mail` queue, plus any that
   a lost Redis or a killed worker left behind.

It is idempotent and safe to run concurrently: unique constraints allow one
round per (cadence, period), one invitation per (round, person) and one
delivery per (invitation, kind); inserts that lose a race do nothing. Jobs
are enqueued only after the commit that made their work visible.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cadence import dispatch
from cadence.clock import utcnow
from cadence.models import Cadence, Delivery, Invitation, Round, RoundOverride, TickRun
from surveys.org.models import Person, PersonRole, Team
from cadence.recurrence import (
    Occurrence,
    Override,
    occurrences,
    place_local,
    recipient_send_instant,
    zone_for,
)
from surveys.extensions import db
from surveys.lifecycle import archived_filter

log = logging.getLogger(__name__)

# A round opened more than this after its scheduled time is marked late.
LATE_AFTER = timedelta(minutes=15)
# A delivery handed to Redis but not picked up in this long is handed again:
# Redis may have lost it. A claimed one not finished is presumed abandoned by
# a killed worker. Both are safe because sending claims each row atomically.
REQUEUE_QUEUED_AFTER = timedelta(minutes=10)
REQUEUE_SENDING_AFTER = timedelta(minutes=10)
MAX_CATCH_UP = 500


@dataclass
class TickReport:
    now: datetime
    opened: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    invitations: int = 0
    late_joiners: int = 0
    invites_enqueued: int = 0
    reminders_enqueued: int = 0
    requeued: int = 0

    def lines(self) -> list[str]:
        lines = [f"tick at {self.now.isoformat()}"]
        lines += [f"opened {label}" for label in self.opened]
        lines += [f"skipped {label}" for label in self.skipped]
        lines += [f"closed {label}" for label in self.closed]
        lines.append(
            f"invitations created: {self.invitations}; invites enqueued: {self.invites_enqueued}; "
            f"reminders enqueued: {self.reminders_enqueued}; re-enqueued: {self.requeued}"
        )
        return lines

    def as_dict(self) -> dict:
        return {
            "now": self.now.isoformat(),
            "opened": self.opened,
            "skipped": self.skipped,
            "closed": self.closed,
            "invitations": self.invitations,
            "late_joiners": self.late_joiners,
            "invites_enqueued": self.invites_enqueued,
            "reminders_enqueued": self.reminders_enqueued,
            "requeued": self.requeued,
        }


def tick(now: datetime, enqueue: bool = True) -> TickReport:
    started = utcnow()
    report = TickReport(now=now)
    closed_ids = close_due_rounds(now, report)
    for cadence_id in due_cadence_ids(now):
        plan_cadence(db.session.get(Cadence, cadence_id), now, report)
    invite_late_joiners(now, report)
    batches = claim_due_deliveries(now, report)
    if enqueue:
        dispatch.deliveries(batches)
        dispatch.rounds_closed(closed_ids)
    db.session.add(TickRun(as_of=now, started_at=started, finished_at=utcnow(), summary=report.as_dict()))
    db.session.commit()
    return report


# -- Closing ----------------------------------------------------------------------


def close_due_rounds(now: datetime, report: TickReport) -> list[int]:
    """Close every open round whose window has ended; returns their ids."""
    closed_ids = []
    rounds = db.session.scalars(
        select(Round).where(Round.status == "open", Round.closes_at <= now).order_by(Round.closes_at)
    ).all()
    for round_ in rounds:
        closed = db.session.execute(
            update(Round)
            .where(Round.id == round_.id, Round.status == "open")
            .values(status="closed", closed_at=now)
        ).rowcount
        if closed:
            cancel_unsent(round_.id)
            report.closed.append(_label(round_.cadence, round_.period_key))
            closed_ids.append(round_.id)
        db.session.commit()
    return closed_ids


def cancel_unsent(round_id: int) -> None:
    """Nothing more goes out for a closed round."""
    invitation_ids = select(Invitation.id).where(Invitation.round_id == round_id)
    db.session.execute(
        update(Delivery)
        .where(Delivery.invitation_id.in_(invitation_ids), Delivery.status.in_(("pending", "queued")))
        .values(status="cancelled")
    )


# -- Opening ----------------------------------------------------------------------


def due_cadence_ids(now: datetime) -> list[int]:
    return list(
        db.session.scalars(
            select(Cadence.id)
            .where(Cadence.status == "active", archived_filter(Cadence, False),
                   or_(Cadence.next_open_at.is_(None), Cadence.next_open_at <= now))
            .order_by(Cadence.id)
        )
    )


def overrides_for(cadence: Cadence) -> dict[str, Override]:
    rows = db.session.scalars(select(RoundOverride).where(RoundOverride.cadence_id == cadence.id)).all()
    return {row.period_key: Override(row.action, row.opens_on) for row in rows}


def cadence_occurrences(cadence: Cadence, *, after=None, until=None, limit=100) -> list[Occurrence]:
    return occurrences(
        cadence.rrule,
        cadence.starts_on,
        cadence.send_time,
        cadence.timezone,
        cadence.open_days,
        after=after,
        until=until,
        ends_on=cadence.ends_on,
        limit=limit,
        overrides=overrides_for(cadence) if cadence.id else None,
    )


def occurrences_to_plan(cadence: Cadence, *, until: datetime | None = None, open_at: datetime | None = None,
                        limit: int = MAX_CATCH_UP) -> list[Occurrence]:
    """The occurrences the tick has still to act on (open, or record as
    skipped), in order, at most `limit`: the tick and the preview both read
    this, so they always agree.

    They are the occurrences after the last round the tick recorded and
    without a round of their own. A cadence with no round yet starts with
    the occurrence whose window was still open when the cadence was created:
    it opens (late) at the next tick, as after downtime; an occurrence whose
    window had closed by then was never missed, so it is not recorded at all.
    `until` keeps those that open by then (the tick); `open_at` keeps those
    whose window is still open at that instant (the preview)."""
    last_scheduled = db.session.scalar(select(func.max(Round.scheduled_at)).where(Round.cadence_id == cadence.id))
    close_floors = [t for t in (None if last_scheduled else cadence.created_at, open_at) if t is not None]
    closes_after = max(close_floors) if close_floors else None
    # A window lasts `open_days` (an hour more across a DST change), so an
    # occurrence that closes after `closes_after` opened no earlier than this.
    after_bounds = [last_scheduled]
    if closes_after is not None:
        after_bounds.append(closes_after - timedelta(days=cadence.open_days, hours=2))
    after = max((t for t in after_bounds if t is not None), default=None)
    # A couple of extra occurrences, for those the window test drops.
    found = cadence_occurrences(cadence, after=after, until=until, limit=limit + 2)
    if closes_after is not None:
        found = [o for o in found if o.closes_at > closes_after]
    recorded = set(
        db.session.scalars(
            select(Round.period_key).where(Round.cadence_id == cadence.id,
                                           Round.period_key.in_([o.period_key for o in found]))
        )
    ) if found else set()
    return [o for o in found if o.period_key not in recorded][:limit]


def plan_cadence(cadence: Cadence, now: datetime, report: TickReport) -> None:
    """Open or skip every occurrence of `cadence` due by `now`, then remember
    when the next one is due so later ticks can ignore this cadence."""
    due = occurrences_to_plan(cadence, until=now)
    for occurrence in due:
        if occurrence.skip:
            if record_skipped(cadence, occurrence, now, "skipped by a product manager"):
                report.skipped.append(_label(cadence, occurrence.period_key) + " (skipped by a PM)")
        elif occurrence.closes_at > now:
            if open_round(cadence, occurrence, now, report) is not None:
                report.opened.append(_label(cadence, occurrence.period_key) + (" (late)" if _is_late(occurrence, now) else ""))
        else:
            # Downtime, or a pause or an archive: either way its window passed unopened, and it is not sent now.
            if record_skipped(cadence, occurrence, now,
                              "missed: its window passed while the scheduler was down or the cadence paused or archived"):
                report.skipped.append(_label(cadence, occurrence.period_key) + " (its window had passed)")
    following = cadence_occurrences(cadence, after=max([now] + [o.scheduled_at for o in due]), limit=1)
    cadence.next_open_at = following[0].scheduled_at if following else None
    db.session.commit()


def refresh_next_open(cadence: Cadence) -> None:
    """Called when a cadence is created or edited: the first occurrence the
    tick has to act on (possibly already due) makes the cadence due then."""
    upcoming = occurrences_to_plan(cadence, limit=1)
    cadence.next_open_at = upcoming[0].scheduled_at if upcoming else None


def _is_late(occurrence: Occurrence, now: datetime) -> bool:
    return now - occurrence.scheduled_at > LATE_AFTER


def _label(cadence: Cadence, period_key: str) -> str:
    return f"{cadence.name} {period_key}"


def insert_ignoring_conflicts(model):
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike."""
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing()


def add_rows(model, rows: list[dict], *, may_conflict: bool) -> None:
    """Insert `rows` (all with the same keys). Rows that may conflict with
    another tick's are inserted ignoring conflicts. Rows that cannot (those of
    a round this transaction created: no other tick sees it before the
    commit) go through COPY on PostgreSQL: an executemany runs one statement
    a row there, which made opening a 20,000-person round take 7 s."""
    if not rows:
        return
    if may_conflict or db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(insert_ignoring_conflicts(model), rows)
        return
    from psycopg import sql

    columns = list(rows[0])
    # COPY skips the model's Python-side defaults (an INSERT would apply them).
    defaults = {column.name: column.default.arg(None) if column.default.is_callable else column.default.arg
                for column in model.__table__.columns
                if column.name not in columns and column.default is not None and not column.default.is_sequence}
    command = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model.__tablename__), sql.SQL(", ").join(map(sql.Identifier, [*columns, *defaults])))
    driver = db.session.connection().connection.driver_connection  # the session's own transaction
    with driver.cursor() as cursor, cursor.copy(command) as copy:
        for row in rows:
            copy.write_row([*(row[column] for column in columns), *defaults.values()])


def record_skipped(cadence: Cadence, occurrence: Occurrence, now: datetime, note: str) -> bool:
    round_id = db.session.scalar(
        insert_ignoring_conflicts(Round).values(
            cadence_id=cadence.id,
            period_key=occurrence.period_key,
            status="skipped",
            scheduled_at=occurrence.scheduled_at,
            opens_at=occurrence.scheduled_at,
            closes_at=occurrence.closes_at,
            late=False,
            note=note,
            created_at=now,
        ).returning(Round.id)
    )
    db.session.commit()
    return round_id is not None


def open_round(cadence: Cadence, occurrence: Occurrence, now: datetime, report: TickReport | None = None) -> Round | None:
    """Create the round, its invitations and their deliveries in one
    transaction. Returns None when the round already existed (another tick
    got there first) or the set has nothing published to send."""
    from surveys.disclosure import policy_record
    from surveys.questions.drafts import version_for_round

    version = version_for_round(cadence.question_set)
    if version is None:
        log.warning("cadence %s has no published question set version; not opening %s", cadence.id, occurrence.period_key)
        return None
    opens_at = max(now, occurrence.scheduled_at)
    # RETURNING says whether this tick created the round: an ORM INSERT's
    # rowcount is -1 on PostgreSQL whether or not the conflict skipped it.
    round_id = db.session.scalar(
        insert_ignoring_conflicts(Round).values(
            cadence_id=cadence.id,
            period_key=occurrence.period_key,
            question_set_version_id=version.id,
            status="open",
            scheduled_at=occurrence.scheduled_at,
            opens_at=opens_at,
            # The grace period keeps the form open after the nominal close;
            # reminders still stop at the nominal close.
            closes_at=occurrence.closes_at + timedelta(days=cadence.grace_days or 0),
            late=_is_late(occurrence, now),
            note=f"moved from {occurrence.moved_from.isoformat()}" if occurrence.moved_from else None,
            # The promise its invitations carry (SPEC §2): never loosened later.
            policy=policy_record(cadence.question_set),
            created_at=now,
        ).returning(Round.id)
    )
    if round_id is None:
        db.session.rollback()
        return None
    round_ = db.session.get(Round, round_id)
    created = create_invitations(cadence, round_, occurrence, now)
    db.session.commit()
    if report is not None:
        report.invitations += created
    return round_


def invite_late_joiners(now: datetime, report: TickReport) -> None:
    """For cadences that ask for it: people who joined the audience while a
    round is open get their invitation (due now) and the remaining reminders."""
    rounds = db.session.scalars(
        select(Round)
        .join(Cadence, Cadence.id == Round.cadence_id)
        .where(Round.status == "open", Cadence.add_late_joiners.is_(True), Cadence.status == "active",
               archived_filter(Cadence, False))
    ).all()
    for round_ in rounds:
        cadence = round_.cadence
        invited = select(Invitation.person_id).where(Invitation.round_id == round_.id)
        joiners = db.session.execute(audience_query(cadence.audience).where(Person.id.not_in(invited))).all()
        if not joiners:
            continue
        rows = [_invitation_row(round_, person, now, now) for person in joiners]
        insert_invitations(cadence, round_, rows)
        db.session.commit()
        report.invitations += len(rows)
        report.late_joiners += len(rows)


def audience_query(audience: dict):
    """Active reps matching the audience: teams (with their sub-teams),
    regions and segments; within a dimension any value matches, across
    dimensions all must. An empty audience means every active rep."""
    query = (
        select(Person.id, Person.team_id, Person.region, Person.segment, Person.timezone)
        .join(PersonRole, and_(PersonRole.person_id == Person.id, PersonRole.role == "rep"))
        .where(Person.active.is_(True))
    )
    teams = [t for t in (audience or {}).get("teams") or [] if t]
    if teams:
        team_match = or_(*[or_(Team.path == path, Team.path.startswith(path + " / ", autoescape=True)) for path in teams])
        query = query.where(Person.team_id.in_(select(Team.id).where(team_match)))
    regions = [r for r in (audience or {}).get("regions") or [] if r]
    if regions:
        query = query.where(Person.region.in_(regions))
    segments = [s for s in (audience or {}).get("segments") or [] if s]
    if segments:
        query = query.where(Person.segment.in_(segments))
    return query.order_by(Person.id)


# Invitations are created in chunks so memory stays flat however large the
# audience (B6: a 50,000-person round).
CHUNK = 2000


def create_invitations(cadence: Cadence, round_: Round, occurrence: Occurrence, now: datetime) -> int:
    """One invitation per person in the audience (snapshotting team, region and
    segment), an invite delivery each, and the reminders of the ladder."""
    created = 0
    result = db.session.execute(audience_query(cadence.audience).execution_options(yield_per=CHUNK))
    for people in result.partitions(CHUNK):
        rows = []
        for person in people:
            if cadence.uses_recipient_timezone:
                send_at = recipient_send_instant(occurrence.local_date, cadence.send_time, person.timezone)
            else:
                send_at = occurrence.scheduled_at
            rows.append(_invitation_row(round_, person, max(send_at, round_.opens_at), now))
        add_rows(Invitation, rows, may_conflict=False)
        created += len(rows)
    create_deliveries(cadence, round_, new_round=True)
    return created


def _invitation_row(round_: Round, person, send_at: datetime, now: datetime) -> dict:
    """An invitation for one row of audience_query, snapshotting the person's
    team, region and segment as they are now."""
    return {
        "round_id": round_.id,
        "person_id": person.id,
        "team_id": person.team_id,
        "region": person.region,
        "segment": person.segment,
        "timezone": person.timezone,
        "send_at": send_at,
        "nonce": secrets.token_urlsafe(12),
        "created_at": now,
    }


def insert_invitations(cadence: Cadence, round_: Round, rows: list[dict]) -> None:
    """Insert invitations into an open round (a racing tick's duplicates are
    ignored) and the deliveries of the ones this call created."""
    add_rows(Invitation, rows, may_conflict=True)
    new_ids = db.session.scalars(
        select(Invitation.id).where(
            Invitation.round_id == round_.id, Invitation.person_id.in_([row["person_id"] for row in rows])
        )
    ).all()
    create_deliveries(cadence, round_, new_ids)


def nominal_close(cadence: Cadence, round_: Round) -> datetime:
    """When reminders must stop: the close before any grace period."""
    return round_.closes_at - timedelta(days=cadence.grace_days or 0)


def create_deliveries(cadence: Cadence, round_: Round, invitation_ids=None, new_round: bool = False) -> None:
    """An invite for each invitation of the round (or just `invitation_ids`)
    and the reminders of the ladder that fall before the nominal close;
    `new_round`: the round is being opened by this transaction."""
    query = select(Invitation.id, Invitation.send_at, Invitation.timezone).where(Invitation.round_id == round_.id)
    if invitation_ids is not None:
        query = query.where(Invitation.id.in_(invitation_ids))
    invitations = db.session.execute(query).all()
    stop_at = nominal_close(cadence, round_)
    cadence_zone = None if cadence.uses_recipient_timezone else zone_for(cadence.timezone)
    ladder = sorted(set(cadence.reminder_days or []))
    for start in range(0, len(invitations), CHUNK):  # the rows of one chunk at a time in memory
        rows = []
        for invitation_id, send_at, tz_name in invitations[start:start + CHUNK]:
            rows.append({"invitation_id": invitation_id, "kind": "invite", "status": "pending", "due_at": send_at})
            zone = cadence_zone or zone_for(tz_name)
            local_send = send_at.astimezone(zone).replace(tzinfo=None)
            for number, days in enumerate(ladder, start=1):
                due = place_local(local_send + timedelta(days=days), zone)
                if due < stop_at:
                    rows.append({"invitation_id": invitation_id, "kind": f"reminder-{number}", "status": "pending",
                                 "due_at": due})
        add_rows(Delivery, rows, may_conflict=not new_round)


# -- Manual nudge ---------------------------------------------------------------------

NUDGE_INTERVAL = timedelta(hours=24)


class NudgeRefused(Exception):
    pass


def nudge_non_responders(round_: Round, now: datetime) -> int:
    """A PM's extra reminder to everyone in an open round who has not
    answered; refused if the last nudge was less than 24 hours ago. Returns
    how many were nudged; the deliveries go out with the next enqueue."""
    if not round_.is_open or round_.closes_at <= now:
        raise NudgeRefused("the round is not open")
    round_invitations = select(Invitation.id).where(Invitation.round_id == round_.id)
    last = db.session.scalar(
        select(func.max(Delivery.due_at)).where(
            Delivery.invitation_id.in_(round_invitations), Delivery.kind.like("nudge-%")
        )
    )
    if last is not None and now - last < NUDGE_INTERVAL:
        raise NudgeRefused(f"a nudge went out at {last:%Y-%m-%d %H:%M} UTC; the next one can go 24 hours later")
    number = 1 + db.session.scalar(
        select(func.count(func.distinct(Delivery.kind))).where(
            Delivery.invitation_id.in_(round_invitations), Delivery.kind.like("nudge-%")
        )
    )
    waiting = db.session.scalars(
        select(Invitation.id)
        .join(Person, Person.id == Invitation.person_id)
        .where(Invitation.round_id == round_.id, Invitation.responded_at.is_(None), Person.active.is_(True))
    ).all()
    if waiting:
        db.session.execute(
            insert_ignoring_conflicts(Delivery),
            [{"invitation_id": i, "kind": f"nudge-{number}", "status": "pending", "due_at": now} for i in waiting],
        )
    db.session.commit()
    return len(waiting)


# -- Handing deliveries to the workers ------------------------------------------------


def claim_due_deliveries(now: datetime, report: TickReport) -> list[list[int]]:
    """Mark due deliveries as queued and return them in batches for the mail
    queue. Includes deliveries that Redis lost or a killed worker abandoned."""
    from flask import current_app

    open_rounds = select(Round.id).where(Round.status == "open")
    open_invitations = select(Invitation.id).where(Invitation.round_id.in_(open_rounds))
    due = or_(
        and_(Delivery.status == "pending", Delivery.due_at <= now),
        and_(Delivery.status == "queued", Delivery.enqueued_at <= now - REQUEUE_QUEUED_AFTER),
        and_(Delivery.status == "sending", Delivery.claimed_at <= now - REQUEUE_SENDING_AFTER),
    )
    rows = db.session.execute(
        select(Delivery.id, Delivery.kind, Delivery.status)
        .where(due, Delivery.invitation_id.in_(open_invitations))
        .order_by(Delivery.due_at, Delivery.id)
    ).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    for chunk in _chunks(ids, 1000):
        db.session.execute(
            update(Delivery).where(Delivery.id.in_(chunk)).values(status="queued", enqueued_at=now)
        )
    db.session.commit()
    for row in rows:
        if row.status != "pending":
            report.requeued += 1
        elif row.kind == "invite":
            report.invites_enqueued += 1
        else:
            report.reminders_enqueued += 1
    return list(_chunks(ids, current_app.config["MAIL_BATCH_SIZE"]))


def hand_out_due_deliveries(now: datetime) -> TickReport:
    """Hand due deliveries to the workers now rather than at the next tick
    (after a nudge or a retry)."""
    report = TickReport(now=now)
    dispatch.deliveries(claim_due_deliveries(now, report))
    return report


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]
