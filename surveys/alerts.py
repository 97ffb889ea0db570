"""Canary alerts: after a round closes, watch every published metric of every
slice against its own history and raise an alert when it leaves its limits.

Reading order:
1. `round_points`: what the round published, per metric of each slice, read
   from its finalized scorecard: the stored cards say which slices and
   questions were published (`"suppressed"`), the stored sums (the same ones
   the scorecard's GROUP BY produced) give the exact counts the charts need.
   A withheld slice or question has no point, so it is never watched and
   never appears in an alert, a chart, an email or a webhook. The points are
   kept (`AlertPoints`, one row per round), so history costs one small read
   per round, whatever the number of answers;
2. `watch_round`: for each of this round's points, its series over up to
   `HISTORY_ROUNDS` earlier closed rounds of the cadence, cut at the last
   trend break (a version that changed the question's measure, exactly as
   the scorecard decides `comparable`), then `surveys.control_charts`;
3. alerts: one per out-of-control metric and round (idempotent), not
   repeated while the same series has an open (new or acknowledged) alert;
   state changes (audited) and the API/page shapes.

Which metrics are watched: favourable % and mean of a scale question, NPS,
% yes, each option's share of a choice question, the mean of a number
question. Text questions have none.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cadence.clock import isoformat_z, utcnow
from cadence.models import Round
from surveys import control_charts as charts
from surveys import metrics, payloads
from surveys.alert_models import ALERT_STATES, OPEN_STATES, Alert, AlertPoints
from surveys.audit import record
from surveys.extensions import db
from surveys.scorecard.confidentiality import policy_fingerprint
from surveys.scorecard.finalized import finalize_scorecard
from surveys.scorecard.groups import ALL_KINDS, OVERALL, TeamTree, kind_name
from surveys.scorecard.history import question_specs
from surveys.scorecard.stored import stored_aggregates, stored_snapshot

HISTORY_ROUNDS = 24
CHART_ROUNDS = 12

# (question type) -> [(metric, chart kind)]; option shares expand per option.
WATCHED = {
    "scale": [("favorable_pct", charts.SHARE), ("mean", charts.MEAN)],
    "nps": [("nps", charts.NPS)],
    "yes_no": [("yes_pct", charts.SHARE)],
    "single_choice": [("option_pct", charts.SHARE)],
    "multi_choice": [("option_pct", charts.SHARE)],
    "number": [("mean", charts.MEAN)],
}
METRIC_LABELS = {
    "favorable_pct": "favourable %", "mean": "mean", "nps": "NPS", "yes_pct": "% yes", "option_pct": "share",
}


class AlertStateError(ValueError):
    def __init__(self, errors: dict):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# -- 1. What a round published -------------------------------------------------------


def round_points(round_: Round) -> AlertPoints | None:
    """The round's watched points, computed once from its finalized scorecard
    (finalizing it when it has not been yet). None for a round that is not closed."""
    if round_.status != "closed":
        return None
    existing = db.session.scalar(select(AlertPoints).where(AlertPoints.round_id == round_.id))
    policy = policy_fingerprint(round_.cadence.question_set)
    if existing is not None:
        if existing.policy == policy:
            return existing
        # The set's confidentiality changed since (it only ever becomes stricter): read again.
        db.session.delete(existing)
        db.session.commit()
    snapshot = stored_snapshot(round_) or finalize_scorecard(round_)
    aggregates = stored_aggregates(round_, ALL_KINDS)
    specs = {spec.key: spec for spec in question_specs(round_.version)}
    points = []
    if aggregates is not None:
        tree = TeamTree.load()
        for kind in ALL_KINDS:
            card = snapshot.card(kind_name(kind))
            sums = aggregates[(round_.id, kind)]
            if kind is None:
                sections = [(OVERALL, None, card["questions"])]
            else:
                by_name = {_group_name(kind, group, tree): group for group in sums.groups if group is not OVERALL}
                sections = [(by_name.get(entry["name"]), entry["name"], entry["questions"])
                            for entry in card["slices"] if not entry["suppressed"]]
            for group, name, entries in sections:
                if group is None:
                    continue  # a slice the sums no longer name (a team renamed since): not watched
                for entry in entries:
                    spec = specs.get(entry["key"])
                    if spec is None or entry["suppressed"] or not entry.get("metrics"):
                        continue
                    points += _entry_points(kind_name(kind), name, spec, entry, sums.result(group, spec))
    row = AlertPoints(round_id=round_.id, cadence_id=round_.cadence_id, measures=snapshot.measures, policy=policy,
                      points=points)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        row = db.session.scalar(select(AlertPoints).where(AlertPoints.round_id == round_.id))
    return row


def _group_name(kind, group, tree):
    if kind == "team":
        return tree.path(group) if group in tree.teams else None
    return group


def _entry_points(kind, name, spec, entry, result) -> list:
    """The points of one published question entry; each checked against the
    card's own number, so only what the card showed is watched."""
    out = []
    for metric, chart in WATCHED.get(spec.type, []):
        estimate = result.estimates.get(metric)
        shown = entry["metrics"].get(metric)
        if metric == "option_pct":
            for option, share in (estimate or {}).items():
                if (shown or {}).get(option) is not None and _same(share.percent, shown[option], metric):
                    out.append([kind, name, spec.key, metric, option, chart, share.n, share.successes, None])
            continue
        if estimate is None or shown is None or estimate.n <= 0:
            continue
        if chart == charts.SHARE and _same(estimate.percent, shown, metric):
            out.append([kind, name, spec.key, metric, None, chart, estimate.n, estimate.successes, None])
        elif chart == charts.MEAN and _same(estimate.mean, shown, metric):
            out.append([kind, name, spec.key, metric, None, chart, estimate.n, estimate.mean, estimate.variance])
        elif chart == charts.NPS and _same(metrics.stats.nps(estimate.promoters, estimate.detractors, estimate.n),
                                           shown, metric):
            out.append([kind, name, spec.key, metric, None, chart, estimate.n, estimate.promoters, estimate.detractors])
    return out


