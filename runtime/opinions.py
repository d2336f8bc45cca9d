"""The opinion desk (意见办理) every agency service runs.

``review`` asks for a written opinion with ``opinion_requested``. The agency service
runs its automatic checks (each finding cites its article) and drafts a verdict. If the
profile says ``sign: auto`` the opinion is issued at once; if ``sign: officer`` it waits
in the agency's inbox until an officer of *that* agency signs it (and may change the
verdict, giving a reason). Issuing emits ``opinion_issued`` through the outbox, in the
same transaction.

A service uses it by inheriting :class:`OpinionDeskEntrypoints`, adding
``opinion_tables(metadata)`` to its models, and defining::

    def check_opinion(self, request) -> Draft        # plain rules
    @subscribe("review", "opinion_requested", routing_key="opinion_requested.<service>")
    def handle_opinion_requested(self, event):
        self.receive_opinion_request(event)
"""
import datetime as dt
import functools
import types
from dataclasses import dataclass, field

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, bindparam, insert, select, update

from contracts import Conflict, Forbidden, NotFound, ValidationFailed
from contracts.enums import VERDICTS

from . import jsoncodec
from . import audit, signing
from .db import utcnow
from .dependencies import rpc_method
from .sql import Prepared


@dataclass
class Draft:
    """The agency's draft opinion: what its automatic checks found."""

    findings: list = field(default_factory=list)
    conditions: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    verdict: str = None  # None: derive from the findings

    def resolved_verdict(self):
        if self.verdict:
            return self.verdict
        return verdict_from_findings(self.findings, self.conditions)


def finding(rule, severity, zh, en, cite):
    return {"rule": rule, "severity": severity, "zh": zh, "en": en, "cite": cite}


def verdict_from_findings(findings, conditions=()):
    """Blocking finding → reject; warning or condition → approve with conditions."""
    severities = {f["severity"] for f in findings}
    if "blocking" in severities:
        return "reject"
    if "warning" in severities or conditions:
        return "approve_with_conditions"
    return "approve"


def opinion_tables(metadata: MetaData):
    """The desk's table, and the audit log it appends every issued opinion to."""
    audit.audit_table(metadata)
    return Table(
        "opinion_requests", metadata,
        Column("request_id", String(64), primary_key=True),
        Column("code", String(64), nullable=False),
        Column("agency", String(32), nullable=False),
        Column("subject", String(32), nullable=False),
        Column("stage", String(64), nullable=False),
        Column("sign", String(16), nullable=False),
        Column("status", String(32), nullable=False),  # pending_signature | issued
        Column("due_on", String(10), nullable=False),
        Column("request", Text, nullable=False),  # the opinion_requested payload (JSON)
        Column("verdict", String(32), nullable=False),
        Column("findings", Text, nullable=False),
        Column("conditions", Text, nullable=False),
        Column("data", Text, nullable=False),
        Column("received_at", DateTime, nullable=False),
        Column("signed_by", String(64), nullable=True),
        Column("signed_at", DateTime, nullable=True),
        Column("comment", Text, nullable=True),
        Index("ix_opinion_requests_status_agency", "status", "agency"),
        Index("ix_opinion_requests_code", "code"),
    )


def _iso(value):
    return value.isoformat() + "Z" if isinstance(value, dt.datetime) else value


def record(row):
    request = jsoncodec.loads(row.request)
    return {
        "request_id": row.request_id,
        "code": row.code,
        "project_name": request["project"]["name"],
        "unit_id": request["project"]["unit_id"],
        "agency": row.agency,
        "agency_name": request["agency_name"],
        "subject": row.subject,
        "stage": row.stage,
        "stage_name": request["stage_name"],
        "sign": row.sign,
        "status": row.status,
        "due_on": row.due_on,
        "cite": request["cite"],
        "verdict": row.verdict,
        "findings": jsoncodec.loads(row.findings),
        "conditions": jsoncodec.loads(row.conditions),
        "data": jsoncodec.loads(row.data),
        "received_at": _iso(row.received_at),
        "signed_by": row.signed_by,
        "signed_at": _iso(row.signed_at),
        "comment": row.comment,
    }


@functools.lru_cache(maxsize=None)
def _statements(table):
    """The desk's statements on one service's ``opinion_requests``, built once."""
    by_id = table.c.request_id == bindparam("request_id")
    return types.SimpleNamespace(
        exists=Prepared(select(table.c.request_id).where(by_id)),
        row=Prepared(select(table).where(by_id)),
        insert=Prepared(insert(table)),
        update=Prepared(update(table).where(table.c.request_id == bindparam("b_request_id"))),
    )


