"""Event contracts: the envelope, one payload schema per event, and who subscribes.

An event is published on the exchange ``<source>.events`` (topic) with routing key
``<event_type>`` or, for events addressed to one agency service,
``<event_type>.<service>``. The message body is the envelope (JSON), or a JSON array of
envelopes with the same routing key: a pack, which the outbox relay sends when several
such events wait in one batch (``runtime.packs``). Each subscriber queue is bound to
exactly one routing key, without wildcards, so it gets its events in commit order.
"""
from marshmallow import fields, validate

from .application import ApplicationSchema
from .base import ContractSchema, one_of, text, yuan
from .enums import (
    AGENCIES, JURISDICTIONS, POOLS, PROJECT_KINDS, SERVICES, SUBJECTS, VERDICTS,
)


class EnvelopeSchema(ContractSchema):
    """Every event carries its id, time, correlation id (the project code) and version."""

    event_id = fields.String(required=True, validate=validate.Length(min=8, max=64))
    event_type = fields.String(required=True)
    source = fields.String(required=True, validate=one_of(SERVICES + ("gateway",), "来源服务"))
    occurred_at = fields.String(required=True)  # ISO 8601, UTC
    correlation_id = fields.String(required=True)  # the project's code
    version = fields.String(required=True)
    payload = fields.Dict(required=True)


class FindingSchema(ContractSchema):
    """One finding of an automatic check; cites its article."""

    rule = fields.String(required=True)
    severity = fields.String(required=True, validate=one_of(["info", "warning", "blocking"], "严重程度"))
    zh = fields.String(required=True)
    en = fields.String(required=True)
    cite = fields.String(required=True)


class ProjectRefSchema(ContractSchema):
    code = fields.String(required=True)
    jurisdiction = fields.String(required=True, validate=one_of(JURISDICTIONS, "辖区"))
    unit_id = fields.String(required=True)
    unit_name = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=one_of(PROJECT_KINDS, "项目类型"))
    amount = yuan(required=True)


# ---- registry ----------------------------------------------------------------------

class ProjectSubmittedSchema(ContractSchema):
    """registry → review: intake passed (受理); start or resume the approval case."""

    VERSION = "1.0"
    project = fields.Nested(ProjectRefSchema, required=True)
    application = fields.Nested(ApplicationSchema, required=True)
    revision = fields.Integer(required=True)  # 0 at declaration, +1 per revision
    declared_on = fields.String(required=True)  # date, ISO


# ---- review -----------------------------------------------------------------------

class OpinionRequestedSchema(ContractSchema):
    """review → an agency service: give a written opinion (书面意见)."""

    VERSION = "1.0"
    request_id = fields.String(required=True)
    project = fields.Nested(ProjectRefSchema, required=True)
    application = fields.Nested(ApplicationSchema, required=True)
    stage = fields.String(required=True)
    stage_name = fields.String(required=True)
    agency = fields.String(required=True, validate=one_of(AGENCIES, "机构"))
    agency_name = fields.String(required=True)
    subject = fields.String(required=True, validate=one_of(SUBJECTS, "意见事项"))
    sign = fields.String(required=True, validate=one_of(["auto", "officer"], "签发方式"))
    due_on = fields.String(required=True)  # date, counted in working days
    cite = fields.String(required=True)
    context = fields.Dict(load_default=dict)  # e.g. the declaration date, revision


class ProjectReturnedSchema(ContractSchema):
    """review → registry: returned for revision (退回修改)."""

    VERSION = "1.0"
    project = fields.Nested(ProjectRefSchema, required=True)
    stage = fields.String(required=True)
    reasons = fields.List(fields.Nested(FindingSchema), required=True)
    returns = fields.Integer(required=True)
    cite = fields.String(required=True)


class ProjectRefusedSchema(ContractSchema):
    """review → registry: refused (不予批准/不再组织评审)."""

    VERSION = "1.0"
    project = fields.Nested(ProjectRefSchema, required=True)
    stage = fields.String(required=True)
    reasons = fields.List(fields.Nested(FindingSchema), required=True)
    barred_until = fields.String(load_default=None, allow_none=True)
    cite = fields.String(required=True)


