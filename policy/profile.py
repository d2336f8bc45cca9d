"""Jurisdiction profiles: one YAML file per jurisdiction under ``policy/profiles/``.

A profile holds every rule, threshold, deadline and pipeline of its jurisdiction, each
with the article it comes from (``cite``). It is validated when it loads; a broken
profile stops the service with a message naming the file, the path and the rule.
Adding a sixth jurisdiction means adding one file.
"""
import functools
import os
import re
from fractions import Fraction

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from contracts.enums import AGENCIES, DOCUMENT_TYPES, POOLS, PROJECT_KINDS, SUBJECTS

from .conditions import ConditionError, check_condition, evaluate

PROFILE_DIR = os.path.join(os.path.dirname(__file__), "profiles")
CITE = re.compile(r"^(sichuan|bazhong|jinjiang|guangyuan|dalate) art\. \d+|^our reading|^GB/T |^suite rule")


class ProfileError(ValueError):
    pass


# Automatic checks the agency services run. A profile names the article behind each
# check that its jurisdiction has; a check with no article in the profile cites the
# opinion request's article instead.
CHECK_KEYS = {
    # registry (data bureau)
    "pre_review", "yearly_plan", "technical_review", "data_sharing", "catalog", "declaration_window",
    # security (cyberspace, secrecy, cryptography)
    "security_plan", "isolated_system", "gov_cloud", "crypto_plan", "crypto_domestic_algorithms",
    "crypto_evaluation", "xinchuang_statement", "xinchuang_products",
    # filing (public security)
    "grading", "dengbao_test",
    # budget (finance)
    "funding_source", "funding_amount", "cost_review",
}


def _cite(required=True):
    return fields.String(
        required=required,
        validate=validate.Regexp(CITE, error="cite must look like '<jurisdiction> art. N', 'our reading: ...', 'suite rule: ...' or 'GB/T ...'"),
    )


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class Cited(_Strict):
    value = fields.Raw(required=True)
    cite = _cite()
    note = fields.String()


class AgencySchema(_Strict):
    name = fields.String(required=True)
    cite = _cite()


class ThresholdSchema(_Strict):
    amount = fields.Integer(required=True, validate=validate.Range(min=0))  # yuan
    direction = fields.String(required=True, validate=validate.OneOf(["at_least", "below"]))
    inclusive = fields.Boolean(required=True)  # 以上/含: true; 以下/不含: false (bazhong art. 34)
    text = fields.String(required=True)  # the words of the seed, e.g. 30万元（含）以上
    cite = _cite()


class IntakeRuleSchema(_Strict):
    key = fields.String(required=True)
    when = fields.Dict(required=True)
    effect = fields.String(required=True, validate=validate.OneOf(["refuse", "warn"]))
    zh = fields.String(required=True)
    en = fields.String(required=True)
    cite = _cite()


class WindowSchema(_Strict):
    key = fields.String(required=True)
    name = fields.String(required=True)
    cutoff = fields.String(required=True, validate=validate.Regexp(r"^\d{2}-\d{2}$"))  # MM-DD
    for_next_year = fields.Boolean(load_default=False)
    cite = _cite()


class DeclarationSchema(_Strict):
    initial_pool = fields.String(required=True, validate=validate.OneOf(list(POOLS)))
    initial_pool_cite = _cite()
    windows = fields.List(fields.Nested(WindowSchema), load_default=list)
    late_effect = fields.String(load_default="warn", validate=validate.OneOf(["warn", "refuse"]))


class DocumentRuleSchema(_Strict):
    when = fields.Dict(load_default=None, allow_none=True)
    requires = fields.List(fields.String(validate=validate.OneOf(list(DOCUMENT_TYPES))), required=True)
    zh = fields.String(required=True)
    cite = _cite()


