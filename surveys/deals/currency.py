"""Deal amounts in one reporting currency (`REPORTING_CURRENCY`, USD unless
configured), at the exchange rate in effect on each deal's close date.

An admin keeps the rates (the rates page, the API, `flask --app wsgi deals
rates import FILE`): per currency, what one unit is worth in the reporting
currency, from a date on. Each deal keeps its converted amount
(`Deal.amount_reporting`), written by one SQL expression (`converted_amount`)
when an event is applied and, after rates change, for every deal in the
changed currencies by an RQ job (`reconvert`). Why stored rather than joined
at read time: the deal scorecard's GROUP BYs then sum one column of the deal
row, at the cost of the raw amount (B9 stays within 1.5x its floor), where a
rate lookup per deal (a correlated subquery or a range join) would be paid on
every scorecard for every deal. Rates change rarely and touch only their
currency's deals.

A deal whose currency has no rate on its close date (or that has no close
date) has no converted amount: the revenue-weighted views leave it out and
say so, per-deal views still count it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from flask import current_app
from sqlalchemy import and_, case, func, null, select, update

from cadence import dispatch
from surveys import payloads
from surveys.audit import record
from surveys.deals.csv_files import ImportReport, read_file
from surveys.deals.models import Deal, ExchangeRate
from surveys.extensions import db

# ISO 4217 codes in use.
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB
TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
""".split())
# No currency is worth anywhere near a million units of another (the dearest
# are a few dollars): a larger rate is a typo, and would overflow amounts.
MAX_RATE = 1_000_000
RATE_COLUMNS = ("currency", "rate", "effective_from")

payloads.declare("ExchangeRateInput", {
    "type": "object", "additionalProperties": False, "required": list(RATE_COLUMNS),
    "properties": {
        "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$", "title": "an ISO 4217 code such as EUR"},
        "rate": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RATE,
                 "description": "units of the reporting currency one unit of `currency` is worth"},
        "effective_from": {"type": "string", "format": "date"},
    },
})


