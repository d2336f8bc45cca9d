"""RPC contracts of the budget service (财政局 and 投资评审中心).

Yearly envelopes (预算额度) per funding source, cost reviews (造价评审) of an estimate's
line items, and the allocation (资金安排) recorded when a project is approved.
"""
from marshmallow import fields, validate

from .application import EstimateLineSchema
from .base import ContractSchema, one_of, rule_message, text, yuan
from .enums import FUNDING_SOURCES, POOLS


def _year(**kwargs):
    return fields.Integer(
        strict=True,
        validate=validate.Range(
            min=2000, max=2100,
            error=rule_message("range", "年度必须在 2000 到 2100 之间", "Year must be between 2000 and 2100."),
        ),
        **kwargs,
    )


# ---- envelopes (预算额度) ----------------------------------------------------------

class SetEnvelopeArgs(ContractSchema):
    """Set the yearly envelope of one funding source (creates or replaces its total)."""

    year = _year(required=True)
    source = fields.String(required=True, validate=one_of(FUNDING_SOURCES, "资金来源"))
    total = yuan(required=True)


class ListEnvelopesArgs(ContractSchema):
    year = _year(load_default=None, allow_none=True)


class EnvelopeRecordSchema(ContractSchema):
    year = fields.Integer(required=True)
    source = fields.String(required=True)
    source_name = fields.String(required=True)  # 资金来源（中文）
    total = fields.Integer(required=True)
    committed = fields.Integer(required=True)  # 已安排
    remaining = fields.Integer(required=True)  # 剩余额度 (total - committed; negative if over-committed)


# ---- cost review (造价评审) ---------------------------------------------------------

class GetCostReviewArgs(ContractSchema):
    code = text(64)


class ReviewCostArgs(ContractSchema):
    """Review an estimate directly (tooling); the review is stored under ``code``."""

    code = text(64)
    lines = fields.List(
        fields.Nested(EstimateLineSchema), required=True,
        validate=validate.Length(min=1, error=rule_message(
            "min_length", "估算明细至少一行", "At least one estimate line is required.")),
    )


class CostReasonSchema(ContractSchema):
    """Why a line was cut; cites the parameter's source."""

    rule = fields.String(required=True)  # unbased_cut | price_ceiling
    zh = fields.String(required=True)
    en = fields.String(required=True)
    cite = fields.String(required=True)


class CostLineRecordSchema(ContractSchema):
    line_no = fields.Integer(required=True)
    item = fields.String(required=True)
    category = fields.String(required=True)
    quantity = fields.Integer(required=True)
    unit_price = fields.Integer(required=True)
    basis = fields.String(required=True)
    requested = fields.Integer(required=True)  # quantity × unit_price
    reviewed_unit_price = fields.Integer(required=True)  # 审定单价
    reviewed = fields.Integer(required=True)  # 审定金额
    reasons = fields.List(fields.Nested(CostReasonSchema), required=True)


class CostReviewRecordSchema(ContractSchema):
    review_id = fields.Integer(required=True)
    code = fields.String(required=True)
    request_id = fields.String(allow_none=True, load_default=None)  # None when made by budget.review_cost
    origin = fields.String(required=True, validate=one_of(["opinion", "rpc"], "来源"))
    requested_amount = fields.Integer(required=True)  # 送审金额
    reviewed_amount = fields.Integer(required=True)  # 审定金额
    reduction = fields.Integer(required=True)  # 核减金额
    cite = fields.String(required=True)
    reviewed_at = fields.String(required=True)
    lines = fields.List(fields.Nested(CostLineRecordSchema), required=True)


# ---- allocations (资金安排) ---------------------------------------------------------

class GetFundingArgs(ContractSchema):
    code = text(64)


class ListAllocationsArgs(ContractSchema):
    year = _year(load_default=None, allow_none=True)


class AllocationRecordSchema(ContractSchema):
    """The money committed for an approved project, and the channel it comes through."""

    code = fields.String(required=True)
    project_name = fields.String(required=True)
    unit_id = fields.String(required=True)
    year = fields.Integer(required=True)
    source = fields.String(required=True)  # funding source the envelope is charged to
    source_name = fields.String(required=True)
    amount = fields.Integer(required=True)  # approved amount committed
    within_envelope = fields.Boolean(required=True)  # False: the envelope was already short
    pool = fields.String(required=True, validate=one_of(POOLS, "项目库"))  # where review put the project
    channel = fields.String(allow_none=True, load_default=None)  # profile.funding_pool(...)["pool"]
    channel_name = fields.String(allow_none=True, load_default=None)
    channel_zh = fields.String(allow_none=True, load_default=None)  # what the profile says finance does
    cite = fields.String(required=True)
    document_no = fields.String(required=True)  # 批复文号
    approved_on = fields.String(required=True)
    recorded_at = fields.String(required=True)


RPC = {
    "budget.set_envelope": (SetEnvelopeArgs, EnvelopeRecordSchema),
    "budget.list_envelopes": (ListEnvelopesArgs, EnvelopeRecordSchema),
    "budget.get_cost_review": (GetCostReviewArgs, CostReviewRecordSchema),
    "budget.review_cost": (ReviewCostArgs, CostReviewRecordSchema),
    "budget.get_funding": (GetFundingArgs, AllocationRecordSchema),
    "budget.list_allocations": (ListAllocationsArgs, AllocationRecordSchema),
}