class OpinionSpecSchema(_Strict):
    agency = fields.String(required=True, validate=validate.OneOf(list(AGENCIES)))
    subject = fields.String(required=True, validate=validate.OneOf(list(SUBJECTS)))
    sign = fields.String(load_default="auto", validate=validate.OneOf(["auto", "officer"]))
    cite = _cite()


class PanelSchema(_Strict):
    size = fields.Integer(required=True, validate=validate.Range(min=1, max=25))
    directed_max_fraction = fields.String(required=True)  # e.g. "1/3"
    pass_fraction = fields.String(required=True)  # share of approve votes needed, e.g. "1/2" (> half)
    organizer = fields.String(required=True)
    cite = _cite()


class StageSchema(_Strict):
    key = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]*$"))
    name = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(["opinions", "documents", "experts", "decision"]))
    when = fields.Dict(load_default=None, allow_none=True)
    opinions = fields.List(fields.Nested(OpinionSpecSchema), load_default=list)
    requires_stages = fields.List(fields.String(), load_default=list)
    cite = _cite()

    @validates_schema
    def _opinions_only_for_opinion_stage(self, data, **kwargs):
        if data["type"] == "opinions" and not data.get("opinions"):
            raise ValidationError("an opinions stage lists at least one opinion", "opinions")
        if data["type"] != "opinions" and data.get("opinions"):
            raise ValidationError("only an opinions stage lists opinions", "opinions")


class DecisionLevelSchema(_Strict):
    when = fields.Dict(load_default=None, allow_none=True)
    body = fields.String(required=True)  # 决策机构
    cite = _cite()


class PoolChoiceSchema(_Strict):
    pool = fields.String(required=True, validate=validate.OneOf(list(POOLS)))
    cite = _cite()


class DecisionSchema(_Strict):
    sign = fields.String(required=True, validate=validate.OneOf(["auto", "officer"]))
    document_prefix = fields.String(required=True)  # 批复文号 prefix, e.g. 锦发改审
    levels = fields.List(fields.Nested(DecisionLevelSchema), required=True, validate=validate.Length(min=1))
    pool = fields.String(required=True, validate=validate.OneOf(list(POOLS)))
    pool_cite = _cite()
    # a kind whose approved projects go to another pool (e.g. bazhong art. 25: O&M → 运行库)
    pool_by_kind = fields.Dict(keys=fields.String(validate=validate.OneOf(list(PROJECT_KINDS))),
                               values=fields.Nested(PoolChoiceSchema), load_default=dict)
    cite = _cite()


class ExpertRulesSchema(_Strict):
    panel = fields.Nested(PanelSchema, required=True)
    failures_before_bar = fields.Integer(load_default=None, allow_none=True)
    bar_months = fields.Integer(load_default=None, allow_none=True)
    bar_cite = _cite(required=False)
    exclude_own_unit_cite = _cite()


class FundingOnApprovalSchema(_Strict):
    when = fields.Dict(load_default=None, allow_none=True)
    pool = fields.String(required=True, validate=validate.OneOf(list(POOLS)))
    zh = fields.String(required=True)
    cite = _cite()


class ProfileSchema(_Strict):
    key = fields.String(required=True)
    name = fields.String(required=True)
    document = fields.String(required=True)
    seed = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(["province", "city", "district", "banner"]))
    admin_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    agencies = fields.Dict(keys=fields.String(validate=validate.OneOf(list(AGENCIES))), values=fields.Nested(AgencySchema), required=True)
    opinion_due_workdays = fields.Nested(Cited, required=True)
    thresholds = fields.Dict(keys=fields.String(), values=fields.Nested(ThresholdSchema), required=True)
    declaration = fields.Nested(DeclarationSchema, required=True)
    intake = fields.List(fields.Nested(IntakeRuleSchema), required=True)
    documents = fields.Dict(keys=fields.String(validate=validate.OneOf(list(PROJECT_KINDS))),
                            values=fields.List(fields.Nested(DocumentRuleSchema)), required=True)
    pipelines = fields.Dict(keys=fields.String(validate=validate.OneOf(list(PROJECT_KINDS))),
                            values=fields.List(fields.Nested(StageSchema)), required=True)
    experts = fields.Nested(ExpertRulesSchema, required=True)
    decision = fields.Nested(DecisionSchema, required=True)
    funding_on_approval = fields.List(fields.Nested(FundingOnApprovalSchema), required=True)
    parameters = fields.Dict(keys=fields.String(), values=fields.Nested(Cited), load_default=dict)
    # the article behind each automatic check an agency service runs (see CHECK_KEYS)
    citations = fields.Dict(keys=fields.String(), values=_cite(), load_default=dict)


