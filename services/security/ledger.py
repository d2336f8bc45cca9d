"""The compliance ledger (合规台账): persistence of one row per issued opinion."""
from sqlalchemy import insert, select

from runtime.db import utcnow

from . import domain
from .models import compliance


def _iso(value):
    return value.isoformat() + "Z"


_INSERT = insert(compliance)


def record_opinion(conn, request, payload):
    """Write the issued opinion into the ledger (in the issuing transaction)."""
    conn.execute(_INSERT, dict(
        code=payload["code"],
        unit_id=request["project"]["unit_id"],
        agency=payload["agency"],
        subject=payload["subject"],
        stage=payload["stage"],
        request_id=payload["request_id"],
        verdict=payload["verdict"],
        signed_by=payload["signed_by"],
        at=utcnow(),
    ))


def compliance_of(conn, code):
    """The project's ledger entries, oldest first, and the standing they add up to."""
    rows = conn.execute(
        select(compliance).where(compliance.c.code == code).order_by(compliance.c.at, compliance.c.id)
    ).all()
    entries = [{
        "request_id": row.request_id,
        "agency": row.agency,
        "subject": row.subject,
        "stage": row.stage,
        "verdict": row.verdict,
        "signed_by": row.signed_by,
        "at": row.at,
    } for row in rows]
    status = domain.compliance_status(entries)
    for entry in entries:
        entry["at"] = _iso(entry["at"])
    return {
        "code": code,
        "unit_id": rows[-1].unit_id if rows else None,
        "status": status,
        "entries": entries,
    }
