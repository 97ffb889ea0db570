"""Deal scorecards: a moment's answers per period of close date, overall and
cut by outcome, competitor, deal size, segment, region or product line; per
deal and weighted by revenue; and the CRM's loss reason against the rep's.

The database does the aggregation (GROUP BY over answered invitations joined
to their deals); `surveys.metrics` turns the per-deal value counts into the
metrics, intervals and period-over-period tests of a cadence scorecard.

Revenue weights: within a group (one period, one slice), deal i weighs
w_i = min(amount_i, cap x total), total being the amount of every answered
deal of the group and cap 10 % unless configured, so no single deal decides
a share. Weighted shares and means come with the deal count and Kish's
effective sample size n_eff = (sum w)^2 / sum w^2, which their intervals use
(Wilson for shares, t for means, with n_eff in place of n).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, and_, case, cast, distinct, extract, func, literal, select

from surveys import metrics
from surveys.deals.models import Deal, DealAnswer, DealProduct, Moment, MomentInvitation
from surveys.extensions import db
from surveys.models import QuestionSetVersion

PERIODS = ("month", "quarter")
SLICES = ("outcome", "competitor", "size", "segment", "region", "product")
WEIGHTS = ("deal", "revenue")
DEFAULT_CAP = 0.10
# Deal-size bands by amount (the deal's own currency; one currency per org is the usual case).
SIZE_BANDS = ((10_000, "under 10k"), (50_000, "10k-50k"), (250_000, "50k-250k"), (None, "250k and over"))
LOSS_QUESTION = "loss_reason"


class ScorecardQueryInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Options:
    period: str = "quarter"
    by: str | None = None
    weight: str = "deal"
    cap: float = DEFAULT_CAP


def size_band_expression(amount):
    whens = []
    for upper, label in SIZE_BANDS:
        if upper is None:
            break
        whens.append((amount < upper, label))
    return case(*whens, else_=SIZE_BANDS[-1][1])


def _slice_column(by, deal_table):
    if by is None:
        return literal("")
    if by == "size":
        return size_band_expression(deal_table.c.amount)
    if by == "product":
        return func.coalesce(DealProduct.__table__.c.product, "(none)")
    column = {"outcome": deal_table.c.outcome, "competitor": deal_table.c.competitor,
              "segment": deal_table.c.segment, "region": deal_table.c.region}[by]
    return func.coalesce(column, "(none)")


def _answered(moment_id: int, options: Options):
    """One row per answered invitation (per product, when slicing by product):
    its deal's amount, the period of its close date and its slice."""
    deals = Deal.__table__
    invitations = MomentInvitation.__table__
    year = cast(extract("year", deals.c.close_date), Integer)
    month = cast(extract("month", deals.c.close_date), Integer)
    part = month if options.period == "month" else (month + 2) // 3
    query = (select(invitations.c.id.label("invitation_id"), deals.c.amount.label("amount"),
                    year.label("year"), part.label("part"), _slice_column(options.by, deals).label("slice"))
             .select_from(invitations.join(deals, deals.c.id == invitations.c.deal_id)))
    if options.by == "product":
        query = query.outerjoin(DealProduct.__table__, DealProduct.__table__.c.deal_id == deals.c.id)
    return query.where(invitations.c.moment_id == moment_id, invitations.c.responded_at.is_not(None),
                       deals.c.close_date.is_not(None)).subquery("answered")