class OpinionDeskEntrypoints:
    """Mixin for an agency service: inbox, signature and issuing of opinions."""

    def _desk_table(self):
        return self.db.metadata.tables["opinion_requests"]

    # -- receiving ---------------------------------------------------------------------
    def receive_opinion_request(self, event):
        """Check, draft and (if automatic) issue; one transaction, idempotent by event id."""
        request = event["payload"]
        sql = _statements(self._desk_table())
        with self.db.transaction(event=event) as tx:
            if sql.exists.first(tx.conn, {"request_id": request["request_id"]}):
                return
            draft = self.check_opinion(request)
            row = dict(
                request_id=request["request_id"],
                code=request["project"]["code"],
                agency=request["agency"],
                subject=request["subject"],
                stage=request["stage"],
                sign=request["sign"],
                status="pending_signature",
                due_on=request["due_on"],
                request=jsoncodec.dumps(request),
                verdict=draft.resolved_verdict(),
                findings=jsoncodec.dumps(draft.findings),
                conditions=jsoncodec.dumps(draft.conditions),
                data=jsoncodec.dumps(draft.data),
                received_at=utcnow(),
            )
            sql.insert.run(tx.conn, row)
            if request["sign"] == "auto":
                self._issue(tx, request["request_id"], signed_by="auto", row=types.SimpleNamespace(**row),
                            request=request)

    def _issue(self, tx, request_id, signed_by, verdict=None, conditions=None, comment=None, row=None,
               request=None):
        """Issue a pending opinion. ``row``/``request``: the desk row and request just
        written in this transaction (else both are read back)."""
        sql = _statements(self._desk_table())
        if row is None:
            row = sql.row.first(tx.conn, {"request_id": request_id})
            if row is None:
                raise NotFound(message_zh=f"意见请求 {request_id} 不存在",
                               message_en=f"opinion request {request_id} not found", field="request_id")
        final_verdict = verdict or row.verdict
        final_conditions = jsoncodec.loads(row.conditions) if conditions is None else list(conditions)
        now = utcnow()
        sql.update.run(tx.conn, dict(
            b_request_id=request_id, status="issued", verdict=final_verdict,
            conditions=jsoncodec.dumps(final_conditions),
            signed_by=signed_by, signed_at=now, comment=comment,
        ))
        if request is None:
            request = jsoncodec.loads(row.request)
        payload = {
            "request_id": request_id,
            "code": row.code,
            "stage": row.stage,
            "agency": row.agency,
            "subject": row.subject,
            "verdict": final_verdict,
            "findings": jsoncodec.loads(row.findings),
            "conditions": final_conditions,
            "signed_by": signed_by,
            "signed_at": now.isoformat() + "Z",
            "data": jsoncodec.loads(row.data),
        }
        # an official act: signed with the agency service's key and kept in the audit chain
        payload["signature"] = signing.keyring(self.name).sign(payload)
        audit.append(tx.conn, self.db.metadata.tables["audit_log"], action="opinion_issued",
                     ref=request_id, code=row.code, actor=signed_by, digest=signing.digest(payload))
        tx.emit("opinion_issued", payload, correlation_id=row.code)
        hook = getattr(self, "on_opinion_issued", None)
        if hook is not None:
            hook(tx, request, payload)
        return payload

    # -- RPC -----------------------------------------------------------------------------
    @rpc_method("desk.list_inbox")
    def list_inbox(self, args):
        table = self._desk_table()
        query = select(table).order_by(table.c.received_at).limit(min(args["limit"], 500))
        if args["status"] != "all":
            query = query.where(table.c.status == args["status"])
        if args.get("agency"):
            query = query.where(table.c.agency == args["agency"])
        if args.get("code"):
            query = query.where(table.c.code == args["code"])
        with self.db.read() as conn:
            return [record(row) for row in conn.execute(query)]

    @rpc_method("desk.verify_audit")
    def verify_audit(self, args):
        """An auditor's check of the hash chain of issued opinions."""
        with self.db.read() as conn:
            ok, entries, broken = audit.verify(conn, self.db.metadata.tables["audit_log"])
        return {"ok": ok, "entries": entries, "broken_at": broken}

    @rpc_method("desk.get_opinion")
    def get_opinion(self, args):
        return self._opinion_record(args["request_id"])

    def _opinion_record(self, request_id):
        table = self._desk_table()
        with self.db.read() as conn:
            row = conn.execute(select(table).where(table.c.request_id == request_id)).first()
        if row is None:
            raise NotFound(message_zh=f"意见请求 {request_id} 不存在",
                           message_en=f"opinion request {request_id} not found", field="request_id")
        return record(row)

    @rpc_method("desk.sign_opinion")
    def sign_opinion(self, args):
        """An officer signs (签发) a pending opinion for their own agency."""
        table = self._desk_table()
        with self.db.transaction() as tx:
            row = tx.conn.execute(select(table).where(table.c.request_id == args["request_id"])).first()
            if row is None:
                raise NotFound(message_zh=f"意见请求 {args['request_id']} 不存在",
                               message_en=f"opinion request {args['request_id']} not found")
            if row.agency != args["officer_agency"]:
                raise Forbidden(message_zh="只能签发本机构的意见", message_en="an officer signs only for their own agency",
                                field="officer_agency")
            if row.status != "pending_signature":
                raise Conflict(message_zh="该意见已签发", message_en="this opinion has already been issued",
                               field="request_id")
            verdict = args.get("verdict") or row.verdict
            if verdict != row.verdict and not (args.get("comment") or "").strip():
                raise ValidationFailed.from_errors([{
                    "field": "comment", "rule": "reason_required",
                    "zh": "改变自动审核结论时必须说明理由", "en": "A reason is required to change the drafted verdict.",
                }], "SignOpinionArgs")
            if verdict not in VERDICTS:
                raise ValidationFailed.from_errors([{"field": "verdict", "rule": "one_of",
                                                     "zh": "意见结论无效", "en": "invalid verdict"}], "SignOpinionArgs")
            self._issue(tx, row.request_id, signed_by=args["officer_id"], verdict=verdict,
                        conditions=args.get("conditions"), comment=args.get("comment") or None)
        return self._opinion_record(args["request_id"])
