"""Persistence of the filing service: gradings (定级记录)."""
from sqlalchemy import select

from contracts import NotFound
from runtime.db import utcnow

from .models import gradings


def _iso(value):
    return value.isoformat() + "Z"


def record_grading(conn, *, code, request_id, grading, level, business_level, service_level,
                   level_claimed, filing_required, yearly_test_required, verdict, signed_by, cite):
    conn.execute(gradings.insert().values(
        code=code,
        request_id=request_id,
        level=level,
        business_level=business_level,
        service_level=service_level,
        business_object=grading["business_object"],
        business_degree=grading["business_degree"],
        service_object=grading["service_object"],
        service_degree=grading["service_degree"],
        level_claimed=level_claimed,
        filing_required=filing_required,
        yearly_test_required=yearly_test_required,
        verdict=verdict,
        signed_by=signed_by,
        cite=cite,
        graded_at=utcnow(),
    ))


def latest_grading(conn, code):
    row = conn.execute(
        select(gradings).where(gradings.c.code == code).order_by(gradings.c.id.desc()).limit(1)
    ).first()
    if row is None:
        raise NotFound(message_zh=f"项目 {code} 尚无定级记录", message_en=f"no grading recorded for project {code}",
                       field="code")
    data = dict(row._mapping)
    data.pop("id")
    data["graded_at"] = _iso(data["graded_at"])
    return data
