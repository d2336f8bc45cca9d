"""The application (项目申报材料) a unit declares, shared by every agency that reviews it.

Fields follow Sichuan art. 16 (basic information, technical plan, funding), Jinjiang
art. 6 (contents of a requirements plan), Dalate art. 5 and Guangyuan art. 10.
"""
from marshmallow import fields, validate, validates_schema, ValidationError

from .base import ContractSchema, schema_instance, one_of, rule_message, text, yuan
from .enums import FUNDING_SOURCES, JURISDICTIONS, PROJECT_KINDS

HARM_OBJECTS = {
    "citizens": "公民、法人和其他组织的合法权益",
    "public": "社会秩序、公共利益",
    "national": "国家安全",
}
HARM_DEGREES = {
    "general": "一般损害",
    "serious": "严重损害",
    "especially_serious": "特别严重损害",
}


def _defaults(schema):
    """A section the unit left out: all of its defaults (one schema instance, reused)."""
    return schema_instance(schema).load({})


class FlagsSchema(ContractSchema):
    """Circumstances that change the document path or the pipeline."""

    urgent = fields.Boolean(load_default=False)  # 情况紧急（涉及国家安全等）
    mandated = fields.Boolean(load_default=False)  # 党中央、国务院或省委省政府明确要求
    planned = fields.Boolean(load_default=False)  # 已列入经批准的规划
    emergency = fields.Boolean(load_default=False)  # 应对突发事件需紧急建设
    classified = fields.Boolean(load_default=False)  # 涉密
    in_reserve_pool = fields.Boolean(load_default=False)  # 已纳入储备库 (bazhong art. 13)
    in_rolling_pool = fields.Boolean(load_default=False)  # 已纳入三年滚动库 (guangyuan art. 10)
    simple = fields.Boolean(load_default=False)  # 内容单一、规模较小、技术简单 (dalate art. 5)


class IntakeFactsSchema(ContractSchema):
    """What the unit states about the project, checked against each negative list."""

    new_datacenter = fields.Boolean(load_default=False)  # 新建/扩建非涉密机房、数据中心、私有云
    new_servers = fields.Boolean(load_default=False)  # 新增非涉密服务器、存储、服务端网络设备
    internet_line_lease = fields.Boolean(load_default=False)  # 互联网出口线路租赁
    private_network_lease = fields.Boolean(load_default=False)  # 未整合到电子政务网的专网租赁
    on_gov_cloud = fields.Boolean(load_default=True)  # 部署到政务云
    rebuilds_common_system = fields.Boolean(load_default=False)  # 新建或扩建共性系统
    connected_to_sharing_platform = fields.Boolean(load_default=True)  # 接入数据共享交换平台
    goals_clear = fields.Boolean(load_default=True)  # 需求和绩效目标明确
    data_catalog_done = fields.Boolean(load_default=True)  # 数据目录普查到位
    non_shared_infrastructure = fields.Boolean(load_default=False)  # 非共建共享共用的基础设施
    upgrade_of_unaccepted = fields.Boolean(load_default=False)  # 原项目尚未验收的升级改造
    unit_data_aggregated = fields.Boolean(load_default=True)  # 单位已完成数据归集
    isolated_system = fields.Boolean(load_default=False)  # 孤立、封闭、不能共享的系统
    unit_system_count_delta = fields.Integer(load_default=0)  # 单位信息系统总量变化
    existing_system_sufficient = fields.Boolean(load_default=False)  # 已建系统可满足需求
    data_shared = fields.Boolean(load_default=True)  # 现有系统数据已按要求共享
    materials_complete = fields.Boolean(load_default=True)  # 申报资料齐全
    legal_basis = fields.Boolean(load_default=False)  # 法律法规有明确规定（例外）


class FundingSchema(ContractSchema):
    source = fields.String(required=True, validate=one_of(FUNDING_SOURCES, "资金来源"))
    amount = yuan(required=True)


class SecurityPlanSchema(ContractSchema):
    """等级保护/分级保护方案 and network-security measures."""

    present = fields.Boolean(load_default=False)
    level_claimed = fields.Integer(
        load_default=None, allow_none=True,
        validate=validate.Range(min=1, max=5, error=rule_message("range", "等保级别必须在 1 到 5 之间", "Level must be between 1 and 5.")),
    )
    measures = fields.List(fields.String(), load_default=list)
    yearly_test_planned = fields.Boolean(load_default=False)


class CryptoPlanSchema(ContractSchema):
    """密码应用方案."""

    present = fields.Boolean(load_default=False)
    algorithms = fields.List(fields.String(), load_default=list)  # e.g. SM2, SM3, SM4
    evaluation_planned = fields.Boolean(load_default=False)  # 密评