def aggregate(moment_id: int, options: Options, multi_keys: frozenset = frozenset()) -> dict:
    """The SQL part: per group (year, part, slice) the deal count, revenue and
    the sums of capped weights; per question the respondents and the value
    counts, with their weights. Returns plain dictionaries keyed by group."""
    answered = _answered(moment_id, options)
    group = (answered.c.year, answered.c.part, answered.c.slice)
    totals = (select(*group, func.count().label("deals"), func.sum(answered.c.amount).label("revenue"))
              .group_by(*group).subquery("totals"))
    joined = answered.join(totals, and_(answered.c.year == totals.c.year, answered.c.part == totals.c.part,
                                        answered.c.slice == totals.c.slice))
    cap = totals.c.revenue * options.cap
    weight = case((answered.c.amount > cap, cap), else_=answered.c.amount)
    keyed = select(answered.c.invitation_id, *group, answered.c.amount, weight.label("w")).select_from(joined).subquery("weighted")
    kgroup = (keyed.c.year, keyed.c.part, keyed.c.slice)
    groups = {}
    for row in db.session.execute(select(*kgroup, func.count(), func.sum(keyed.c.amount), func.sum(keyed.c.w),
                                         func.sum(keyed.c.w * keyed.c.w)).group_by(*kgroup)):
        groups[(row[0], row[1], row[2])] = {"deals": row[3], "revenue": row[4] or 0.0, "w": row[5] or 0.0, "w2": row[6] or 0.0}
    answers = DealAnswer.__table__
    vgroup = (*kgroup, answers.c.question_key, answers.c.value_num, answers.c.value_text)
    values = {}
    for row in db.session.execute(
            select(*vgroup, func.count(), func.sum(keyed.c.w), func.sum(keyed.c.amount), func.sum(keyed.c.w * keyed.c.w))
            .select_from(keyed.join(answers, answers.c.invitation_id == keyed.c.invitation_id)).group_by(*vgroup)):
        values.setdefault(tuple(row[:4]), []).append((row[4], row[5], row[6], row[7] or 0.0, row[8] or 0.0, row[9] or 0.0))
    # Who answered each question: a single-valued question has one row per
    # deal, so its value counts add up; only multi-choice questions (one row
    # per option chosen) need the deals counted once each.
    respondents = {}
    for key, rows in values.items():
        if key[3] not in multi_keys:
            respondents[key] = {"n": sum(r[2] for r in rows), "w": sum(r[3] for r in rows),
                                "w2": sum(r[5] for r in rows), "revenue": sum(r[4] for r in rows)}
    if multi_keys:
        per_question = (select(keyed.c.invitation_id, *kgroup, keyed.c.amount, keyed.c.w, answers.c.question_key)
                        .select_from(keyed.join(answers, answers.c.invitation_id == keyed.c.invitation_id))
                        .where(answers.c.question_key.in_(sorted(multi_keys))).distinct().subquery("per_question"))
        pgroup = (per_question.c.year, per_question.c.part, per_question.c.slice, per_question.c.question_key)
        for row in db.session.execute(select(*pgroup, func.count(), func.sum(per_question.c.w),
                                             func.sum(per_question.c.w * per_question.c.w),
                                             func.sum(per_question.c.amount)).group_by(*pgroup)):
            respondents[tuple(row[:4])] = {"n": row[4], "w": row[5] or 0.0, "w2": row[6] or 0.0, "revenue": row[7] or 0.0}
    return {"groups": groups, "respondents": respondents, "values": values}


def period_key(year, part, period) -> str:
    return f"{int(year)}-{int(part):02d}" if period == "month" else f"{int(year)}-Q{int(part)}"


def deal_scorecard(moment: Moment, options: Options) -> dict:
    if options.period not in PERIODS:
        raise ScorecardQueryInvalid(f"period must be one of {', '.join(PERIODS)}")
    if options.by is not None and options.by not in SLICES:
        raise ScorecardQueryInvalid(f"by must be one of {', '.join(SLICES)}")
    if options.weight not in WEIGHTS:
        raise ScorecardQueryInvalid(f"weight must be one of {', '.join(WEIGHTS)}")
    if not 0 < options.cap <= 1:
        raise ScorecardQueryInvalid("cap must be a fraction above 0 and at most 1")
    specs = _specs(moment)
    multi = frozenset(key for key, spec in specs.items() if spec.type == "multi_choice")
    overall = aggregate(moment.id, Options(options.period, None, options.weight, options.cap), multi)
    sliced = aggregate(moment.id, options, multi) if options.by else None
    keys = sorted({(y, p) for (y, p, _s) in overall["groups"]})
    periods, previous = [], None
    for year, part in keys:
        questions = _questions(specs, overall, (year, part, ""), options, previous)
        entry = {"key": period_key(year, part, options.period), **_group_totals(overall, (year, part, "")),
                 "questions": questions, "slices": []}
        if sliced:
            for (y, p, name) in sorted(k for k in sliced["groups"] if k[:2] == (year, part)):
                entry["slices"].append({"kind": options.by, "name": name, **_group_totals(sliced, (y, p, name)),
                                        "questions": _questions(specs, sliced, (y, p, name), options, None)})
        periods.append(entry)
        previous = {q["key"]: q["_result"] for q in questions}
    for entry in periods:
        for question in entry["questions"] + [q for s in entry["slices"] for q in s["questions"]]:
            question.pop("_result", None)
    return {"moment": {"id": moment.id, "name": moment.name}, "period": options.period, "by": options.by,
            "weight": options.weight, "weight_cap_pct": round(options.cap * 100, 1), "periods": periods,
            "calibration": calibration(moment.id)}


