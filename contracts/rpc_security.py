"""RPC contracts of the security service (网信办、保密局、密码管理局、经信厅).

* ``security.check_application(subject, application)``: a dry run of the automatic
  checks for a unit preparing its application; nothing is stored.
* ``security.get_compliance(code)``: the compliance ledger (合规台账) of one project,
  the standing its opinions add up to, for later sanctions.

The opinion desk (``desk.list_inbox``, ``desk.get_opinion``, ``desk.sign_opinion``) is
in ``contracts.rpc_desk``.
"""
from marshmallow import fields

from .application import ApplicationSchema
from .base import ContractSchema, one_of, text
from .enums import AGENCIES, SUBJECTS, VERDICTS
from .events import FindingSchema

SECURITY_SUBJECTS = {key: SUBJECTS[key] for key in ("security", "crypto")}

COMPLIANCE_STATUSES = {
    "unknown": "尚无意见",
    "compliant": "合规",
    "conditional": "有条件合规",
    "non_compliant": "不合规",
}


class CheckApplicationArgs(ContractSchema):
    subject = fields.String(required=True, validate=one_of(SECURITY_SUBJECTS, "意见事项"))
    application = fields.Nested(ApplicationSchema, required=True)


class DraftOpinionSchema(ContractSchema):
    """What the automatic checks would say; not an opinion, nothing is signed."""

    jurisdiction = fields.String(required=True)
    subject = fields.String(required=True, validate=one_of(SECURITY_SUBJECTS, "意见事项"))
    verdict = fields.String(required=True, validate=one_of(VERDICTS, "意见结论"))
    findings = fields.List(fields.Nested(FindingSchema), required=True)
    conditions = fields.List(fields.String(), required=True)
    data = fields.Dict(required=True)


class GetComplianceArgs(ContractSchema):
    code = text(64)


class ComplianceEntrySchema(ContractSchema):
    request_id = fields.String(required=True)
    agency = fields.String(required=True, validate=one_of(AGENCIES, "机构"))
    subject = fields.String(required=True, validate=one_of(SECURITY_SUBJECTS, "意见事项"))
    stage = fields.String(required=True)
    verdict = fields.String(required=True, validate=one_of(VERDICTS, "意见结论"))
    signed_by = fields.String(required=True)
    at = fields.String(required=True)  # ISO 8601, UTC


class ComplianceSchema(ContractSchema):
    code = fields.String(required=True)
    unit_id = fields.String(required=True, allow_none=True)  # None until an opinion is issued
    status = fields.String(required=True, validate=one_of(COMPLIANCE_STATUSES, "合规状态"))
    entries = fields.List(fields.Nested(ComplianceEntrySchema), required=True)


RPC = {
    "security.check_application": (CheckApplicationArgs, DraftOpinionSchema),
    "security.get_compliance": (GetComplianceArgs, ComplianceSchema),
}
