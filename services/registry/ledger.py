"""Persistence of the registry: the ledger, its history, code counters and the catalog.

Functions take a SQLAlchemy conn (from ``db.transaction()`` or ``db.read()``) and
speak in plain dicts; the use cases decide, these only read and write.
"""
import datetime as dt

from sqlalchemy import bindparam, func, insert, select, text, update

from contracts import NotFound
from contracts.enums import POOLS, PROJECT_KINDS, PROJECT_STATES
from contracts.rpc_registry import SYSTEM_STATUSES
from runtime import jsoncodec
from runtime.db import utcnow
from runtime.sql import Prepared

from .models import code_counters, project_history, projects, systems


def _iso(value):
    return value.isoformat() + "Z" if isinstance(value, dt.datetime) else value


# Statements used on every project are built once, with bound parameters, and run on the
# cursor (runtime.sql.Prepared): building a statement, and SQLAlchemy's work around each
# execution, cost more than SQLite running it (bench/README.md). An UPDATE without
# ``.values()`` sets the columns named in the parameters it is given.
_PROJECT = select(projects).where(projects.c.code == bindparam("code"))
_FIND_PROJECT = Prepared(_PROJECT)
_LOCK_PROJECT = Prepared(_PROJECT.with_for_update())
_INSERT_PROJECT = Prepared(insert(projects))
_UPDATE_PROJECT = Prepared(update(projects).where(projects.c.code == bindparam("b_code")))
_INSERT_HISTORY = Prepared(insert(project_history))
_HISTORY = Prepared(select(project_history).where(project_history.c.code == bindparam("code"))
                    .order_by(project_history.c.id))
_SYSTEM_OF_PROJECT = select(systems).where(systems.c.project_code == bindparam("project_code")).order_by(systems.c.id)
_SYSTEM_BY_NAME = select(systems).where(systems.c.unit_id == bindparam("unit_id"),
                                        systems.c.name == bindparam("name")).order_by(systems.c.id)
_INSERT_SYSTEM = insert(systems)
# One statement for SQLite (3.35+) and PostgreSQL. Plain SQL: SQLAlchemy's dialect
# upsert constructs are not cached, so the statement was compiled anew for every project.
_NEXT_SEQUENCE = text(
    "INSERT INTO code_counters (year, admin_code, last) VALUES (:year, :admin_code, 1) "
    "ON CONFLICT (year, admin_code) DO UPDATE SET last = code_counters.last + 1 "
    "RETURNING last")


# ---- code counters -----------------------------------------------------------------

def next_sequence(conn, year, admin_code):
    """The next sequence number for (year, admin code), taken inside the caller's
    transaction. One statement: INSERT .. ON CONFLICT DO UPDATE .. RETURNING, which
    row-locks the counter on PostgreSQL until the transaction ends."""
    dialect = conn.dialect.name
    if dialect not in ("postgresql", "sqlite"):  # pragma: no cover - the suite runs on both
        return _next_sequence_portable(conn, year, admin_code)
    return conn.execute(_NEXT_SEQUENCE, {"year": year, "admin_code": admin_code}).scalar_one()


def _next_sequence_portable(conn, year, admin_code):  # pragma: no cover
    where = (code_counters.c.year == year) & (code_counters.c.admin_code == admin_code)
    last = conn.execute(select(code_counters.c.last).where(where).with_for_update()).scalar()
    if last is None:
        conn.execute(insert(code_counters).values(year=year, admin_code=admin_code, last=1))
        return 1
    conn.execute(update(code_counters).where(where).values(last=last + 1))
    return last + 1


# ---- projects ----------------------------------------------------------------------

SUMMARY_COLUMNS = [c for c in projects.c if c.name != "application"]


def insert_project(conn, values):
    now = utcnow()
    row = dict(values)
    row["intake_findings"] = jsoncodec.dumps(row.get("intake_findings") or [])
    row["application"] = jsoncodec.dumps(row["application"])
    row["reasons"] = jsoncodec.dumps(row.get("reasons") or [])
    row.setdefault("revision", 0)
    row.setdefault("returns", 0)
    row["created_at"] = now
    row["updated_at"] = now
    _INSERT_PROJECT.run(conn, row)


def update_project(conn, code, **values):
    for key in ("intake_findings", "application", "reasons", "approval_conditions"):
        if key in values and not isinstance(values[key], str) and values[key] is not None:
            values[key] = jsoncodec.dumps(values[key])
    values["updated_at"] = utcnow()
    values["b_code"] = code
    _UPDATE_PROJECT.run(conn, values)


def lock_project(conn, code):
    """The project row for an update (row-locked on PostgreSQL), or NotFound."""
    row = _LOCK_PROJECT.first(conn, {"code": code})
    if row is None:
        raise not_found(code)
    return row


def find_project(conn, code):
    return _FIND_PROJECT.first(conn, {"code": code})


def not_found(code):
    return NotFound(message_zh=f"项目 {code} 不存在", message_en=f"project {code} not found", field="code")