def _same(value, shown, metric) -> bool:
    return value is not None and metrics.rounded(value, metrics.digits_for(metric)) == shown


# -- 2. Watching ----------------------------------------------------------------------------


def series_key(point) -> tuple:
    return tuple(point[:5])


def history_rounds(round_: Round) -> list[Round]:
    """The round and up to HISTORY_ROUNDS closed rounds of its cadence before it, oldest first."""
    earlier = db.session.scalars(
        select(Round)
        .where(Round.cadence_id == round_.cadence_id, Round.status == "closed", Round.id != round_.id,
               Round.opens_at < round_.opens_at)
        .order_by(Round.opens_at.desc())
        .limit(HISTORY_ROUNDS)
    ).all()
    return [*reversed(earlier), round_]


def series_for(round_: Round) -> dict:
    """{series key: (chart kind, [(Round, Point)])} for every point the round
    published, each series cut at its question's last trend break."""
    rounds = history_rounds(round_)
    stored = {row.round_id: row for row in db.session.scalars(
        select(AlertPoints).where(AlertPoints.round_id.in_([r.id for r in rounds])))}
    policy = policy_fingerprint(round_.cadence.question_set)
    for other in rounds:
        if other.id not in stored or stored[other.id].policy != policy:
            stored[other.id] = round_points(other)
    current = stored[round_.id]
    by_round = {r.id: {series_key(p): p for p in stored[r.id].points} for r in rounds}
    out = {}
    for key, point in by_round[round_.id].items():
        measure = current.measures.get(key[2])
        series = []
        for other in reversed(rounds):
            if stored[other.id].measures.get(key[2]) != measure:
                break  # a trend break: nothing before it is compared
            found = by_round[other.id].get(key)
            if found is not None:
                series.append((other, charts.Point(other.id, found[6], found[7], found[8])))
        out[key] = (point[5], list(reversed(series)))
    return out


def watch_round(round_: Round, now=None) -> list[Alert]:
    """Evaluate every watched metric of a closed round; store and return the new alerts."""
    if round_.status != "closed":
        return []
    now = now or utcnow()
    question_set_id = round_.cadence.question_set_id
    all_series = series_for(round_)
    open_previous = _open_alert_series(round_)  # series keys with an open alert
    created = []
    for key, (chart, series) in all_series.items():
        evaluation = charts.evaluate(chart, [point for _round, point in series])
        step = evaluation.last
        if step is None or step.signal is None:
            continue
        if key in open_previous:
            continue  # the same series has an alert nobody has dealt with yet: one is enough
        kind, name, question_key, metric, option = key
        current_point = series[-1][1]
        ci = _interval(chart, current_point)
        alert = Alert(
            question_set_id=question_set_id, cadence_id=round_.cadence_id, round_id=round_.id,
            question_key=question_key, metric=metric, option=option or "", slice_kind=kind, slice_name=name or "",
            value=step.value, baseline=step.baseline, low=step.limits[0], high=step.limits[1],
            ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None, n=step.n,
            baseline_rounds=min(charts.BASELINE_ROUNDS, len(evaluation.points) - 1),
            direction=step.direction, rule=step.signal, score=step.score,
            history=_chart_history(series, evaluation), state="new", created_at=now,
        )
        db.session.add(alert)
        created.append(alert)
    if created:
        try:
            db.session.commit()
        except IntegrityError:  # watched already (a re-run of the round-closed job)
            db.session.rollback()
            return []
    return created


