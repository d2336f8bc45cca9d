"""RPC contracts of the review service (发展改革委: the approval case of each project).

Reading: ``review.get_case``, ``review.list_cases``, ``review.list_pending_opinions``,
``review.list_experts``. Acting: ``review.submit_document`` (the applying unit),
``review.redraw_panel``, ``review.record_vote``, ``review.sign_decision`` and
``review.sign_opinion`` (an officer of the development and reform commission),
``review.add_expert`` (the expert pool).
"""
from marshmallow import fields, validate

from .base import ContractSchema, one_of, rule_message, text, yuan
from .enums import AGENCIES, DOCUMENT_TYPES, POOLS, SUBJECTS, VERDICTS
from .events import FindingSchema, ProjectRefSchema

CASE_STATES = ["in_progress", "returned", "refused", "approved"]
STAGE_STATUSES = ["pending", "active", "passed", "returned", "skipped"]
STAGE_TYPES = ["opinions", "documents", "experts", "decision"]
PANEL_VOTES = ["approve", "reject"]


def _date(required=True, allow_none=False):
    kwargs = {"required": required, "allow_none": allow_none}
    if not required:
        kwargs["load_default"] = None
    return fields.String(
        validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}$", error=rule_message("date", "日期格式应为 YYYY-MM-DD", "Date must be YYYY-MM-DD.")),
        **kwargs,
    )


# ---- arguments ---------------------------------------------------------------------

class CodeArgs(ContractSchema):
    code = text(64)


class ListCasesArgs(ContractSchema):
    state = fields.String(load_default=None, allow_none=True, validate=one_of(CASE_STATES, "案卷状态"))
    unit_id = fields.String(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500, error=rule_message("range", "limit 必须在 1 到 500 之间", "limit must be between 1 and 500.")))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, error=rule_message("min", "offset 不能小于 0", "offset must be >= 0.")))


class ListPendingOpinionsArgs(ContractSchema):
    code = fields.String(load_default=None, allow_none=True)
    agency = fields.String(load_default=None, allow_none=True, validate=one_of(AGENCIES, "机构"))


class SubmitDocumentArgs(ContractSchema):
    code = text(64)
    unit_id = text(64)
    doc_type = fields.String(required=True, validate=one_of(DOCUMENT_TYPES, "材料类型"))
    title = text(200)
    summary = fields.String(load_default="", validate=validate.Length(max=4000, error=rule_message("max_length", "长度不能超过 4000", "Longer than maximum length 4000.")))


class OfficerArgs(ContractSchema):
    code = text(64)
    officer_id = text(64)
    officer_agency = fields.String(required=True, validate=one_of(AGENCIES, "经办人所属机构"))


class RedrawPanelArgs(OfficerArgs):
    directed = fields.List(fields.String(), load_default=list)  # expert ids picked by name (定向选取)


class RecordVoteArgs(OfficerArgs):
    expert_id = text(64)
    vote = fields.String(required=True, validate=one_of(PANEL_VOTES, "专家意见"))
    comment = fields.String(load_default="")


class SignDecisionArgs(OfficerArgs):
    verdict = fields.String(required=True, validate=one_of(["approve", "reject"], "审批决定"))
    comment = fields.String(load_default="")


class SignOpinionArgs(ContractSchema):
    """An opinion the pipeline asks of the development and reform commission itself."""

    request_id = text(64)
    officer_id = text(64)
    officer_agency = fields.String(required=True, validate=one_of(AGENCIES, "经办人所属机构"))
    verdict = fields.String(required=True, validate=one_of(VERDICTS, "意见结论"))
    conditions = fields.List(fields.String(), load_default=list)
    comment = fields.String(load_default="")


class AddExpertArgs(ContractSchema):
    name = text(100)
    unit_id = text(64)
    field = text(100)
    directed = fields.Boolean(load_default=False)  # may be picked by name (e.g. 智慧蓉城专家)


class ListExpertsArgs(ContractSchema):
    include_inactive = fields.Boolean(load_default=False)


# ---- results -----------------------------------------------------------------------