def summary(row):
    """A ledger row as ProjectSummarySchema wants it."""
    approval = None
    if row.approval_document_no:
        approval = {
            "document_no": row.approval_document_no,
            "amount": row.approval_amount,
            "decision_body": row.approval_decision_body,
            "approved_on": row.approved_on,
            "conditions": jsoncodec.loads(row.approval_conditions or "[]"),
        }
    return {
        "code": row.code,
        "jurisdiction": row.jurisdiction,
        "unit_id": row.unit_id,
        "unit_name": row.unit_name,
        "name": row.name,
        "kind": row.kind,
        "kind_name": PROJECT_KINDS.get(row.kind, row.kind),
        "amount": row.amount,
        "year": row.year,
        "state": row.state,
        "state_name": PROJECT_STATES.get(row.state, row.state),
        "pool": row.pool,
        "pool_name": POOLS.get(row.pool) if row.pool else None,
        "revision": row.revision,
        "declared_on": row.declared_on,
        "batch": row.batch,
        "batch_name": row.batch_name,
        "stage": row.stage,
        "stage_name": row.stage_name,
        "intake_findings": jsoncodec.loads(row.intake_findings),
        "returns": row.returns,
        "reasons": jsoncodec.loads(row.reasons),
        "barred_until": row.barred_until,
        "approval": approval,
        "updated_at": _iso(row.updated_at),
    }


def view(row):
    """A ledger row as ProjectViewSchema wants it (with the application)."""
    out = summary(row)
    out["application"] = jsoncodec.loads(row.application)
    return out


def get_view(conn, code):
    row = find_project(conn, code)
    if row is None:
        raise not_found(code)
    return view(row)


def list_summaries(conn, unit_id=None, state=None, pool=None, limit=50, offset=0):
    """A page of the ledger, newest first, and the total that matches the filter.
    Each filter combination has an index ending in ``id`` (see models)."""
    where = []
    if unit_id:
        where.append(projects.c.unit_id == unit_id)
    if state:
        where.append(projects.c.state == state)
    if pool:
        where.append(projects.c.pool == pool)
    page = select(*SUMMARY_COLUMNS).where(*where).order_by(projects.c.id.desc()).limit(limit).offset(offset)
    total = conn.execute(select(func.count()).select_from(projects).where(*where)).scalar_one()
    items = [summary(row) for row in conn.execute(page)]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


# ---- history -----------------------------------------------------------------------

def add_history(conn, code, entries):
    """Append history entries (dicts from the domain) in order."""
    if not entries:
        return
    now = utcnow()
    _INSERT_HISTORY.run(conn, [
        {"code": code, "at": now, **entry} for entry in entries
    ])


def history(conn, code):
    if find_project(conn, code) is None:
        raise not_found(code)
    rows = _HISTORY.all(conn, {"code": code})
    return [{
        "at": _iso(row.at),
        "kind": row.kind,
        "from_value": row.from_value,
        "to_value": row.to_value,
        "note_zh": row.note_zh,
        "note_en": row.note_en,
        "cite": row.cite,
    } for row in rows]


# ---- system catalog ----------------------------------------------------------------

def system_record(row):
    return {
        "id": row.id,
        "unit_id": row.unit_id,
        "name": row.name,
        "project_code": row.project_code,
        "status": row.status,
        "status_name": SYSTEM_STATUSES.get(row.status, row.status),
        "registered_at": _iso(row.registered_at),
        "cite": row.cite,
    }


def find_system(conn, unit_id=None, name=None, project_code=None):
    if project_code is not None and unit_id is None and name is None:
        return conn.execute(_SYSTEM_OF_PROJECT, {"project_code": project_code}).first()
    if project_code is None and unit_id is not None and name is not None:
        return conn.execute(_SYSTEM_BY_NAME, {"unit_id": unit_id, "name": name}).first()
    query = select(systems)
    if project_code is not None:
        query = query.where(systems.c.project_code == project_code)
    if unit_id is not None:
        query = query.where(systems.c.unit_id == unit_id)
    if name is not None:
        query = query.where(systems.c.name == name)
    return conn.execute(query.order_by(systems.c.id)).first()


def insert_system(conn, unit_id, name, project_code, status, cite):
    now = utcnow()
    result = conn.execute(_INSERT_SYSTEM, dict(
        unit_id=unit_id, name=name, project_code=project_code, status=status, cite=cite,
        registered_at=now, updated_at=now,
    ))
    return result.inserted_primary_key[0]


def update_system(conn, system_id, **values):
    values["updated_at"] = utcnow()
    conn.execute(update(systems).where(systems.c.id == system_id).values(**values))


def get_system(conn, system_id):
    return system_record(conn.execute(select(systems).where(systems.c.id == system_id)).one())


def list_systems(conn, unit_id=None, project_code=None, limit=500):
    query = select(systems).order_by(systems.c.id).limit(limit)
    if unit_id:
        query = query.where(systems.c.unit_id == unit_id)
    if project_code:
        query = query.where(systems.c.project_code == project_code)
    return [system_record(row) for row in conn.execute(query)]
