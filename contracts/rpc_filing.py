"""RPC contracts of the filing service (公安机关: 网络安全等级保护定级与备案)."""
from marshmallow import fields

from .application import GradingInputSchema
from .base import ContractSchema, text


class GradeSystemArgs(GradingInputSchema):
    """GB/T 22240-2020 facts: object harmed × degree of harm, for business information
    (业务信息) and system service (系统服务)."""


class GradeResultSchema(ContractSchema):
    level = fields.Integer(required=True)  # 安全保护等级 = max(business, service)
    business_level = fields.Integer(required=True)  # 业务信息安全保护等级
    service_level = fields.Integer(required=True)  # 系统服务安全保护等级
    cite = fields.String(required=True)


class GetGradingArgs(ContractSchema):
    code = text(64)


class GradingRecordSchema(ContractSchema):
    """The grading (定级) recorded when a grading opinion was issued."""

    code = fields.String(required=True)
    request_id = fields.String(required=True)
    level = fields.Integer(required=True)
    business_level = fields.Integer(required=True)
    service_level = fields.Integer(required=True)
    business_object = fields.String(required=True)
    business_degree = fields.String(required=True)
    service_object = fields.String(required=True)
    service_degree = fields.String(required=True)
    level_claimed = fields.Integer(allow_none=True, load_default=None)  # what the unit's 等保方案 states
    filing_required = fields.Boolean(required=True)  # level >= 2: 备案 with public security
    yearly_test_required = fields.Boolean(required=True)  # level >= 3: 每年等级测评
    verdict = fields.String(required=True)
    signed_by = fields.String(required=True)
    cite = fields.String(required=True)
    graded_at = fields.String(required=True)


RPC = {
    "filing.grade_system": (GradeSystemArgs, GradeResultSchema),
    "filing.get_grading": (GetGradingArgs, GradingRecordSchema),
}
