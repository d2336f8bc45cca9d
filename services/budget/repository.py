"""Persistence of the budget service: envelopes, cost reviews and allocations."""

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from contracts import Conflict, NotFound
from contracts.enums import FUNDING_SOURCES, POOLS
from runtime import jsoncodec
from runtime.db import utcnow

from .domain import Envelope
from .models import allocations, cost_review_lines, cost_reviews, envelopes


def _iso(value):
    return value.isoformat() + "Z"


# ---- envelopes ----------------------------------------------------------------------

def load_envelope_defaults(path):
    """``{source: total}`` from ``envelopes.yaml``, checked (known sources, whole yuan)."""
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    totals = raw.get("totals") or {}
    for source, total in totals.items():
        if source not in FUNDING_SOURCES:
            raise ValueError(f"{path}: totals: unknown funding source {source!r}")
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"{path}: totals.{source} must be whole yuan >= 0")
    return totals


def seed_envelopes(core, defaults, years):
    """Seed ``defaults`` for each of ``years`` when the envelopes table is empty."""
    try:
        with core.transaction() as tx:
            if tx.conn.execute(select(func.count()).select_from(envelopes)).scalar():
                return 0
            now = utcnow()
            rows = [{"year": year, "source": source, "total": total, "committed": 0, "updated_at": now}
                    for year in years for source, total in defaults.items()]
            if rows:
                tx.conn.execute(envelopes.insert(), rows)
            return len(rows)
    except IntegrityError:  # another replica seeded at the same moment
        return 0


def _envelope_record(row):
    return {
        "year": row.year,
        "source": row.source,
        "source_name": FUNDING_SOURCES.get(row.source, row.source),
        "total": row.total,
        "committed": row.committed,
        "remaining": row.total - row.committed,
    }


def find_envelope(conn, year, source):
    row = conn.execute(
        select(envelopes).where(envelopes.c.year == year, envelopes.c.source == source)
    ).first()
    if row is None:
        return None
    return Envelope(year=row.year, source=row.source, total=row.total, committed=row.committed)


def set_envelope(conn, year, source, total):
    row = conn.execute(
        select(envelopes).where(envelopes.c.year == year, envelopes.c.source == source)
    ).first()
    now = utcnow()
    if row is None:
        conn.execute(envelopes.insert().values(year=year, source=source, total=total, committed=0, updated_at=now))
    else:
        if total < row.committed:
            raise Conflict(
                message_zh=f"预算额度 {total} 元低于已安排金额 {row.committed} 元",
                message_en=f"total {total} yuan is below the {row.committed} yuan already committed",
                field="total",
            )
        conn.execute(update(envelopes).where(envelopes.c.year == year, envelopes.c.source == source)
                     .values(total=total, updated_at=now))
    return _envelope_record(conn.execute(
        select(envelopes).where(envelopes.c.year == year, envelopes.c.source == source)
    ).one())


def list_envelopes(conn, year=None):
    query = select(envelopes).order_by(envelopes.c.year, envelopes.c.source)
    if year is not None:
        query = query.where(envelopes.c.year == year)
    return [_envelope_record(row) for row in conn.execute(query)]


def commit_to_envelope(conn, year, source, amount):
    """Add ``amount`` to the envelope's committed sum; True if it fitted the remaining room."""
    envelope = find_envelope(conn, year, source)
    if envelope is None:
        conn.execute(envelopes.insert().values(year=year, source=source, total=0, committed=amount,
                                               updated_at=utcnow()))
        return amount == 0
    conn.execute(update(envelopes).where(envelopes.c.year == year, envelopes.c.source == source)
                 .values(committed=envelopes.c.committed + amount, updated_at=utcnow()))
    return envelope.remaining >= amount


# ---- cost reviews -------------------------------------------------------------------

def store_cost_review(conn, *, code, request_id, origin, review, cite):
    result = conn.execute(cost_reviews.insert().values(
        code=code,
        request_id=request_id,
        origin=origin,
        requested_amount=review["requested_amount"],
        reviewed_amount=review["reviewed_amount"],
        reduction=review["reduction"],
        cite=cite,
        reviewed_at=utcnow(),
    ))
    review_id = result.inserted_primary_key[0]
    rows = [{
        "review_id": review_id,
        "line_no": line["line_no"],
        "item": line["item"],
        "category": line["category"],
        "quantity": line["quantity"],
        "unit_price": line["unit_price"],
        "basis": line["basis"],
        "requested": line["requested"],
        "reviewed_unit_price": line["reviewed_unit_price"],
        "reviewed": line["reviewed"],
        "reasons": jsoncodec.dumps(line["reasons"]),
    } for line in review["lines"]]
    if rows:
        conn.execute(cost_review_lines.insert(), rows)
    return review_id


def cost_review(conn, *, code=None, review_id=None):
    """A stored review by id, or the newest review of ``code``."""
    query = select(cost_reviews)
    if review_id is not None:
        query = query.where(cost_reviews.c.id == review_id)
    else:
        query = query.where(cost_reviews.c.code == code).order_by(cost_reviews.c.id.desc()).limit(1)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(message_zh=f"项目 {code} 尚无造价评审记录", message_en=f"no cost review recorded for project {code}",
                       field="code")
    lines = conn.execute(
        select(cost_review_lines).where(cost_review_lines.c.review_id == row.id).order_by(cost_review_lines.c.line_no)
    ).all()
    return {
        "review_id": row.id,
        "code": row.code,
        "request_id": row.request_id,
        "origin": row.origin,
        "requested_amount": row.requested_amount,
        "reviewed_amount": row.reviewed_amount,
        "reduction": row.reduction,
        "cite": row.cite,
        "reviewed_at": _iso(row.reviewed_at),
        "lines": [{
            "line_no": line.line_no,
            "item": line.item,
            "category": line.category,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "basis": line.basis,
            "requested": line.requested,
            "reviewed_unit_price": line.reviewed_unit_price,
            "reviewed": line.reviewed,
            "reasons": jsoncodec.loads(line.reasons),
        } for line in lines],
    }


# ---- allocations --------------------------------------------------------------------

def latest_application(conn, desk_table, code):
    """The application of the newest opinion request budget received for ``code``, or None."""
    row = conn.execute(
        select(desk_table.c.request).where(desk_table.c.code == code)
        .order_by(desk_table.c.received_at.desc()).limit(1)
    ).first()
    return jsoncodec.loads(row.request)["application"] if row else None


def allocation_exists(conn, code):
    return conn.execute(select(allocations.c.code).where(allocations.c.code == code)).first() is not None


def record_allocation(conn, **values):
    conn.execute(allocations.insert().values(recorded_at=utcnow(), **values))


def _allocation_record(row):
    data = dict(row._mapping)
    data["source_name"] = FUNDING_SOURCES.get(row.source, row.source)
    data["channel_name"] = POOLS.get(row.channel) if row.channel else None
    data["recorded_at"] = _iso(row.recorded_at)
    return data


def get_allocation(conn, code):
    row = conn.execute(select(allocations).where(allocations.c.code == code)).first()
    if row is None:
        raise NotFound(message_zh=f"项目 {code} 尚无资金安排记录", message_en=f"no allocation recorded for project {code}",
                       field="code")
    return _allocation_record(row)


def list_allocations(conn, year=None):
    query = select(allocations).order_by(allocations.c.year, allocations.c.approved_on, allocations.c.code)
    if year is not None:
        query = query.where(allocations.c.year == year)
    return [_allocation_record(row) for row in conn.execute(query)]