class ProductSchema(ContractSchema):
    name = text(200)
    category = text(100)
    secure_reliable = fields.Boolean(required=True)  # 安全可靠（信创）


class XinchuangSchema(ContractSchema):
    """信创 statement: the security and reliability of software and hardware products."""

    statement = fields.Boolean(load_default=False)
    products = fields.List(fields.Nested(ProductSchema), load_default=list)


class GradingInputSchema(ContractSchema):
    """GB/T 22240-2020 grading facts: object harmed × degree of harm, for each aspect."""

    business_object = fields.String(required=True, validate=one_of(HARM_OBJECTS, "业务信息受侵害客体"))
    business_degree = fields.String(required=True, validate=one_of(HARM_DEGREES, "业务信息损害程度"))
    service_object = fields.String(required=True, validate=one_of(HARM_OBJECTS, "系统服务受侵害客体"))
    service_degree = fields.String(required=True, validate=one_of(HARM_DEGREES, "系统服务损害程度"))


class EstimateLineSchema(ContractSchema):
    """One line of the estimate (投资估算/概算明细)."""

    item = text(200)
    category = fields.String(
        required=True,
        validate=one_of(["hardware", "software", "development", "integration", "service", "other"], "类别"),
    )
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, error=rule_message("min", "数量至少为 1", "Quantity must be >= 1.")))
    unit_price = yuan(required=True)
    basis = fields.String(load_default="")  # 价格依据（询价、市场价等）


class CatalogEntrySchema(ContractSchema):
    """One entry of the information-resource catalog (信息资源目录, sichuan art. 20)."""

    name = text(200)
    shared = fields.Boolean(required=True)


class ServicePurchaseSchema(ContractSchema):
    """Sichuan art. 19's four conditions for buying a service."""

    not_goods_or_works = fields.Boolean(load_default=False)
    cheaper_than_build = fields.Boolean(load_default=False)
    multiple_providers = fields.Boolean(load_default=False)
    meets_secrecy_rules = fields.Boolean(load_default=False)


class ApplicationSchema(ContractSchema):
    """What a unit declares. Amounts in whole yuan."""

    VERSION = "1.0"

    name = text(200)
    kind = fields.String(required=True, validate=one_of(PROJECT_KINDS, "项目类型"))
    amount = yuan(required=True)  # 估算总投资（元）
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100, error=rule_message("range", "年度必须在 2000 到 2100 之间", "Year must be between 2000 and 2100.")))
    summary = text(4000)  # 建设目标与内容
    basis = fields.String(load_default="")  # 建设依据
    flags = fields.Nested(FlagsSchema, load_default=lambda: _defaults(FlagsSchema))
    facts = fields.Nested(IntakeFactsSchema, load_default=lambda: _defaults(IntakeFactsSchema))
    funding = fields.Nested(FundingSchema, load_default=None, allow_none=True)
    security_plan = fields.Nested(SecurityPlanSchema, load_default=lambda: _defaults(SecurityPlanSchema))
    crypto_plan = fields.Nested(CryptoPlanSchema, load_default=lambda: _defaults(CryptoPlanSchema))
    xinchuang = fields.Nested(XinchuangSchema, load_default=lambda: _defaults(XinchuangSchema))
    grading = fields.Nested(GradingInputSchema, load_default=None, allow_none=True)
    estimate = fields.List(fields.Nested(EstimateLineSchema), load_default=list)
    catalog = fields.List(fields.Nested(CatalogEntrySchema), load_default=list)
    service_purchase = fields.Nested(ServicePurchaseSchema, load_default=None, allow_none=True)
    om_period_years = fields.Integer(load_default=None, allow_none=True)  # 服务周期（年）

    @validates_schema
    def _estimate_matches_amount(self, data, **kwargs):
        lines = data.get("estimate") or []
        if lines:
            total = sum(line["quantity"] * line["unit_price"] for line in lines)
            if total != data.get("amount"):
                raise ValidationError(
                    rule_message(
                        "estimate_total",
                        f"估算明细合计 {total} 元与估算总投资 {data.get('amount')} 元不一致",
                        f"Estimate lines total {total} yuan but amount is {data.get('amount')} yuan.",
                    ),
                    field_name="estimate",
                )


class DeclareProjectSchema(ContractSchema):
    """registry.declare_project arguments."""

    jurisdiction = fields.String(load_default=None, validate=one_of(JURISDICTIONS, "辖区"))
    unit_id = text(64)
    unit_name = text(200)
    application = fields.Nested(ApplicationSchema, required=True)