def _open_alert_series(round_) -> set:
    rows = db.session.execute(
        select(Alert.slice_kind, Alert.slice_name, Alert.question_key, Alert.metric, Alert.option, Alert.round_id)
        .where(Alert.cadence_id == round_.cadence_id, Alert.state.in_(OPEN_STATES), Alert.round_id != round_.id)
    )
    return {(kind, name or None, key, metric, option or None) for kind, name, key, metric, option, _round_id in rows}


def _interval(chart, point: charts.Point):
    if chart == charts.SHARE:
        return metrics.Proportion(int(point.a), point.n).ci95()
    if chart == charts.NPS:
        return metrics.NetPromoter(int(point.a), int(point.b), point.n).ci95()
    return metrics.SampleMean(point.n, point.a, point.b).ci95()


def _chart_history(series, evaluation) -> list[dict]:
    steps = {step.round_id: step for step in evaluation.steps}
    out = []
    for round_, point in series[-CHART_ROUNDS:]:
        step = steps.get(round_.id)
        out.append({
            "round_id": round_.id, "period_key": round_.period_key, "n": point.n,
            "value": _round(point.value(evaluation.kind)),
            "baseline": _round(step.baseline) if step else None,
            "low": _round(step.limits[0]) if step else None, "high": _round(step.limits[1]) if step else None,
        })
    return out


def _round(value):
    return None if value is None else round(value, 2)


# -- 3. Alerts: reading and changing state ----------------------------------------------


def alert_series(alert: Alert) -> tuple:
    return (alert.slice_kind, alert.slice_name or None, alert.question_key, alert.metric, alert.option or None)


def published(alerts) -> list[Alert]:
    """The alerts whose slice their round still publishes under the set's
    current confidentiality, each with `chart_history` limited to the rounds
    that still publish it. A set only becomes stricter, so an alert raised
    under laxer rules can lose numbers here; nothing withheld is ever shown."""
    alerts = list(alerts)
    round_ids = {a.round_id for a in alerts} | {h["round_id"] for a in alerts for h in a.history}
    keys = _published_keys(round_ids)
    out = []
    for alert in alerts:
        series = alert_series(alert)
        if series not in keys.get(alert.round_id, ()):
            continue
        alert.chart_history = [h for h in alert.history if series in keys.get(h["round_id"], ())]
        out.append(alert)
    return out


def _published_keys(round_ids) -> dict:
    """{round id: set of series keys} its current points publish."""
    if not round_ids:
        return {}
    stored = {row.round_id: row for row in db.session.scalars(
        select(AlertPoints).where(AlertPoints.round_id.in_(list(round_ids))))}
    out = {}
    policies = {}
    for round_ in db.session.scalars(select(Round).where(Round.id.in_(list(round_ids)))):
        question_set = round_.cadence.question_set
        policy = policies.setdefault(question_set.id, policy_fingerprint(question_set))
        row = stored.get(round_.id)
        if row is None or row.policy != policy:
            row = round_points(round_)
        out[round_.id] = {series_key(p) for p in row.points} if row is not None else set()
    return out


def chart_history(alert: Alert) -> list[dict]:
    history = getattr(alert, "chart_history", None)
    if history is None:
        published([alert])
        history = getattr(alert, "chart_history", None) or []
    return history


