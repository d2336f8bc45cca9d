"""Persistence of the review service: cases, the pending-opinion index, the expert pool
and the yearly numbering of approval documents. Works inside one conn (one
transaction of :class:`runtime.db.DatabaseCore`)."""
import uuid

from sqlalchemy import bindparam, func, insert, select, text, update

from runtime import jsoncodec
from runtime.db import utcnow
from runtime.sql import Prepared

from .models import case_opinions, cases, experts


# Statements of every saga step, built once with bound parameters and run on the cursor
# (runtime.sql.Prepared: SQLAlchemy's work around each execution costs more than SQLite
# running it). An UPDATE without ``.values()`` sets the columns named in its parameters.
_CASE = select(cases.c.body).where(cases.c.code == bindparam("code"))
_READ_CASE = Prepared(_CASE)
_LOCK_CASE = Prepared(_CASE.with_for_update())
_INSERT_CASE = Prepared(insert(cases))
_UPDATE_CASE = Prepared(update(cases).where(cases.c.code == bindparam("b_code")))
_KNOWN_OPINIONS = Prepared(select(case_opinions.c.request_id, case_opinions.c.status).where(
    case_opinions.c.code == bindparam("code")))
_INSERT_OPINION = Prepared(insert(case_opinions))
_OPINION_STATUS = Prepared(update(case_opinions).where(case_opinions.c.request_id == bindparam("b_request_id")))
# plain SQL, the same on SQLite (3.35+) and PostgreSQL: SQLAlchemy's upsert constructs
# are compiled anew on every call
_NEXT_DOCUMENT_NUMBER = text(
    "INSERT INTO document_numbers (year, last) VALUES (:year, 1) "
    "ON CONFLICT (year) DO UPDATE SET last = document_numbers.last + 1 RETURNING last")
_ACTIVE_EXPERTS = select(experts).where(experts.c.active.is_(True)).order_by(experts.c.expert_id)


class ReviewRepository:
    def __init__(self, conn):
        self.conn = conn

    # -- cases ---------------------------------------------------------------------------
    def get_case(self, code, *, for_update=False):
        body = (_LOCK_CASE if for_update else _READ_CASE).scalar(self.conn, {"code": code})
        return jsoncodec.loads(body) if body is not None else None

    def save_case(self, case, *, new=False):
        values = dict(
            name=case["name"],
            kind=case["kind"],
            amount=case["amount"],
            state=case["state"],
            current_stage=case.get("current_stage"),
            revision=case["revision"],
            returns=case["returns"],
            expert_failures=case["expert_failures"],
            barred_until=case.get("barred_until"),
            body=jsoncodec.dumps(case),
            updated_at=utcnow(),
        )
        document_no = (case.get("approval") or {}).get("document_no")
        if new:
            _INSERT_CASE.run(self.conn, dict(values, code=case["code"], jurisdiction=case["jurisdiction"],
                                             unit_id=case["unit_id"], document_no=document_no,
                                             created_at=values["updated_at"]))
        else:
            # a project's jurisdiction and unit never change, and its document number is set
            # once: left out of the update, their indexes are not rewritten at every step
            if document_no is not None:
                values["document_no"] = document_no
            _UPDATE_CASE.run(self.conn, dict(values, b_code=case["code"]))
        self._index_opinions(case)

    def list_cases(self, *, state=None, unit_id=None, limit=50, offset=0):
        query = select(cases.c.body).order_by(cases.c.updated_at.desc(), cases.c.code).limit(limit).offset(offset)
        if state:
            query = query.where(cases.c.state == state)
        if unit_id:
            query = query.where(cases.c.unit_id == unit_id)
        return [jsoncodec.loads(body) for body in self.conn.execute(query).scalars()]

    # -- pending opinions ----------------------------------------------------------------
    def _index_opinions(self, case):
        """Keep ``case_opinions`` in step with the opinions of the case's current round."""
        current = {}
        for stage in case["stages"]:
            for opinion in stage["opinions"]:
                current[opinion["request_id"]] = (stage, opinion)
        known = {row.request_id: row.status for row in _KNOWN_OPINIONS.all(self.conn, {"code": case["code"]})}
        for request_id, (stage, opinion) in current.items():
            if request_id not in known:
                _INSERT_OPINION.run(self.conn, dict(
                    request_id=request_id, code=case["code"], project_name=case["name"], unit_id=case["unit_id"],
                    stage=stage["key"], stage_name=stage["name"], agency=opinion["agency"],
                    agency_name=opinion["agency_name"], subject=opinion["subject"], sign=opinion["sign"],
                    status=opinion["status"], requested_on=opinion["requested_on"], due_on=opinion["due_on"],
                    cite=opinion["cite"],
                ))
            elif known[request_id] != opinion["status"]:
                _OPINION_STATUS.run(self.conn, {"b_request_id": request_id, "status": opinion["status"]})
        stale = [rid for rid, status in known.items() if status == "requested" and rid not in current]
        if stale:
            self.conn.execute(update(case_opinions).where(case_opinions.c.request_id.in_(stale))
                              .values(status="withdrawn"))

    def pending_opinions(self, *, code=None, agency=None):
        query = select(case_opinions).where(case_opinions.c.status == "requested") \
            .order_by(case_opinions.c.due_on, case_opinions.c.request_id)
        if code:
            query = query.where(case_opinions.c.code == code)
        if agency:
            query = query.where(case_opinions.c.agency == agency)
        return [dict(row._mapping) for row in self.conn.execute(query)]

    # -- experts -------------------------------------------------------------------------
    def experts(self, *, include_inactive=False):
        query = select(experts).order_by(experts.c.expert_id) if include_inactive else _ACTIVE_EXPERTS
        return [self._expert(row) for row in self.conn.execute(query)]

    @staticmethod
    def _expert(row):
        return {"expert_id": row.expert_id, "name": row.name, "unit_id": row.unit_id, "field": row.field,
                "directed": bool(row.directed), "active": bool(row.active)}

    def add_expert(self, *, name, unit_id, field, directed=False, expert_id=None, active=True):
        expert_id = expert_id or f"EXP-{uuid.uuid4().hex[:10]}"
        self.conn.execute(insert(experts).values(
            expert_id=expert_id, name=name, unit_id=unit_id, field=field, directed=bool(directed),
            active=bool(active), created_at=utcnow(),
        ))
        return {"expert_id": expert_id, "name": name, "unit_id": unit_id, "field": field,
                "directed": bool(directed), "active": bool(active)}

    def count_experts(self):
        return self.conn.execute(select(func.count()).select_from(experts)).scalar()

    # -- numbering -----------------------------------------------------------------------
    def next_document_number(self, year):
        """The next number of ``year``'s approval documents: one upsert, which row-locks
        the year's counter on PostgreSQL until the transaction ends."""
        return self.conn.execute(_NEXT_DOCUMENT_NUMBER, {"year": year}).scalar_one()