class NoteSchema(ContractSchema):
    zh = fields.String(required=True)
    en = fields.String(required=True)
    cite = fields.String(load_default=None, allow_none=True)


class OpinionViewSchema(ContractSchema):
    request_id = fields.String(required=True)
    agency = fields.String(required=True, validate=one_of(AGENCIES, "机构"))
    agency_name = fields.String(required=True)
    subject = fields.String(required=True, validate=one_of(SUBJECTS, "意见事项"))
    sign = fields.String(required=True, validate=one_of(["auto", "officer"], "签发方式"))
    status = fields.String(required=True, validate=one_of(["requested", "issued"], "意见状态"))
    verdict = fields.String(required=True, allow_none=True)
    requested_on = _date()
    due_on = _date()
    overdue = fields.Boolean(required=True)
    findings = fields.List(fields.Nested(FindingSchema), required=True)
    conditions = fields.List(fields.String(), required=True)
    data = fields.Dict(required=True)  # e.g. {"reviewed_amount": ..} (cost), {"level": 3} (grading)
    signed_by = fields.String(required=True, allow_none=True)
    cite = fields.String(required=True)


class DocumentViewSchema(ContractSchema):
    doc_type = fields.String(required=True, validate=one_of(DOCUMENT_TYPES, "材料类型"))
    name = fields.String(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    summary = fields.String(required=True)
    submitted_on = _date()
    submitted_by = fields.String(required=True)


class DocumentSubmittedSchema(DocumentViewSchema):
    code = fields.String(required=True)
    stage_completed = fields.Boolean(required=True)  # the documents stage passed with this one


class PanelMemberSchema(ContractSchema):
    expert_id = fields.String(required=True)
    name = fields.String(required=True)
    unit_id = fields.String(required=True)
    field = fields.String(required=True)
    directed = fields.Boolean(required=True)


class VoteViewSchema(ContractSchema):
    expert_id = fields.String(required=True)
    name = fields.String(required=True)
    vote = fields.String(required=True, validate=one_of(PANEL_VOTES, "专家意见"))
    comment = fields.String(required=True)
    recorded_by = fields.String(required=True)
    recorded_on = _date()


class PanelViewSchema(ContractSchema):
    size = fields.Integer(required=True)
    pass_fraction = fields.String(required=True)
    directed_max_fraction = fields.String(required=True)
    organizer = fields.String(required=True)
    drawn_on = _date()
    cite = fields.String(required=True)
    experts = fields.List(fields.Nested(PanelMemberSchema), required=True)
    votes = fields.List(fields.Nested(VoteViewSchema), required=True)
    approvals = fields.Integer(required=True)
    rejections = fields.Integer(required=True)


class DecisionViewSchema(ContractSchema):
    body = fields.String(required=True)  # 决策机构
    cite = fields.String(required=True)
    sign = fields.String(required=True, validate=one_of(["auto", "officer"], "签发方式"))
    verdict = fields.String(required=True, allow_none=True)
    signed_by = fields.String(required=True, allow_none=True)
    comment = fields.String(required=True, allow_none=True)


class StageViewSchema(ContractSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    type = fields.String(required=True, validate=one_of(STAGE_TYPES, "环节类型"))
    status = fields.String(required=True, validate=one_of(STAGE_STATUSES, "环节状态"))
    cite = fields.String(required=True)
    requires_stages = fields.List(fields.String(), required=True)
    entered_on = _date(required=True, allow_none=True)
    closed_on = _date(required=True, allow_none=True)
    opinions = fields.List(fields.Nested(OpinionViewSchema), required=True)
    documents_required = fields.List(fields.String(), required=True)
    documents_cite = fields.String(required=True, allow_none=True)
    documents = fields.List(fields.Nested(DocumentViewSchema), required=True)  # latest version of each
    panel = fields.Nested(PanelViewSchema, required=True, allow_none=True)
    decision = fields.Nested(DecisionViewSchema, required=True, allow_none=True)
    note = fields.Nested(NoteSchema, required=True, allow_none=True)  # what the stage waits for
    rounds = fields.Integer(required=True)  # earlier rounds that returned the project


class ApprovalViewSchema(ContractSchema):
    document_no = fields.String(required=True)  # 批复文号
    decision_body = fields.String(required=True)  # 决策机构
    approved_amount = yuan(required=True)
    amount_basis = fields.String(required=True, validate=one_of(["cost_review", "application"], "核定依据"))
    approved_on = _date()
    cite = fields.String(required=True)
    pool = fields.String(required=True, validate=one_of(POOLS, "项目库"))
    pool_cite = fields.String(required=True)
    signed_by = fields.String(required=True)


class HistoryEntrySchema(ContractSchema):
    on = _date()
    event = fields.String(required=True)
    stage = fields.String(required=True, allow_none=True)
    zh = fields.String(required=True)
    en = fields.String(required=True)
    cite = fields.String(required=True)


class CaseViewSchema(ProjectRefSchema):
    """The project reference (code, unit, name, kind, amount) and its approval case."""

    revision = fields.Integer(required=True)
    declared_on = fields.String(required=True)
    state = fields.String(required=True, validate=one_of(CASE_STATES, "案卷状态"))
    current_stage = fields.String(required=True, allow_none=True)
    current_stage_name = fields.String(required=True, allow_none=True)
    stages = fields.List(fields.Nested(StageViewSchema), required=True)
    documents = fields.List(fields.Nested(DocumentViewSchema), required=True)  # every version
    returns = fields.Integer(required=True)
    expert_failures = fields.Integer(required=True)
    barred_until = _date(required=True, allow_none=True)
    bar_cite = fields.String(required=True, allow_none=True)
    conditions = fields.List(fields.String(), required=True)
    approval = fields.Nested(ApprovalViewSchema, required=True, allow_none=True)
    history = fields.List(fields.Nested(HistoryEntrySchema), required=True)


class CaseSummarySchema(ProjectRefSchema):
    """The project reference and where its approval case stands (review.list_cases)."""

    revision = fields.Integer(required=True)
    state = fields.String(required=True, validate=one_of(CASE_STATES, "案卷状态"))
    current_stage = fields.String(required=True, allow_none=True)
    current_stage_name = fields.String(required=True, allow_none=True)
    returns = fields.Integer(required=True)
    barred_until = fields.String(required=True, allow_none=True)
    document_no = fields.String(required=True, allow_none=True)


class PendingOpinionSchema(ContractSchema):
    request_id = fields.String(required=True)
    code = fields.String(required=True)
    project_name = fields.String(required=True)
    unit_id = fields.String(required=True)
    stage = fields.String(required=True)
    stage_name = fields.String(required=True)
    agency = fields.String(required=True, validate=one_of(AGENCIES, "机构"))
    agency_name = fields.String(required=True)
    subject = fields.String(required=True, validate=one_of(SUBJECTS, "意见事项"))
    sign = fields.String(required=True)
    requested_on = _date()
    due_on = _date()
    overdue = fields.Boolean(required=True)
    cite = fields.String(required=True)


class ExpertSchema(ContractSchema):
    expert_id = fields.String(required=True)
    name = fields.String(required=True)
    unit_id = fields.String(required=True)
    field = fields.String(required=True)
    directed = fields.Boolean(required=True)
    active = fields.Boolean(required=True)


RPC = {
    "review.get_case": (CodeArgs, CaseViewSchema),
    "review.list_cases": (ListCasesArgs, CaseSummarySchema),
    "review.list_pending_opinions": (ListPendingOpinionsArgs, PendingOpinionSchema),
    "review.submit_document": (SubmitDocumentArgs, DocumentSubmittedSchema),
    "review.redraw_panel": (RedrawPanelArgs, CaseViewSchema),
    "review.record_vote": (RecordVoteArgs, CaseViewSchema),
    "review.sign_decision": (SignDecisionArgs, CaseViewSchema),
    "review.sign_opinion": (SignOpinionArgs, CaseViewSchema),
    "review.add_expert": (AddExpertArgs, ExpertSchema),
    "review.list_experts": (ListExpertsArgs, ExpertSchema),
}
