"""HTTP request bodies of the gateway (the domain payloads are in ``contracts``)."""
from marshmallow import fields, validate

from contracts.application import ApplicationSchema
from contracts.base import ContractSchema, one_of, rule_message, text
from contracts.enums import AGENCIES, DOCUMENT_TYPES, ROLES, VERDICTS


class TokenRequest(ContractSchema):
    username = text(64)
    password = text(256)


class CreateUserRequest(ContractSchema):
    username = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_.-]{3,64}$",
        error=rule_message("pattern", "用户名只能包含字母、数字、点、下划线和连字符（3–64 位）",
                           "Username: 3-64 letters, digits, '.', '_' or '-'.")))
    display_name = text(200)
    password = fields.String(required=True, validate=validate.Length(
        min=10, max=256, error=rule_message("length", "密码长度必须在 10 到 256 之间", "Password must be 10-256 characters.")))
    role = fields.String(required=True, validate=one_of(ROLES, "角色"))
    unit_id = fields.String(load_default=None, allow_none=True)
    unit_name = fields.String(load_default=None, allow_none=True)
    agency = fields.String(load_default=None, allow_none=True, validate=one_of(AGENCIES, "机构"))


class UpdateUserRequest(ContractSchema):
    display_name = fields.String()
    password = fields.String(validate=validate.Length(
        min=10, max=256, error=rule_message("length", "密码长度必须在 10 到 256 之间", "Password must be 10-256 characters.")))
    active = fields.Boolean()


class ApplicationBody(ContractSchema):
    application = fields.Nested(ApplicationSchema, required=True)


class DocumentBody(ContractSchema):
    doc_type = fields.String(required=True, validate=one_of(DOCUMENT_TYPES, "文件类型"))
    title = text(200)
    summary = text(4000)


class PanelBody(ContractSchema):
    directed = fields.List(fields.String(), load_default=list)


class VoteBody(ContractSchema):
    expert_id = text(64)
    vote = fields.String(required=True, validate=one_of(["approve", "reject"], "表决"))
    comment = fields.String(load_default="")


class DecisionBody(ContractSchema):
    verdict = fields.String(required=True, validate=one_of(["approve", "reject"], "决定"))
    comment = fields.String(load_default="")


class SignBody(ContractSchema):
    verdict = fields.String(load_default=None, allow_none=True, validate=one_of(VERDICTS, "意见结论"))
    conditions = fields.List(fields.String(), load_default=None, allow_none=True)
    comment = fields.String(load_default="")