class ProjectApprovedSchema(ContractSchema):
    """review → registry, budget: approved (批复); the project lands in ``pool``."""

    VERSION = "1.0"
    project = fields.Nested(ProjectRefSchema, required=True)
    approved_amount = yuan(required=True)
    document_no = fields.String(required=True)  # 批复文号
    decision_body = fields.String(required=True)  # 决策机构
    pool = fields.String(required=True, validate=one_of(POOLS, "项目库"))
    approved_on = fields.String(required=True)
    conditions = fields.List(fields.String(), load_default=list)
    cite = fields.String(required=True)


class StageAdvancedSchema(ContractSchema):
    """review → registry: the case moved to another stage (history only)."""

    VERSION = "1.0"
    project = fields.Nested(ProjectRefSchema, required=True)
    stage = fields.String(required=True)
    stage_name = fields.String(required=True)
    cite = fields.String(required=True)


# ---- agencies -----------------------------------------------------------------------

class SignatureSchema(ContractSchema):
    """The issuing agency service's signature over the opinion (runtime.signing)."""

    key_id = fields.String(required=True)
    algorithm = fields.String(required=True, validate=one_of(["ed25519"], "签名算法"))
    value = fields.String(required=True)


class OpinionIssuedSchema(ContractSchema):
    """an agency service → review: the opinion, signed automatically or by an officer,
    and signed with the agency service's key (an official act)."""

    VERSION = "1.1"
    request_id = fields.String(required=True)
    code = fields.String(required=True)
    stage = fields.String(required=True)
    agency = fields.String(required=True, validate=one_of(AGENCIES, "机构"))
    subject = fields.String(required=True, validate=one_of(SUBJECTS, "意见事项"))
    verdict = fields.String(required=True, validate=one_of(VERDICTS, "意见结论"))
    findings = fields.List(fields.Nested(FindingSchema), load_default=list)
    conditions = fields.List(fields.String(), load_default=list)
    signed_by = fields.String(required=True)  # "auto" or the officer's user id
    signed_at = fields.String(required=True)
    data = fields.Dict(load_default=dict)  # e.g. {"reviewed_amount": ..} or {"level": 3}
    signature = fields.Nested(SignatureSchema, required=True)


# (event_type) -> (source service, payload schema)
EVENTS = {
    "project_submitted": ("registry", ProjectSubmittedSchema),
    "opinion_requested": ("review", OpinionRequestedSchema),
    "project_returned": ("review", ProjectReturnedSchema),
    "project_refused": ("review", ProjectRefusedSchema),
    "project_approved": ("review", ProjectApprovedSchema),
    "stage_advanced": ("review", StageAdvancedSchema),
    "opinion_issued": (None, OpinionIssuedSchema),  # any agency service
}

# Who listens to what: (source, event_type, routing_key, subscriber, handler method).
# Publishers declare these queues before they publish, so no event is unroutable.
SUBSCRIPTIONS = [
    ("registry", "project_submitted", "project_submitted", "review", "handle_project_submitted"),
    ("review", "opinion_requested", "opinion_requested.registry", "registry", "handle_opinion_requested"),
    ("review", "opinion_requested", "opinion_requested.budget", "budget", "handle_opinion_requested"),
    ("review", "opinion_requested", "opinion_requested.security", "security", "handle_opinion_requested"),
    ("review", "opinion_requested", "opinion_requested.filing", "filing", "handle_opinion_requested"),
    ("registry", "opinion_issued", "opinion_issued", "review", "handle_registry_opinion_issued"),
    ("budget", "opinion_issued", "opinion_issued", "review", "handle_budget_opinion_issued"),
    ("security", "opinion_issued", "opinion_issued", "review", "handle_security_opinion_issued"),
    ("filing", "opinion_issued", "opinion_issued", "review", "handle_filing_opinion_issued"),
    ("review", "project_returned", "project_returned", "registry", "handle_project_returned"),
    ("review", "project_refused", "project_refused", "registry", "handle_project_refused"),
    ("review", "project_approved", "project_approved", "registry", "handle_project_approved"),
    ("review", "project_approved", "project_approved", "budget", "handle_project_approved"),
    ("review", "stage_advanced", "stage_advanced", "registry", "handle_stage_advanced"),
]


def schema_for(event_type):
    try:
        return EVENTS[event_type][1]
    except KeyError:
        raise KeyError(f"no contract for event {event_type!r}") from None


def queue_name(source, event_type, subscriber, method):
    return f"evt-{source}-{event_type}--{subscriber}.{method}"


def subscriptions_from(source):
    return [s for s in SUBSCRIPTIONS if s[0] == source]