def list_alerts(state: str | None = None, question_set_id: int | None = None, round_id: int | None = None):
    """Alerts, most severe and most recent first; `state` may be "open" (new or acknowledged)."""
    query = select(Alert)
    if state == "open":
        query = query.where(Alert.state.in_(OPEN_STATES))
    elif state is not None:
        if state not in ALERT_STATES:
            raise AlertStateError({"state": f"Use one of: open, {', '.join(ALERT_STATES)}."})
        query = query.where(Alert.state == state)
    if question_set_id is not None:
        query = query.where(Alert.question_set_id == question_set_id)
    if round_id is not None:
        query = query.where(Alert.round_id == round_id)
    alerts = db.session.scalars(query.order_by(Alert.created_at.desc(), Alert.id.desc())).all()
    order = {"high": 0, "medium": 1, "low": 2}
    return sorted(published(alerts), key=lambda a: (order[a.severity], -a.created_at.timestamp(), -a.id))


# new -> acknowledged -> explained | false_alarm; a new alert may be closed directly.
TRANSITIONS = {
    "new": {"acknowledged", "explained", "false_alarm"},
    "acknowledged": {"explained", "false_alarm"},
    "explained": set(),
    "false_alarm": set(),
}
NOTE_MAX = 2000
payloads.declare("AlertStateChange", {
    "type": "object", "required": ["state"], "additionalProperties": False,
    "properties": {"state": {"type": "string", "enum": sorted(TRANSITIONS["new"])},
                   "note": {"type": ["string", "null"], "maxLength": NOTE_MAX,
                            "description": "Required to explain an alert; stripped of surrounding white space."}},
}, sentences=True)


def change_state(alert: Alert, actor, state, note=None, now=None) -> Alert:
    """Move an alert on (audited, in the caller's transaction: the caller commits).
    An explanation needs a note; a finished alert does not move again."""
    change = payloads.stripped({field: value for field, value in (("state", state), ("note", note)) if value is not None})
    errors = payloads.shape_errors("AlertStateChange", change, root="state")
    if "state" not in errors and state not in TRANSITIONS[alert.state]:
        errors["state"] = f"An alert that is {alert.state.replace('_', ' ')} cannot become {state.replace('_', ' ')}."
    note = change.get("note", "") if "note" not in errors else ""
    if state == "explained" and not note and "state" not in errors:
        errors["note"] = "Say what explains the change (e.g. a pricing change in October)."
    if errors:
        raise AlertStateError(errors)
    before = alert.state
    alert.state = state
    if note:
        alert.note = note
    alert.state_changed_at = now or utcnow()
    alert.state_changed_by_id = getattr(actor, "id", None)
    record(actor, "alert.state_changed", alert, {"from": before, "to": state, "note": note})
    return alert


def slice_dict(alert: Alert) -> dict:
    return {"kind": alert.slice_kind, "name": alert.slice_name or None}


def alert_dict(alert: Alert) -> dict:
    """The docs/api.md shape, with the chart's data and the interval added."""
    return {
        "id": alert.id,
        "question_set_id": alert.question_set_id,
        "cadence_id": alert.cadence_id,
        "question_key": alert.question_key,
        "metric": alert.metric,
        "option": alert.option or None,
        "slice": slice_dict(alert),
        "round_id": alert.round_id,
        "value": _round(alert.value),
        "baseline": _round(alert.baseline),
        "limits": [_round(alert.low), _round(alert.high)],
        "ci95": [_round(alert.ci_low), _round(alert.ci_high)] if alert.ci_low is not None else None,
        "n": alert.n,
        "direction": alert.direction,
        "rule": alert.rule,
        "severity": alert.severity,
        "state": alert.state,
        "note": alert.note or None,
        "created_at": isoformat_z(alert.created_at),
        "state_changed_at": isoformat_z(alert.state_changed_at) if alert.state_changed_at else None,
        "history": chart_history(alert),
    }


def alert_marks(round_id: int) -> dict:
    """{question key: ["everyone: favourable % down", "region EMEA: mean down", ...]} for a round's alerts:
    the scorecard marks the metrics that alerted (only published slices ever alert)."""
    out = defaultdict(list)
    rows = db.session.scalars(
        select(Alert).where(Alert.round_id == round_id).order_by(Alert.slice_kind, Alert.slice_name, Alert.id)).all()
    keys = _published_keys({round_id}) if rows else {}
    for alert in rows:
        if alert_series(alert) not in keys.get(round_id, ()):
            continue
        label = METRIC_LABELS.get(alert.metric, alert.metric)
        if alert.option:
            label = f"{alert.option} {label}"
        where = "everyone" if alert.slice_kind == "overall" else f"{alert.slice_kind} {alert.slice_name}"
        out[alert.question_key].append(f"{where}: {label} {alert.direction}")
    return dict(out)