class RateInvalid(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def reporting_currency() -> str:
    return current_app.config.get("REPORTING_CURRENCY") or "USD"


def converted_amount(deals=None):
    """The SQL value of a deal's amount in the reporting currency: the amount
    itself in the reporting currency, else times the currency's latest rate
    effective on or before the close date; NULL without such a rate or
    without a close date."""
    deals = Deal.__table__ if deals is None else deals
    rates = ExchangeRate.__table__
    rate = (select(rates.c.rate).where(rates.c.currency == deals.c.currency, rates.c.effective_from <= deals.c.close_date)
            .order_by(rates.c.effective_from.desc()).limit(1).scalar_subquery())
    return case((deals.c.close_date.is_(None), null()),
                (deals.c.currency == reporting_currency(), deals.c.amount),
                else_=deals.c.amount * rate)


def convert_deals(*where) -> int:
    """Write the converted amount of the deals matching `where`, in the
    caller's transaction. One statement: on PostgreSQL a rate committed while
    an event is being applied is either seen by it or waited for by the
    reconversion's row lock, so no deal keeps an amount from an old rate."""
    return db.session.execute(update(Deal).where(*where).values(amount_reporting=converted_amount())
                              .execution_options(synchronize_session=False)).rowcount


def reconvert(currencies: list[str] | None = None) -> int:
    """The RQ job's work after rates change: convert again every deal in
    `currencies` (every deal when None, after the reporting currency changed)."""
    changed = convert_deals(Deal.currency.in_(sorted(currencies))) if currencies is not None else convert_deals()
    db.session.commit()
    return changed


def queue_reconversion(currencies: list[str]) -> None:
    """Hand the reconversion to a worker; with Redis away, do it here (one
    UPDATE over the currencies' deals) rather than leave amounts stale."""
    try:
        dispatch.deal_amounts(sorted(currencies))
    except Exception as error:  # noqa: BLE001 -- Redis unreachable
        current_app.logger.warning("deal amounts converted in the request: the queue is unavailable (%s)",
                                   type(error).__name__)
        reconvert(currencies)


def check_rate(fields: dict) -> dict:
    """A rate's values from its fields (text from a file or a form, or JSON),
    or RateInvalid naming every problem by field."""
    errors = {}
    code = str(fields.get("currency") or "").strip().upper()
    if not code:
        errors["currency"] = "missing currency"
    elif code not in CURRENCIES:
        errors["currency"] = f"unknown currency {fields.get('currency')!r} (an ISO 4217 code)"
    elif code == reporting_currency():
        errors["currency"] = f"{code} is the reporting currency: its rate is always 1"
    raw_rate = fields.get("rate")
    try:
        rate = math.nan if isinstance(raw_rate, bool) else float(str(raw_rate).replace(",", "").strip())
    except ValueError:
        rate = math.nan
    if raw_rate in (None, ""):
        errors["rate"] = "missing rate"
    elif not math.isfinite(rate) or rate <= 0:
        errors["rate"] = f"rate {raw_rate!r} is not a positive number"
    elif rate > MAX_RATE:
        errors["rate"] = f"rate {raw_rate!r} is over {MAX_RATE:,}: is it the wrong way round?"
    raw_date = fields.get("effective_from")
    try:
        effective_from = raw_date if isinstance(raw_date, date) else date.fromisoformat(str(raw_date or "").strip())
    except ValueError:
        effective_from = None
        errors["effective_from"] = ("missing effective_from" if raw_date in (None, "")
                                    else f"effective_from {raw_date!r} is not a date (YYYY-MM-DD)")
    if errors:
        raise RateInvalid(errors)
    return {"currency": code, "rate": rate, "effective_from": effective_from}


def _upsert(values: dict) -> str:
    """Add the rate, or change the rate of that currency and date: 'added',
    'updated' or 'unchanged'."""
    existing = db.session.scalar(select(ExchangeRate).where(
        ExchangeRate.currency == values["currency"], ExchangeRate.effective_from == values["effective_from"]))
    if existing is None:
        db.session.add(ExchangeRate(**values))
        return "added"
    if existing.rate == values["rate"]:
        return "unchanged"
    existing.rate = values["rate"]
    return "updated"


def set_rate(actor, fields: dict) -> tuple[ExchangeRate, str]:
    """Add or change one rate (the page's form, the API); audited; the
    currency's deals are converted again by a worker."""
    values = check_rate(fields)
    change = _upsert(values)
    db.session.flush()
    rate = db.session.scalar(select(ExchangeRate).where(
        ExchangeRate.currency == values["currency"], ExchangeRate.effective_from == values["effective_from"]))
    record(actor, f"exchange_rate.{change}", f"exchange_rate:{rate.id}", rate_dict(rate))
    db.session.commit()
    if change != "unchanged":
        queue_reconversion([rate.currency])
    return rate, change


def delete_rate(actor, rate: ExchangeRate) -> None:
    record(actor, "exchange_rate.deleted", f"exchange_rate:{rate.id}", rate_dict(rate))
    code = rate.currency
    db.session.delete(rate)
    db.session.commit()
    queue_reconversion([code])


@dataclass
class RateImportReport(ImportReport):
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def imported(self) -> str:
        return f"imported {self.rows} rates ({self.added} added, {self.updated} changed, {self.unchanged} unchanged)"


def import_rates(source: bytes | str, actor=None, dry_run: bool = False) -> RateImportReport:
    """Rates from a CSV (currency, rate, effective_from): every row checked
    first, one `line N: reason` per bad row, and any bad row imports nothing.
    A currency and date already known takes the file's rate."""
    report = RateImportReport(dry_run=dry_run)
    try:
        _text, rows = read_file(source, RATE_COLUMNS, RATE_COLUMNS, "currency, rate, effective_from")
    except ValueError as error:
        report.file_error = str(error)
        return report
    report.rows = len(rows)
    good, seen = [], {}
    for line, row in rows:
        try:
            values = check_rate(row)
        except RateInvalid as invalid:
            report.bad.append((line, "; ".join(invalid.errors.values())))
            continue
        key = (values["currency"], values["effective_from"])
        if key in seen:
            report.bad.append((line, f"{key[0]} from {key[1].isoformat()} is also on line {seen[key]}"))
            continue
        seen[key] = line
        good.append(values)
    if report.rejected or dry_run:
        return report
    for values in good:
        change = _upsert(values)
        setattr(report, change, getattr(report, change) + 1)
    changed = sorted({values["currency"] for values in good})
    record(actor, "exchange_rates.imported", "exchange_rates",
           {"rows": report.rows, "added": report.added, "updated": report.updated, "currencies": changed})
    db.session.commit()
    if report.added or report.updated:
        queue_reconversion(changed)
    return report


def list_rates() -> list[ExchangeRate]:
    return db.session.scalars(select(ExchangeRate).order_by(ExchangeRate.currency, ExchangeRate.effective_from.desc())).all()


def deals_without_rate() -> list[tuple[str, int]]:
    """Closed-dated deals with no converted amount, per currency: what the
    revenue-weighted views leave out until a rate covers them."""
    return [tuple(row) for row in db.session.execute(
        select(Deal.currency, func.count()).where(and_(Deal.amount_reporting.is_(None), Deal.close_date.is_not(None)))
        .group_by(Deal.currency).order_by(func.count().desc(), Deal.currency))]


def rate_dict(rate: ExchangeRate) -> dict:
    return {"id": rate.id, "currency": rate.currency, "rate": rate.rate, "reporting_currency": reporting_currency(),
            "effective_from": rate.effective_from.isoformat()}
