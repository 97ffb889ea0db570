"""Deal scorecards: a moment's answers per period of close date, overall and
cut by outcome, competitor, deal size, segment, region or product line; per
deal and weighted by revenue; and the CRM's loss reason against the rep's.

The database does the aggregation (GROUP BY month and slice over answered
invitations joined to their deals, and over their answers); `surveys.metrics`
turns the per-deal value counts into the metrics, intervals and
period-over-period tests of a cadence scorecard.

Revenue weights: within a group (one period, one slice), deal i weighs
w_i = min(amount_i, cap x total), amounts in the reporting currency
(`Deal.amount_reporting`, see `surveys.deals.currency`), total being the
amount of every answered deal of the group and cap 10 % unless configured
(at least 1 %: a cap c lets up to 1/c deals per group over it, each fetched
into Python), so no single deal decides a share. A deal whose currency had
no rate on its close date has no converted amount: SQL's SUM and COUNT of
the column leave it out of every weighted figure, the group says how many
deals in which currency were left out, and the per-deal view counts it.
Weighted shares and means come with the deal count and Kish's effective
sample size n_eff = (sum w)^2 / sum w^2, which their intervals use
(Wilson for shares, t for means, with n_eff in place of n).

The GROUP BYs sum uncapped amounts and their squares, so they need no group
total; a deal over the cap (at most 1/cap of a group's deals) is then fetched
with its answers and its weight corrected in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, Float, String, case, column, distinct, func, literal, null, select, values
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from surveys import metrics, payloads
from surveys.deals import currency
from surveys.deals.models import Deal, DealAnswer, DealProduct, Moment, MomentInvitation
from surveys.extensions import db
from surveys.models import QuestionSetVersion

PERIODS = ("month", "quarter")
SLICES = ("outcome", "competitor", "size", "segment", "region", "product")
WEIGHTS = ("deal", "revenue")
DEFAULT_CAP = 0.10
# The smallest cap: the deals over it, up to 1/cap per group, are corrected in Python.
MIN_CAP = 0.01
# Deal-size bands by amount in the reporting currency; a deal without a rate
# on its close date is in a band of its own.
SIZE_BANDS = ((10_000, "under 10k"), (50_000, "10k-50k"), (250_000, "50k-250k"), (None, "250k and over"))
NO_RATE_BAND = "(no rate)"
LOSS_QUESTION = "loss_reason"


class ScorecardQueryInvalid(ValueError):
    pass


# The scorecard's query parameters as the API checks them, cap as a number.
payloads.declare("DealScorecardQuery", {
    "type": "object", "additionalProperties": True,
    "properties": {
        "period": {"enum": list(PERIODS)},
        "by": {"enum": list(SLICES)},
        "weight": {"enum": list(WEIGHTS)},
        "cap": {"type": "number", "minimum": MIN_CAP, "maximum": 1,
                "description": "the largest share of its group's total one deal may weigh (0.01 to 1)"},
        "format": {"enum": ["json", "csv"]},
    },
})


@dataclass(frozen=True)
class Options:
    period: str = "quarter"
    by: str | None = None
    weight: str = "deal"
    cap: float = DEFAULT_CAP


def size_band_expression(amount):
    whens = [(amount.is_(None), NO_RATE_BAND)]
    for upper, label in SIZE_BANDS:
        if upper is None:
            break
        whens.append((amount < upper, label))
    return case(*whens, else_=SIZE_BANDS[-1][1])


def _slice_column(by, deal_table):
    if by is None:
        return literal("")
    if by == "size":
        return size_band_expression(deal_table.c.amount_reporting)
    if by == "product":
        return func.coalesce(DealProduct.__table__.c.product, "(none)")
    field = {"outcome": deal_table.c.outcome, "competitor": deal_table.c.competitor,
              "segment": deal_table.c.segment, "region": deal_table.c.region}[by]
    return func.coalesce(field, "(none)")


class _Month(FunctionElement):
    """The month of a date, the grain of the GROUP BYs: on SQLite a prefix of
    its ISO text ('YYYY-MM'), on PostgreSQL date_trunc (a timestamp); both
    cheaper per row than extracting the year and the month apart."""

    type = String()
    name = "deal_month"
    inherit_cache = True


@compiles(_Month)
def _month_postgresql(element, compiler, **kw):
    return f"date_trunc('month', {compiler.process(element.clauses, **kw)})"


@compiles(_Month, "sqlite")
def _month_sqlite(element, compiler, **kw):
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 7)"


class _Bytewise(FunctionElement):
    """Text grouped byte by byte: PostgreSQL sorts group keys by the
    database's collation otherwise, slower for the same groups (equality is
    the same); SQLite compares bytes already."""

    type = String()
    name = "bytewise"
    inherit_cache = True


@compiles(_Bytewise)
def _bytewise_postgresql(element, compiler, **kw):
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


@compiles(_Bytewise, "sqlite")
def _bytewise_sqlite(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


def _group_of(month, slice_name: str, period: str) -> tuple:
    year, number = (int(month[:4]), int(month[5:7])) if isinstance(month, str) else (month.year, month.month)
    return (year, number if period == "month" else (number + 2) // 3, slice_name)


def _period_bounds(year: int, part: int, period: str) -> tuple[date, date]:
    first = part if period == "month" else 3 * part - 2
    last = first + (1 if period == "month" else 3)
    return date(year, first, 1), (date(year + 1, 1, 1) if last > 12 else date(year, last, 1))


class _Sums:
    """Uncapped sums of one group, question or value: deals, deals with a
    converted amount, amount, amount squared."""

    __slots__ = ("n", "c", "a", "a2", "top")

    def __init__(self):
        self.n, self.c, self.a, self.a2, self.top = 0, 0, 0.0, 0.0, None

    def add(self, n, c, a, a2, top=None):
        self.n += n
        self.c += c
        self.a += a or 0.0
        self.a2 += a2 or 0.0
        if top is not None and (self.top is None or top > self.top):
            self.top = top


def _sums(moment_id: int, options: Options, specs: dict) -> dict:
    """The SQL part, two GROUP BYs by month and slice: per group the deals,
    their amount and its square (and the largest amount), split by which
    multi-choice questions each deal answered (so those questions' respondents
    are counted once per deal); per question value the same sums. Everything
    is uncapped; `_weigh` corrects the few deals above the cap."""
    deals, invitations, answers = Deal.__table__, MomentInvitation.__table__, DealAnswer.__table__
    products = DealProduct.__table__
    month = _Month(deals.c.close_date)
    slice_name = _Bytewise(_slice_column(options.by, deals))
    amount = deals.c.amount_reporting
    multi = sorted(key for key, spec in specs.items() if spec.type == "multi_choice")
    source = invitations.join(deals, deals.c.id == invitations.c.deal_id)
    if options.by == "product":
        source = source.outerjoin(products, products.c.deal_id == deals.c.id)
    flags = []
    for number, key in enumerate(multi):  # whether the deal answered this multi-choice question
        answered = (select(answers.c.invitation_id).where(answers.c.moment_id == moment_id, answers.c.question_key == key)
                    .group_by(answers.c.invitation_id).subquery(f"answered_{number}"))
        source = source.outerjoin(answered, answered.c.invitation_id == invitations.c.id)
        flags.append(answered.c.invitation_id.is_not(None))
    groups, respondents = {}, {}
    rows = db.session.execute(
        select(month, slice_name, *flags, func.count(), func.count(amount), func.sum(amount), func.sum(amount * amount),
               func.max(amount))
        .select_from(source)
        .where(invitations.c.moment_id == moment_id, invitations.c.responded_at.is_not(None), deals.c.close_date.is_not(None))
        .group_by(month, slice_name, *flags))
    for row in rows:
        key = _group_of(row[0], row[1], options.period)
        n, c, a, a2, top = row[2 + len(multi):]
        groups.setdefault(key, _Sums()).add(n, c, a, a2, top)
        for question_key, answered in zip(multi, row[2:2 + len(multi)]):
            if answered:
                respondents.setdefault((*key, question_key), _Sums()).add(n, c, a, a2)
    # Answers exist only for answered invitations (store_answers writes both
    # in one transaction), so the values need no join to the invitations.
    # A text answer's words are not aggregated: only its count is shown.
    text_keys = sorted(key for key, spec in specs.items() if spec.type == "text")
    value_text = case((answers.c.question_key.in_(text_keys), null()), else_=answers.c.value_text) if text_keys else answers.c.value_text
    question_key, value_text = _Bytewise(answers.c.question_key), _Bytewise(value_text)
    source = answers.join(deals, deals.c.id == answers.c.deal_id)
    if options.by == "product":
        source = source.outerjoin(products, products.c.deal_id == deals.c.id)
    by_value = {}
    rows = db.session.execute(
        select(month, slice_name, question_key, answers.c.value_num, value_text,
               func.count(), func.count(amount), func.sum(amount), func.sum(amount * amount))
        .select_from(source).where(answers.c.moment_id == moment_id, deals.c.close_date.is_not(None))
        .group_by(month, slice_name, question_key, answers.c.value_num, value_text))
    for row in rows:
        key = (*_group_of(row[0], row[1], options.period), row[2])
        by_value.setdefault(key, {}).setdefault((row[3], row[4]), _Sums()).add(*row[5:9])
    for key, counts in by_value.items():
        if key[3] not in multi:  # one row per deal: the value counts add up to the respondents
            total = respondents.setdefault(key, _Sums())
            for sums in counts.values():
                total.add(sums.n, sums.c, sums.a, sums.a2)
    left_out = _left_out(moment_id, options) if any(s.c < s.n for s in groups.values()) else {}
    return {"groups": groups, "respondents": respondents, "values": by_value, "text_keys": text_keys, "left_out": left_out}


def _left_out(moment_id: int, options: Options) -> dict:
    """Per group, the answered deals without a converted amount, by currency
    (only run when some group has one)."""
    deals, invitations = Deal.__table__, MomentInvitation.__table__
    slice_name = _slice_column(options.by, deals)
    source = invitations.join(deals, deals.c.id == invitations.c.deal_id)
    if options.by == "product":
        source = source.outerjoin(DealProduct.__table__, DealProduct.__table__.c.deal_id == deals.c.id)
    month = _Month(deals.c.close_date)
    found = {}
    for row_month, name, code, count in db.session.execute(
            select(month, slice_name, deals.c.currency, func.count()).select_from(source)
            .where(invitations.c.moment_id == moment_id, invitations.c.responded_at.is_not(None),
                   deals.c.close_date.is_not(None), deals.c.amount_reporting.is_(None))
            .group_by(month, slice_name, deals.c.currency)):
        by_currency = found.setdefault(_group_of(row_month, name, options.period), {})
        by_currency[code] = by_currency.get(code, 0) + count
    return found


def _overall(sliced: dict) -> dict:
    """The overall view from slices that partition the deals: their sums added up."""
    def fold(source):
        folded = {}
        for key, sums in source.items():
            total = folded.setdefault((key[0], key[1], "", *key[3:]), _Sums())
            total.add(sums.n, sums.c, sums.a, sums.a2, sums.top)
        return folded

    folded_values = {}
    for key, by_value in sliced["values"].items():
        target = folded_values.setdefault((key[0], key[1], "", key[3]), {})
        for value, sums in by_value.items():
            target.setdefault(value, _Sums()).add(sums.n, sums.c, sums.a, sums.a2)
    left_out = {}
    for (year, part, _name), by_currency in sliced["left_out"].items():
        target = left_out.setdefault((year, part, ""), {})
        for code, count in by_currency.items():
            target[code] = target.get(code, 0) + count
    return {"groups": fold(sliced["groups"]), "respondents": fold(sliced["respondents"]), "values": folded_values,
            "text_keys": sliced["text_keys"], "left_out": left_out}


_IDS_PER_QUERY = 5000  # well under SQLite's limit of bound parameters


def _over_the_cap(moment_id: int, options: Options, data: dict) -> list:
    """The deals weighing more than the cap of their group: (invitation id,
    group, amount, its answers). At most 1/cap per group, found in SQL
    against the limits of the groups whose largest deal is over."""
    thresholds = []
    for (year, part, name), sums in data["groups"].items():
        limit = options.cap * sums.a
        if sums.top is not None and sums.top > limit:
            thresholds.append((*_period_bounds(year, part, options.period), name, limit))
    if not thresholds:
        return []
    deals, invitations, answers = Deal.__table__, MomentInvitation.__table__, DealAnswer.__table__
    limits = values(column("first", Date), column("after", Date), column("slice", String), column("cap", Float),
                    name="limits").data(thresholds).cte("limits")
    slice_name = _slice_column(options.by, deals)
    source = invitations.join(deals, deals.c.id == invitations.c.deal_id)
    if options.by == "product":
        source = source.outerjoin(DealProduct.__table__, DealProduct.__table__.c.deal_id == deals.c.id)
    # Each deal's own group's limit, looked up only for the few deals above
    # the lowest limit (a join would let the planner scan the deals once per group).
    own_limit = (select(limits.c.cap).where(limits.c.slice == slice_name, limits.c.first <= deals.c.close_date,
                                            deals.c.close_date < limits.c.after).scalar_subquery())
    amount = deals.c.amount_reporting
    found = db.session.execute(
        select(invitations.c.id, _Month(deals.c.close_date), slice_name, amount).select_from(source)
        .where(invitations.c.moment_id == moment_id, invitations.c.responded_at.is_not(None),
               deals.c.close_date.is_not(None), amount > min(row[-1] for row in thresholds),
               amount > own_limit)).all()
    text_keys = data["text_keys"]
    value_text = case((answers.c.question_key.in_(text_keys), null()), else_=answers.c.value_text) if text_keys else answers.c.value_text
    given, ids = {}, sorted({row[0] for row in found})
    for start in range(0, len(ids), _IDS_PER_QUERY):
        for invitation_id, key, num, text in db.session.execute(
                select(answers.c.invitation_id, answers.c.question_key, answers.c.value_num, value_text)
                .where(answers.c.invitation_id.in_(ids[start:start + _IDS_PER_QUERY]))):
            given.setdefault(invitation_id, []).append((key, num, text))
    return [(invitation_id, _group_of(month, name, options.period), amount, given.get(invitation_id, []))
            for invitation_id, month, name, amount in found]


def _weigh(data: dict, heavy: list, cap: float) -> dict:
    """Capped weights from the uncapped sums: each deal over its group's cap
    weighs cap x total instead of its amount, so its group, the values it
    answered and the questions it answered lose the difference (and the
    difference of the squares)."""
    corrections = {}
    for invitation_id, key, amount, given in heavy:
        limit = cap * data["groups"][key].a
        if amount > limit:
            corrections[(invitation_id, key)] = (limit - amount, limit * limit - amount * amount, given)
    groups = {key: {"deals": s.n, "weighted_deals": s.c, "revenue": s.a, "w": s.a, "w2": s.a2,
                    "left_out": data["left_out"].get(key, {})} for key, s in data["groups"].items()}
    respondents = {key: {"n": s.n, "c": s.c, "w": s.a, "w2": s.a2, "revenue": s.a} for key, s in data["respondents"].items()}
    weights = {key: {value: [s.a, s.a2] for value, s in by_value.items()} for key, by_value in data["values"].items()}
    for (_invitation_id, key), (dw, dw2, given) in corrections.items():
        groups[key]["w"] += dw
        groups[key]["w2"] += dw2
        for question_key in {question_key for question_key, _num, _text in given}:
            respondents[(*key, question_key)]["w"] += dw
            respondents[(*key, question_key)]["w2"] += dw2
        for question_key, num, text in given:
            weight = weights[(*key, question_key)][(num, text)]
            weight[0] += dw
            weight[1] += dw2
    out_values = {}
    for key, by_value in data["values"].items():
        out_values[key] = [(num, text, s.n, weights[key][(num, text)][0], s.a, weights[key][(num, text)][1])
                           for (num, text), s in by_value.items()]
    return {"groups": groups, "respondents": respondents, "values": out_values}


def aggregate(moment_id: int, options: Options, specs: dict) -> tuple[dict, dict | None]:
    """The overall and the sliced groups with their capped weights: plain
    dictionaries keyed by group (year, part, slice). Slices that partition the
    deals (every cut but product lines) give the overall view by addition."""
    unsliced = Options(options.period, None, options.weight, options.cap)
    if options.by is None or options.by == "product":
        data = _sums(moment_id, unsliced, specs)
        overall = _weigh(data, _over_the_cap(moment_id, unsliced, data), options.cap)
        if options.by is None:
            return overall, None
        data = _sums(moment_id, options, specs)
        return overall, _weigh(data, _over_the_cap(moment_id, options, data), options.cap)
    data = _sums(moment_id, options, specs)
    heavy = _over_the_cap(moment_id, options, data)
    # A deal over its period's cap is over its slice's (a smaller total), so
    # the slices' heavy deals include every one the overall view corrects.
    overall = _weigh(_overall(data), [(invitation_id, (key[0], key[1], ""), amount, given)
                                      for invitation_id, key, amount, given in heavy], options.cap)
    return overall, _weigh(data, heavy, options.cap)


def period_key(year, part, period) -> str:
    return f"{int(year)}-{int(part):02d}" if period == "month" else f"{int(year)}-Q{int(part)}"


def deal_scorecard(moment: Moment, options: Options) -> dict:
    if options.period not in PERIODS:
        raise ScorecardQueryInvalid(f"period must be one of {', '.join(PERIODS)}")
    if options.by is not None and options.by not in SLICES:
        raise ScorecardQueryInvalid(f"by must be one of {', '.join(SLICES)}")
    if options.weight not in WEIGHTS:
        raise ScorecardQueryInvalid(f"weight must be one of {', '.join(WEIGHTS)}")
    if not MIN_CAP <= options.cap <= 1:
        raise ScorecardQueryInvalid(f"cap must be a fraction from {MIN_CAP} to 1")
    specs = _specs(moment)
    overall, sliced = aggregate(moment.id, options, specs)
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
            "weight": options.weight, "weight_cap_pct": round(options.cap * 100, 1),
            "reporting_currency": currency.reporting_currency(), "periods": periods,
            "calibration": calibration(moment.id, single_valued=LOSS_QUESTION in specs and specs[LOSS_QUESTION].type != "multi_choice")}


def _group_totals(data, key) -> dict:
    """A group's deal count (every answered deal), and for the weighted view
    the deals it weighs, their revenue, Kish's n and the deals left out for
    want of a rate (by currency, most first)."""
    group = data["groups"][key]
    left_out = sorted(group["left_out"].items(), key=lambda item: (-item[1], item[0]))
    return {"deals": group["deals"], "weighted_deals": group["weighted_deals"], "revenue": round(group["revenue"], 2),
            "n_eff": _kish(group["w"], group["w2"]),
            "left_out": [{"currency": code, "deals": count, "reason": "no rate"} for code, count in left_out]}


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
    """Revenue-weighted metrics of one question in one group, with the count
    of deals weighed (those with a converted amount), the revenue (uncapped,
    in the reporting currency) and Kish's effective n."""
    total_w, n_eff = respondents["w"], (respondents["w"] ** 2 / respondents["w2"] if respondents["w2"] else 0.0)
    result = {"deals": respondents["c"], "revenue": round(respondents["revenue"], 2), "n_eff": round(n_eff, 2),
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


def calibration(moment_id: int, question_key: str = LOSS_QUESTION, single_valued: bool = False) -> dict:
    """Per segment: the CRM's loss reason against the rep's answer, in deal
    counts, and how often they agree (the CRM's picklist value, normalized,
    equals the rep's option key). A single-valued question has one answer
    row per deal, so its rows are counted without DISTINCT."""
    deals, answers = Deal.__table__, DealAnswer.__table__
    deal_count = func.count() if single_valued else func.count(distinct(deals.c.id))
    segment = func.coalesce(deals.c.segment, "(none)")
    crm = func.coalesce(deals.c.loss_reason, "(none)")
    rows = db.session.execute(
        select(segment, crm, answers.c.value_text, deal_count)
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
               "deals", "weighted_value", "weighted_ci_low", "weighted_ci_high", "n_eff", "revenue", "currency")


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
                                     "n_eff": weighted_block.get("n_eff"), "revenue": weighted_block.get("revenue"),
                                     "currency": card["reporting_currency"]})
    return rows


def _pick(value, option):
    if isinstance(value, dict):
        return value.get(option)
    return value if option == "" else None