def _group_totals(data, key) -> dict:
    group = data["groups"][key]
    return {"deals": group["deals"], "revenue": round(group["revenue"], 2), "n_eff": _kish(group["w"], group["w2"])}


def _kish(w, w2):
    return round(w * w / w2, 2) if w2 else 0.0


def _specs(moment: Moment):
    versions = db.session.scalars(select(QuestionSetVersion).where(
        QuestionSetVersion.question_set_id == moment.question_set_id, QuestionSetVersion.status == "published")
        .order_by(QuestionSetVersion.number)).all()
    specs = {}
    for version in versions:  # the latest version's wording wins; keys stay
        for question in version.questions:
            specs[question.key] = metrics.QuestionSpec.from_question(question)
    return specs


def _questions(specs, data, key, options, previous):
    out = []
    for question_key, spec in specs.items():
        respondents = data["respondents"].get((*key, question_key))
        if respondents is None:
            continue
        rows = data["values"].get((*key, question_key), [])
        result = metrics.summarize(spec, [(num, text, count) for num, text, count, _w, _a, _w2 in rows], respondents["n"])
        before = (previous or {}).get(question_key)
        entry = {"key": question_key, "type": spec.type, "prompt": spec.prompt, "n": respondents["n"],
                 "metrics": result.metrics, "ci95": metrics.intervals(result),
                 "previous": before.metrics if before else None,
                 "delta": metrics.deltas(result, before) if before else None,
                 "significant": metrics.significance(result, before) if before else None,
                 "comparable": before is not None, "_result": result}
        if options.weight == "revenue":
            entry["weighted"] = weighted(spec, rows, respondents)
        out.append(entry)
    return out


def weighted(spec, rows, respondents) -> dict:
    """Revenue-weighted metrics of one question in one group, with the deal
    count, the revenue (uncapped) and Kish's effective n."""
    total_w, n_eff = respondents["w"], (respondents["w"] ** 2 / respondents["w2"] if respondents["w2"] else 0.0)
    result = {"deals": respondents["n"], "revenue": round(respondents["revenue"], 2), "n_eff": round(n_eff, 2),
              "metrics": {}, "ci95": {}}
    if not total_w:
        return result
    if spec.type in ("single_choice", "multi_choice"):
        shares, intervals, revenue = {}, {}, {}
        by_option = {}
        for _num, text, _count, w, amount, _w2 in rows:
            acc = by_option.setdefault(text, [0.0, 0.0])
            acc[0] += w
            acc[1] += amount
        for option in spec.option_keys:
            w, amount = by_option.get(option, [0.0, 0.0])
            estimate = metrics.Proportion(w / total_w * n_eff, n_eff)
            shares[option] = metrics.rounded(100.0 * w / total_w, 1)
            interval = estimate.ci95()
            intervals[option] = [metrics.rounded(b, 1) for b in interval] if interval else None
            revenue[option] = round(amount, 2)
        result["metrics"] = {"option_pct": shares, "option_revenue": revenue}
        result["ci95"] = {"option_pct": intervals}
    elif spec.type in ("scale", "number", "nps"):
        mean = sum(num * w for num, _t, _c, w, _a, _w2 in rows) / total_w
        spread = sum(w * (num - mean) ** 2 for num, _t, _c, w, _a, _w2 in rows) / total_w
        variance = spread * n_eff / (n_eff - 1) if n_eff > 1 else None
        estimate = metrics.SampleMean(n_eff, mean, variance, spec.low if spec.type == "number" else None,
                                      spec.high if spec.type == "number" else None)
        interval = estimate.ci95()
        result["metrics"] = {"mean": metrics.rounded(mean, 2)}
        result["ci95"] = {"mean": [metrics.rounded(b, 2) for b in interval] if interval else None}
        if spec.type == "scale":
            favorable = sum(w for num, _t, _c, w, _a, _w2 in rows if num >= spec.favorable_min) / total_w
            share = metrics.Proportion(favorable * n_eff, n_eff).ci95()
            result["metrics"]["favorable_pct"] = metrics.rounded(100.0 * favorable, 1)
            result["ci95"]["favorable_pct"] = [metrics.rounded(b, 1) for b in share] if share else None
    elif spec.type == "yes_no":
        yes = sum(w for num, _t, _c, w, _a, _w2 in rows if num == 1) / total_w
        share = metrics.Proportion(yes * n_eff, n_eff).ci95()
        result["metrics"] = {"yes_pct": metrics.rounded(100.0 * yes, 1)}
        result["ci95"] = {"yes_pct": [metrics.rounded(b, 1) for b in share] if share else None}
    return result