class Profile:
    """A validated profile with small helpers; the raw data is ``self.data``."""

    def __init__(self, data, source):
        self.data = data
        self.source = source
        self.key = data["key"]
        self.name = data["name"]
        self.admin_code = data["admin_code"]
        self.thresholds = data["thresholds"]

    def __repr__(self):
        return f"<Profile {self.key}>"

    def agency_name(self, agency):
        entry = self.data["agencies"].get(agency)
        return entry["name"] if entry else agency

    def parameter(self, name, default=None):
        entry = self.data["parameters"].get(name)
        return entry["value"] if entry else default

    def parameter_cite(self, name):
        entry = self.data["parameters"].get(name)
        return entry["cite"] if entry else None

    def cite(self, check_key, fallback=None):
        """The article behind an automatic check in this jurisdiction."""
        return self.data["citations"].get(check_key) or fallback

    def pipeline(self, kind):
        return self.data["pipelines"][kind]

    def stages_for(self, project):
        """The stages that apply to this project, in order (``when`` evaluated)."""
        return [s for s in self.pipeline(project["kind"]) if evaluate(s.get("when"), project, self.thresholds)]

    def required_documents(self, project):
        """(document types, rule) of the first document rule that matches."""
        for rule in self.data["documents"][project["kind"]]:
            if evaluate(rule.get("when"), project, self.thresholds):
                return list(rule["requires"]), rule
        raise ProfileError(f"{self.key}: no document rule matches kind {project['kind']}")

    def decision_level(self, project):
        for level in self.data["decision"]["levels"]:
            if evaluate(level.get("when"), project, self.thresholds):
                return level
        raise ProfileError(f"{self.key}: no decision level matches")

    def approval_pool(self, project):
        """(pool, cite) an approved project goes to: ``decision.pool_by_kind`` else ``decision.pool``."""
        decision = self.data["decision"]
        choice = decision["pool_by_kind"].get(project["kind"])
        if choice:
            return choice["pool"], choice["cite"]
        return decision["pool"], decision["pool_cite"]

    def intake_findings(self, project):
        """The intake rules that fire for this project."""
        return [r for r in self.data["intake"] if evaluate(r["when"], project, self.thresholds)]

    def funding_pool(self, project):
        for rule in self.data["funding_on_approval"]:
            if evaluate(rule.get("when"), project, self.thresholds):
                return rule
        return None

    def meets(self, threshold_name, amount):
        from .conditions import meets_threshold
        return meets_threshold(amount, self.thresholds[threshold_name])


def _fraction(text, where):
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ProfileError(f"{where}: {text!r} is not a fraction like '1/3'") from None
    if not 0 <= value <= 1:
        raise ProfileError(f"{where}: {text!r} must be between 0 and 1")
    return value


