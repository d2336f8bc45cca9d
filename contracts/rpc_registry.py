"""RPC contracts of the registry service (数据主管部门: project ledger, pools, system catalog).

The gateway calls these; every method's keyword arguments load through the args schema
and its answer dumps through the result schema (a list result is dumped item by item).
"""
from marshmallow import fields, validate

from .application import ApplicationSchema, DeclareProjectSchema
from .base import ContractSchema, one_of, rule_message, text, yuan
from .enums import POOLS, PROJECT_STATES
from .events import FindingSchema, ProjectRefSchema

#: the lifelong project code: <year>-<admin code>-<sequence>-<check char>
PROJECT_CODE_PATTERN = r"^\d{4}-\d{6}-\d{5}-[0-9X]$"

# History entry kinds (项目历程)
HISTORY_KINDS = {
    "declared": "申报赋码",
    "intake": "受理审查",
    "state": "状态变更",
    "pool": "入库/调库",
    "opinion": "出具意见",
    "stage": "审批环节",
    "revision": "修改重报",
}

# Status of an entry of the system catalog (系统目录)
SYSTEM_STATUSES = {
    "planned": "规划建设中",
    "operating": "运行中",
    "retired": "已下线",
}


def _limit(default, maximum):
    return fields.Integer(
        load_default=default,
        validate=validate.Range(
            min=1, max=maximum,
            error=rule_message("range", f"取值必须在 1 与 {maximum} 之间", f"Must be between 1 and {maximum}."),
        ),
    )


class ProjectCodeArgs(ContractSchema):
    """registry.get_project / registry.get_history arguments."""

    code = text(32)


class ReviseProjectArgs(ContractSchema):
    """registry.revise_project: the owning unit resubmits a returned project."""

    code = text(32)
    unit_id = text(64)
    application = fields.Nested(ApplicationSchema, required=True)


class ListProjectsArgs(ContractSchema):
    unit_id = fields.String(load_default=None, allow_none=True)
    state = fields.String(load_default=None, allow_none=True, validate=one_of(PROJECT_STATES, "项目状态"))
    pool = fields.String(load_default=None, allow_none=True, validate=one_of(POOLS, "项目库"))
    limit = _limit(50, 500)
    offset = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, error=rule_message("min", "取值不能小于 0", "Must be greater than or equal to 0.")),
    )


class ApprovalSchema(ContractSchema):
    """The approval (批复) as review announced it."""

    document_no = fields.String(required=True)  # 批复文号
    amount = yuan(required=True)  # 批复金额（元）
    decision_body = fields.String(required=True)  # 决策机构
    approved_on = fields.String(required=True)  # date, ISO
    conditions = fields.List(fields.String(), load_default=list)


class ProjectSummarySchema(ProjectRefSchema):
    """One project of the ledger (项目台账), without its application: the project
    reference (code, unit, name, kind, amount 估算总投资（元）) and its state and pool."""

    kind_name = fields.String(required=True)
    year = fields.Integer(required=True)  # 计划年度
    state = fields.String(required=True, validate=one_of(PROJECT_STATES, "项目状态"))
    state_name = fields.String(required=True)
    pool = fields.String(required=True, allow_none=True, validate=one_of(POOLS, "项目库"))
    pool_name = fields.String(required=True, allow_none=True)
    revision = fields.Integer(required=True)
    declared_on = fields.String(required=True)  # date, ISO
    batch = fields.String(required=True, allow_none=True)  # declaration window key, e.g. batch_1
    batch_name = fields.String(required=True, allow_none=True)
    stage = fields.String(required=True, allow_none=True)  # current approval stage, as review announced
    stage_name = fields.String(required=True, allow_none=True)
    intake_findings = fields.List(fields.Nested(FindingSchema), required=True)
    returns = fields.Integer(required=True)  # how many times review returned it
    reasons = fields.List(fields.Nested(FindingSchema), required=True)  # of the last return or refusal
    barred_until = fields.String(required=True, allow_none=True)
    approval = fields.Nested(ApprovalSchema, required=True, allow_none=True)
    updated_at = fields.String(required=True)


class ProjectViewSchema(ProjectSummarySchema):
    """registry.declare_project / revise_project / get_project result."""

    application = fields.Nested(ApplicationSchema, required=True)


class ProjectPageSchema(ContractSchema):
    """registry.list_projects result."""

    items = fields.List(fields.Nested(ProjectSummarySchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class HistoryEntrySchema(ContractSchema):
    """One entry of a project's history; registry.get_history returns them in order."""

    at = fields.String(required=True)  # ISO 8601, UTC
    kind = fields.String(required=True, validate=one_of(HISTORY_KINDS, "历程类型"))
    from_value = fields.String(required=True, allow_none=True)
    to_value = fields.String(required=True, allow_none=True)
    note_zh = fields.String(required=True)
    note_en = fields.String(required=True)
    cite = fields.String(required=True, allow_none=True)


class RegisterSystemArgs(ContractSchema):
    """registry.register_system: add an information system to the unit's catalog (系统目录)."""

    unit_id = text(64)
    name = text(200)
    project_code = fields.String(load_default=None, allow_none=True)
    status = fields.String(load_default="operating", validate=one_of(SYSTEM_STATUSES, "系统状态"))


class ListSystemsArgs(ContractSchema):
    unit_id = fields.String(load_default=None, allow_none=True)
    project_code = fields.String(load_default=None, allow_none=True)
    limit = _limit(500, 5000)


class SystemSchema(ContractSchema):
    """One entry of the system catalog."""

    id = fields.Integer(required=True)
    unit_id = fields.String(required=True)
    name = fields.String(required=True)
    project_code = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, validate=one_of(SYSTEM_STATUSES, "系统状态"))
    status_name = fields.String(required=True)
    registered_at = fields.String(required=True)
    cite = fields.String(required=True)


RPC = {
    "registry.declare_project": (DeclareProjectSchema, ProjectViewSchema),
    "registry.revise_project": (ReviseProjectArgs, ProjectViewSchema),
    "registry.get_project": (ProjectCodeArgs, ProjectViewSchema),
    "registry.list_projects": (ListProjectsArgs, ProjectPageSchema),
    "registry.get_history": (ProjectCodeArgs, HistoryEntrySchema),  # a list of entries
    "registry.register_system": (RegisterSystemArgs, SystemSchema),
    "registry.list_systems": (ListSystemsArgs, SystemSchema),  # a list of systems
}