def _normalized(reason: str | None) -> str | None:
    if reason is None:
        return None
    return "_".join(reason.strip().lower().replace("/", " ").replace("-", " ").split())


def calibration(moment_id: int, question_key: str = LOSS_QUESTION) -> dict:
    """Per segment: the CRM's loss reason against the rep's answer, in deal
    counts, and how often they agree (the CRM's picklist value, normalized,
    equals the rep's option key)."""
    deals, answers = Deal.__table__, DealAnswer.__table__
    segment = func.coalesce(deals.c.segment, "(none)")
    crm = func.coalesce(deals.c.loss_reason, "(none)")
    rows = db.session.execute(
        select(segment, crm, answers.c.value_text, func.count(distinct(deals.c.id)))
        .select_from(answers.join(deals, deals.c.id == answers.c.deal_id))
        .where(answers.c.moment_id == moment_id, answers.c.question_key == question_key, deals.c.outcome == "lost")
        .group_by(segment, crm, answers.c.value_text).order_by(segment, crm, answers.c.value_text)).all()
    segments = {}
    for name, crm_reason, rep_reason, count in rows:
        entry = segments.setdefault(name, {"segment": name, "deals": 0, "agree": 0, "cells": []})
        entry["deals"] += count
        if _normalized(crm_reason) == rep_reason:
            entry["agree"] += count
        entry["cells"].append({"crm": crm_reason, "rep": rep_reason, "deals": count})
    for entry in segments.values():
        entry["agree_pct"] = metrics.rounded(100.0 * entry["agree"] / entry["deals"], 1) if entry["deals"] else None
    return {"question_key": question_key, "segments": list(segments.values())}


CSV_COLUMNS = ("period", "slice_kind", "slice", "question", "metric", "option", "value", "ci_low", "ci_high",
               "deals", "weighted_value", "weighted_ci_low", "weighted_ci_high", "n_eff", "revenue")


def csv_rows(card: dict) -> list[dict]:
    """One row per period, slice, question, metric (and option): the CSV export."""
    rows = []
    for period in card["periods"]:
        groups = [("", "", period)] + [(s["kind"], s["name"], s) for s in period["slices"]]
        for kind, name, group in groups:
            for question in group["questions"]:
                weighted_block = question.get("weighted") or {}
                for metric, value in question["metrics"].items():
                    if metric == "distribution":
                        continue
                    items = value.items() if isinstance(value, dict) else [("", value)]
                    for option, number in items:
                        ci = _pick(question["ci95"].get(metric), option)
                        wvalue = _pick(weighted_block.get("metrics", {}).get(metric), option)
                        wci = _pick(weighted_block.get("ci95", {}).get(metric), option)
                        rows.append({"period": period["key"], "slice_kind": kind, "slice": name, "question": question["key"],
                                     "metric": metric, "option": option, "value": number,
                                     "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                                     "deals": question["n"], "weighted_value": wvalue,
                                     "weighted_ci_low": wci[0] if wci else None, "weighted_ci_high": wci[1] if wci else None,
                                     "n_eff": weighted_block.get("n_eff"), "revenue": weighted_block.get("revenue")})
    return rows


def _pick(value, option):
    if isinstance(value, dict):
        return value.get(option)
    return value if option == "" else None