def _check_semantics(data, source):
    thresholds = data["thresholds"]

    def cond(c, where):
        if c is None:
            return
        try:
            check_condition(c, thresholds, where)
        except ConditionError as exc:
            raise ProfileError(f"{source}: {exc}") from None

    for i, rule in enumerate(data["intake"]):
        cond(rule["when"], f"intake[{i}].when")
    for kind, rules in data["documents"].items():
        for i, rule in enumerate(rules):
            cond(rule.get("when"), f"documents.{kind}[{i}].when")
        if rules and rules[-1].get("when") is not None:
            raise ProfileError(f"{source}: documents.{kind}: the last rule must have no 'when' (the default path)")
    for kind in ("build", "service", "om"):
        if kind not in data["pipelines"]:
            raise ProfileError(f"{source}: pipelines.{kind} is missing")
        if kind not in data["documents"]:
            raise ProfileError(f"{source}: documents.{kind} is missing")
    for kind, stages in data["pipelines"].items():
        seen = set()
        for i, stage in enumerate(stages):
            where = f"pipelines.{kind}[{i}]"
            cond(stage.get("when"), where + ".when")
            if stage["key"] in seen:
                raise ProfileError(f"{source}: {where}: stage key {stage['key']!r} used twice")
            for req in stage["requires_stages"]:
                if req not in seen:
                    raise ProfileError(f"{source}: {where}: requires stage {req!r}, which does not come before it")
            seen.add(stage["key"])
            for op in stage["opinions"]:
                if op["agency"] not in data["agencies"]:
                    raise ProfileError(f"{source}: {where}: agency {op['agency']!r} is not in this profile's agencies")
        if not stages or stages[-1]["type"] != "decision":
            raise ProfileError(f"{source}: pipelines.{kind}: the last stage must be the decision")
    for i, level in enumerate(data["decision"]["levels"]):
        cond(level.get("when"), f"decision.levels[{i}].when")
    if data["decision"]["levels"][-1].get("when") is not None:
        raise ProfileError(f"{source}: decision.levels: the last level must have no 'when'")
    for i, rule in enumerate(data["funding_on_approval"]):
        cond(rule.get("when"), f"funding_on_approval[{i}].when")
    panel = data["experts"]["panel"]
    _fraction(panel["directed_max_fraction"], f"{source}: experts.panel.directed_max_fraction")
    _fraction(panel["pass_fraction"], f"{source}: experts.panel.pass_fraction")
    exp = data["experts"]
    if (exp.get("failures_before_bar") is None) != (exp.get("bar_months") is None):
        raise ProfileError(f"{source}: experts: failures_before_bar and bar_months go together")
    if exp.get("failures_before_bar") is not None and not exp.get("bar_cite"):
        raise ProfileError(f"{source}: experts: bar_cite is required with failures_before_bar")
    unknown = set(data["citations"]) - CHECK_KEYS
    if unknown:
        raise ProfileError(f"{source}: citations: unknown check keys {sorted(unknown)}")
    if "drc" not in data["agencies"]:
        raise ProfileError(f"{source}: agencies.drc is required (the approving body)")


def parse_profile(text, source="<string>"):
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from None
    try:
        data = ProfileSchema().load(raw or {})
    except ValidationError as exc:
        raise ProfileError(f"{source}: profile does not fit its schema: {exc.messages}") from None
    _check_semantics(data, source)
    return Profile(data, source)


def available():
    return sorted(f[:-5] for f in os.listdir(PROFILE_DIR) if f.endswith(".yaml"))


@functools.lru_cache(maxsize=None)
def load_profile(key, directory=None):
    """Load and validate ``policy/profiles/<key>.yaml`` (or ``<directory>/<key>.yaml``:
    a deployment's own copy, e.g. the benchmark's variant with every signature automatic)."""
    if not re.match(r"^[a-z][a-z0-9_]*$", key or ""):
        raise ProfileError(f"jurisdiction key {key!r} is not valid")
    path = os.path.join(directory or PROFILE_DIR, f"{key}.yaml")
    if not os.path.exists(path):
        raise ProfileError(f"no profile for jurisdiction {key!r}; available: {', '.join(available())}")
    with open(path, encoding="utf-8") as fh:
        profile = parse_profile(fh.read(), source=os.path.relpath(path))
    if profile.key != key:
        raise ProfileError(f"{path}: key {profile.key!r} does not match the file name")
    return profile
