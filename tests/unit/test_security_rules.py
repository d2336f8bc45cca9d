"""The security service's rules (网络安全审核, 密码应用与信创审核): findings, severities,
articles from the jurisdiction's profile, and the verdict they add up to. No network."""
import copy
import os

import pytest
import yaml

from contracts import load
from contracts.application import ApplicationSchema
from policy import load_profile
from policy.profile import PROFILE_DIR, parse_profile
from runtime.opinions import verdict_from_findings
from services.security import domain

pytestmark = pytest.mark.unit

REQUEST_CITE = "jinjiang art. 8"  # the article the opinion request names


@pytest.fixture(scope="module")
def jinjiang():
    return load_profile("jinjiang")


def profile_with(citations=None, parameters=None, drop_citations=()):
    """Jinjiang's profile with some citations or parameters changed (validated as any profile)."""
    with open(os.path.join(PROFILE_DIR, "jinjiang.yaml"), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    data = copy.deepcopy(data)
    data.setdefault("citations", {}).update(citations or {})
    for key in drop_citations:
        data["citations"].pop(key, None)
    data.setdefault("parameters", {}).update(parameters or {})
    return parse_profile(yaml.safe_dump(data, allow_unicode=True), source="test")


def make_application(**sections):
    """An application that passes every security and crypto check; override sections."""
    app = {
        "name": "智慧锦江城运平台",
        "kind": "build",
        "amount": 1_200_000,
        "year": 2026,
        "summary": "建设城市运行管理平台",
        "flags": {"classified": False},
        "facts": {"isolated_system": False, "on_gov_cloud": True},
        "security_plan": {"present": True, "level_claimed": 3, "measures": ["边界防护", "访问控制", "安全审计"]},
        "crypto_plan": {"present": True, "algorithms": ["SM2", "SM3", "SM4"], "evaluation_planned": True},
        "xinchuang": {"statement": True, "products": [
            {"name": "麒麟操作系统", "category": "操作系统", "secure_reliable": True},
        ]},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(app.get(key), dict):
            app[key] = {**app[key], **value}
        else:
            app[key] = value
    return app


def rules(draft):
    return [f["rule"] for f in draft.findings]


def only(draft, rule):
    found = [f for f in draft.findings if f["rule"] == rule]
    assert len(found) == 1, draft.findings
    return found[0]


# ---- subject: security ------------------------------------------------------------------

def test_a_complete_security_plan_is_approved_without_findings(jinjiang):
    draft = domain.check("security", make_application(), jinjiang, REQUEST_CITE)
    assert draft.findings == [] and draft.conditions == []
    assert draft.resolved_verdict() == "approve"
    assert draft.data["level_claimed"] == 3


def test_a_missing_security_plan_blocks_and_cites_the_profiles_article(jinjiang):
    draft = domain.check("security", make_application(security_plan={"present": False}), jinjiang, REQUEST_CITE)
    f = only(draft, "security_plan_missing")
    assert f["severity"] == "blocking"
    assert f["cite"] == jinjiang.cite("security_plan") == "jinjiang art. 18"
    assert "网络安全方案" in f["zh"] and "security plan" in f["en"]
    assert draft.resolved_verdict() == "reject"


def test_a_missing_plan_is_one_finding_not_three(jinjiang):
    app = make_application(security_plan={"present": False, "level_claimed": None, "measures": []})
    draft = domain.check("security", app, jinjiang, REQUEST_CITE)
    assert rules(draft) == ["security_plan_missing"]


def test_a_plan_without_a_claimed_level_blocks(jinjiang):
    draft = domain.check("security", make_application(security_plan={"level_claimed": None}), jinjiang, REQUEST_CITE)
    f = only(draft, "security_level_missing")
    assert f["severity"] == "blocking" and f["cite"] == "jinjiang art. 18"
    assert draft.resolved_verdict() == "reject"


def test_a_plan_without_measures_is_a_warning_with_a_condition(jinjiang):
    draft = domain.check("security", make_application(security_plan={"measures": [" "]}), jinjiang, REQUEST_CITE)
    f = only(draft, "security_measures_missing")
    assert f["severity"] == "warning"
    assert len(draft.conditions) == 1 and "jinjiang art. 18" in draft.conditions[0]
    assert draft.resolved_verdict() == "approve_with_conditions"


def test_an_isolated_system_is_strictly_controlled_a_warning_with_a_condition(jinjiang):
    draft = domain.check("security", make_application(facts={"isolated_system": True}), jinjiang, REQUEST_CITE)
    f = only(draft, "isolated_system")
    assert f["severity"] == "warning"
    assert "严格控制" in f["zh"]
    assert f["cite"] == jinjiang.cite("isolated_system") == "jinjiang art. 3"
    assert any("数据共享交换平台" in c for c in draft.conditions)
    assert draft.resolved_verdict() == "approve_with_conditions"


def test_a_jurisdiction_that_refuses_isolated_systems_blocks_them():
    strict = profile_with(parameters={"isolated_system_effect": {"value": "refuse", "cite": "jinjiang art. 3"}})
    draft = domain.check("security", make_application(facts={"isolated_system": True}), strict, REQUEST_CITE)
    f = only(draft, "isolated_system")
    assert f["severity"] == "blocking" and "不予批准" in f["zh"]
    assert draft.resolved_verdict() == "reject"


def test_without_an_article_for_the_check_an_isolated_system_cites_the_parameters_article():
    strict = profile_with(parameters={"isolated_system_effect": {"value": "refuse", "cite": "jinjiang art. 77"}},
                          drop_citations=["isolated_system"])
    draft = domain.check("security", make_application(facts={"isolated_system": True}), strict, REQUEST_CITE)
    assert only(draft, "isolated_system")["cite"] == "jinjiang art. 77"


def test_an_unknown_isolated_system_effect_is_a_profile_error_not_a_silent_pass():
    odd = profile_with(parameters={"isolated_system_effect": {"value": "ban", "cite": "jinjiang art. 3"}})
    with pytest.raises(ValueError, match="isolated_system_effect"):
        domain.check("security", make_application(facts={"isolated_system": True}), odd, REQUEST_CITE)


def test_a_system_off_the_government_cloud_is_a_warning(jinjiang):
    draft = domain.check("security", make_application(facts={"on_gov_cloud": False}), jinjiang, REQUEST_CITE)
    f = only(draft, "not_on_gov_cloud")
    assert f["severity"] == "warning"
    # Jinjiang's profile names no article for the cloud check: the request's article stands
    assert jinjiang.cite("gov_cloud") is None
    assert f["cite"] == REQUEST_CITE
    assert draft.resolved_verdict() == "approve_with_conditions"


def test_a_classified_system_is_approved_on_condition_of_classified_protection(jinjiang):
    draft = domain.check("security", make_application(flags={"classified": True}), jinjiang, REQUEST_CITE)
    f = only(draft, "classified_system")
    assert f["severity"] == "info"
    assert len(draft.conditions) == 1 and "分级保护" in draft.conditions[0]
    assert draft.resolved_verdict() == "approve_with_conditions"
    assert draft.data["classified"] is True


def test_every_security_cite_comes_from_the_profile_when_it_names_one():
    custom = profile_with(citations={"security_plan": "jinjiang art. 99", "gov_cloud": "jinjiang art. 98",
                                     "isolated_system": "jinjiang art. 97"})
    app = make_application(security_plan={"level_claimed": None, "measures": []},
                           facts={"isolated_system": True, "on_gov_cloud": False}, flags={"classified": True})
    draft = domain.check("security", app, custom, REQUEST_CITE)
    cites = {f["rule"]: f["cite"] for f in draft.findings}
    assert cites == {
        "security_level_missing": "jinjiang art. 99",
        "security_measures_missing": "jinjiang art. 99",
        "isolated_system": "jinjiang art. 97",
        "not_on_gov_cloud": "jinjiang art. 98",
        "classified_system": "jinjiang art. 99",
    }


def test_a_check_the_profile_does_not_cite_falls_back_to_the_requests_article():
    bare = profile_with(drop_citations=["security_plan"])
    draft = domain.check("security", make_application(security_plan={"present": False}), bare, "jinjiang art. 5")
    assert only(draft, "security_plan_missing")["cite"] == "jinjiang art. 5"


def test_an_application_with_empty_sections_gets_the_schemas_defaults(jinjiang):
    loaded = load(ApplicationSchema, {"name": "n", "kind": "build", "amount": 1, "year": 2026, "summary": "s"})
    assert loaded["facts"]["on_gov_cloud"] is True  # nested sections get their schema's defaults
    security = domain.check("security", loaded, jinjiang, REQUEST_CITE)
    assert rules(security) == ["security_plan_missing"]  # on gov cloud and not isolated by default
    crypto = domain.check("crypto", loaded, jinjiang, REQUEST_CITE)
    assert rules(crypto) == ["crypto_plan_missing", "xinchuang_statement_missing"]


# ---- subject: crypto --------------------------------------------------------------------

def test_a_complete_crypto_plan_on_domestic_algorithms_is_approved(jinjiang):
    draft = domain.check("crypto", make_application(), jinjiang, REQUEST_CITE)
    assert draft.findings == [] and draft.resolved_verdict() == "approve"
    assert draft.data["domestic_algorithms"] == ["SM2", "SM3", "SM4"]


def test_a_missing_crypto_plan_blocks(jinjiang):
    draft = domain.check("crypto", make_application(crypto_plan={"present": False}), jinjiang, REQUEST_CITE)
    f = only(draft, "crypto_plan_missing")
    assert f["severity"] == "blocking" and f["cite"] == jinjiang.cite("crypto_plan")
    assert "crypto_no_domestic_algorithm" not in rules(draft)
    assert draft.resolved_verdict() == "reject"


@pytest.mark.parametrize("algorithms", [[], ["RSA", "AES-256", "SHA-256"]])
def test_a_crypto_plan_without_any_domestic_algorithm_blocks(jinjiang, algorithms):
    draft = domain.check("crypto", make_application(crypto_plan={"algorithms": algorithms}), jinjiang, REQUEST_CITE)
    f = only(draft, "crypto_no_domestic_algorithm")
    assert f["severity"] == "blocking"
    assert f["cite"] == jinjiang.cite("crypto_domestic_algorithms") == "jinjiang art. 5"
    assert "SM2/SM3/SM4" in f["zh"]
    for name in algorithms:
        assert name.replace("-", "") in f["zh"]
    assert draft.resolved_verdict() == "reject"


def test_foreign_algorithms_alongside_domestic_ones_are_a_warning_naming_them(jinjiang):
    app = make_application(crypto_plan={"algorithms": ["sm2", "SM-4", "RSA", "AES"]})
    draft = domain.check("crypto", app, jinjiang, REQUEST_CITE)
    f = only(draft, "crypto_foreign_algorithms")
    assert f["severity"] == "warning" and "RSA、AES" in f["zh"] and "RSA, AES" in f["en"]
    assert draft.data["domestic_algorithms"] == ["SM2", "SM4"]
    assert any("RSA" in c for c in draft.conditions)
    assert draft.resolved_verdict() == "approve_with_conditions"


def test_algorithm_names_are_normalized():
    assert domain.split_algorithms([" sm_3 ", "Sm-2", "zuc", "rsa", "SM2", ""]) == (["SM3", "SM2", "ZUC"], ["RSA"])


def test_a_crypto_plan_without_a_planned_evaluation_is_approved_on_condition_of_a_crypto_evaluation(jinjiang):
    app = make_application(crypto_plan={"evaluation_planned": False})
    draft = domain.check("crypto", app, jinjiang, REQUEST_CITE)
    f = only(draft, "crypto_evaluation_not_planned")
    assert f["severity"] == "info"
    assert f["cite"] == jinjiang.cite("crypto_evaluation") == "jinjiang art. 15"
    assert len(draft.conditions) == 1 and "密评" in draft.conditions[0] and "jinjiang art. 15" in draft.conditions[0]
    assert draft.resolved_verdict() == "approve_with_conditions"


def test_a_missing_xinchuang_statement_blocks(jinjiang):
    draft = domain.check("crypto", make_application(xinchuang={"statement": False}), jinjiang, REQUEST_CITE)
    f = only(draft, "xinchuang_statement_missing")
    assert f["severity"] == "blocking" and f["cite"] == "jinjiang art. 19"
    assert draft.resolved_verdict() == "reject"


def test_products_that_are_not_secure_and_reliable_are_a_warning_listing_them(jinjiang):
    products = [
        {"name": "某国外数据库", "category": "数据库", "secure_reliable": False},
        {"name": "麒麟操作系统", "category": "操作系统", "secure_reliable": True},
        {"name": "某国外中间件", "category": "中间件", "secure_reliable": False},
    ]
    draft = domain.check("crypto", make_application(xinchuang={"products": products}), jinjiang, REQUEST_CITE)
    f = only(draft, "xinchuang_products_unreliable")
    assert f["severity"] == "warning" and f["cite"] == jinjiang.cite("xinchuang_products")
    assert "某国外数据库、某国外中间件" in f["zh"] and "麒麟" not in f["zh"]
    assert draft.data["unreliable_products"] == ["某国外数据库", "某国外中间件"]
    assert draft.resolved_verdict() == "approve_with_conditions"


def test_the_xinchuang_checks_run_even_without_a_crypto_plan(jinjiang):
    app = make_application(crypto_plan={"present": False}, xinchuang={"statement": False})
    draft = domain.check("crypto", app, jinjiang, REQUEST_CITE)
    assert rules(draft) == ["crypto_plan_missing", "xinchuang_statement_missing"]


# ---- verdicts, dispatch and the dry run's article ---------------------------------------

def test_the_draft_verdict_is_the_shared_derivation_from_findings_and_conditions(jinjiang):
    apps = [
        make_application(),
        make_application(facts={"on_gov_cloud": False}),
        make_application(crypto_plan={"evaluation_planned": False}),
        make_application(security_plan={"present": False}, facts={"on_gov_cloud": False}),
    ]
    for subject in domain.SUBJECTS:
        for app in apps:
            draft = domain.check(subject, app, jinjiang, REQUEST_CITE)
            assert draft.verdict is None
            assert draft.resolved_verdict() == verdict_from_findings(draft.findings, draft.conditions)


def test_a_blocking_finding_outweighs_warnings(jinjiang):
    app = make_application(security_plan={"present": False}, facts={"on_gov_cloud": False, "isolated_system": True})
    draft = domain.check("security", app, jinjiang, REQUEST_CITE)
    assert {f["severity"] for f in draft.findings} == {"blocking", "warning"}
    assert draft.resolved_verdict() == "reject"


def test_a_subject_the_service_does_not_answer_is_refused(jinjiang):
    with pytest.raises(domain.UnsupportedSubject):
        domain.check("grading", make_application(), jinjiang, REQUEST_CITE)


def test_a_dry_run_cites_the_article_under_which_the_jurisdiction_asks_for_the_opinion(jinjiang):
    assert domain.subject_cite(jinjiang, "security", "build") == "jinjiang art. 8"
    assert domain.subject_cite(jinjiang, "crypto", "om") == "jinjiang art. 8"  # O&M asks for none: other kinds
    assert domain.subject_cite(jinjiang, "no_such_subject").startswith("suite rule:")


# ---- compliance standing ----------------------------------------------------------------

def entry(agency, subject, verdict, at):
    return {"agency": agency, "subject": subject, "verdict": verdict, "at": at}


def test_a_project_without_opinions_has_unknown_compliance():
    assert domain.compliance_status([]) == "unknown"


def test_any_rejecting_opinion_makes_the_project_non_compliant():
    entries = [entry("cac", "security", "approve", "2026-01-01"), entry("secrecy", "crypto", "reject", "2026-01-02")]
    assert domain.compliance_status(entries) == "non_compliant"


def test_a_conditional_opinion_makes_the_project_conditionally_compliant():
    entries = [entry("cac", "security", "approve_with_conditions", "2026-01-01"),
               entry("secrecy", "crypto", "approve", "2026-01-02")]
    assert domain.compliance_status(entries) == "conditional"


def test_only_the_latest_opinion_of_each_agency_and_subject_counts():
    entries = [entry("secrecy", "crypto", "approve", "2026-03-01"),
               entry("secrecy", "crypto", "reject", "2026-01-01"),
               entry("cac", "security", "approve", "2026-02-01")]
    assert domain.compliance_status(entries) == "compliant"
