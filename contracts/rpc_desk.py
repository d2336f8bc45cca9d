"""RPC contracts of the opinion desk that every agency service exposes
(``list_inbox``, ``get_opinion``, ``sign_opinion``)."""
from marshmallow import fields

from .base import ContractSchema, one_of, text
from .enums import AGENCIES, VERDICTS
from .events import FindingSchema


class ListInboxArgs(ContractSchema):
    agency = fields.String(load_default=None, allow_none=True, validate=one_of(AGENCIES, "机构"))
    status = fields.String(load_default="pending_signature", validate=one_of(["pending_signature", "issued", "all"], "状态"))
    code = fields.String(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=100)


class GetOpinionArgs(ContractSchema):
    request_id = text(64)


class OpinionRecordSchema(ContractSchema):
    request_id = fields.String(required=True)
    code = fields.String(required=True)
    project_name = fields.String(required=True)
    unit_id = fields.String(required=True)
    agency = fields.String(required=True)
    agency_name = fields.String(required=True)
    subject = fields.String(required=True)
    stage = fields.String(required=True)
    stage_name = fields.String(required=True)
    sign = fields.String(required=True)
    status = fields.String(required=True)
    due_on = fields.String(required=True)
    cite = fields.String(required=True)
    verdict = fields.String(required=True)
    findings = fields.List(fields.Nested(FindingSchema), required=True)
    conditions = fields.List(fields.String(), required=True)
    data = fields.Dict(required=True)
    received_at = fields.String(required=True)
    signed_by = fields.String(allow_none=True, load_default=None)
    signed_at = fields.String(allow_none=True, load_default=None)
    comment = fields.String(allow_none=True, load_default=None)


class SignOpinionArgs(ContractSchema):
    request_id = text(64)
    officer_id = text(64)
    officer_agency = fields.String(required=True, validate=one_of(AGENCIES, "签发人所属机构"))
    verdict = fields.String(load_default=None, allow_none=True, validate=one_of(VERDICTS, "意见结论"))
    conditions = fields.List(fields.String(), load_default=None, allow_none=True)
    comment = fields.String(load_default="")


class VerifyAuditArgs(ContractSchema):
    pass


class AuditReportSchema(ContractSchema):
    ok = fields.Boolean(required=True)
    entries = fields.Integer(required=True)
    broken_at = fields.Integer(allow_none=True, load_default=None)


RPC = {
    "desk.verify_audit": (VerifyAuditArgs, AuditReportSchema),
    "desk.list_inbox": (ListInboxArgs, OpinionRecordSchema),
    "desk.get_opinion": (GetOpinionArgs, OpinionRecordSchema),
    "desk.sign_opinion": (SignOpinionArgs, OpinionRecordSchema),
}
