"""The five jurisdiction profiles (policy/profiles/*.yaml): they load, every rule cites its
own jurisdiction's article, and the rules read the seeds' boundaries the way POLICY.md says.
Plain data: no network, no database."""
import copy
import os
import re
from decimal import Decimal

import pytest
import yaml

from contracts.application import ApplicationSchema
from contracts.enums import DOCUMENT_TYPES
from policy import ProfileError, available, load_profile, parse_profile
from policy.profile import CHECK_KEYS, CITE, PROFILE_DIR

JURISDICTIONS = ["sichuan", "bazhong", "jinjiang", "guangyuan", "dalate"]

# The article numbers each seed prints. Dalate's text jumps from 第五条 to 第八条.
ARTICLES = {
    "sichuan": set(range(1, 55)),
    "bazhong": set(range(1, 39)),
    "jinjiang": set(range(1, 23)),
    "guangyuan": set(range(1, 27)),
    "dalate": set(range(1, 33)) - {6, 7},
}
ART_REF = re.compile(r"\b(sichuan|bazhong|jinjiang|guangyuan|dalate) art\. (\d+)")


def application(kind="build", amount=1_000_000, flags=None, facts=None, **overrides):
    """An application as the registry loads it (defaults filled in): clean unless overridden."""
    data = {
        "name": "测试项目", "kind": kind, "amount": amount, "year": 2025, "summary": "建设目标与内容",
        "basis": "规划依据", "flags": flags or {}, "facts": facts or {},
        "funding": {"source": "budget", "amount": amount},
        "catalog": [{"name": "人口基础信息", "shared": True}],
    }
    if kind == "service":
        data["service_purchase"] = {"not_goods_or_works": True, "cheaper_than_build": True,
                                    "multiple_providers": True, "meets_secrecy_rules": True}
    data.update(overrides)
    return ApplicationSchema().load(data)


def raw(key):
    with open(os.path.join(PROFILE_DIR, f"{key}.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def variant(key, change):
    """The profile ``key`` with ``change(data)`` applied, parsed afresh."""
    data = copy.deepcopy(raw(key))
    change(data)
    return parse_profile(yaml.safe_dump(data, allow_unicode=True), source=f"{key}-variant")


def cites_in(node, path=""):
    """Every (path, cite) in a raw profile: ``cite``, ``*_cite`` and ``citations`` values."""
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{path}.{k}" if path else str(k)
            if isinstance(v, str) and (k == "cite" or k.endswith("_cite") or path == "citations"):
                yield here, v
            else:
                yield from cites_in(v, here)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from cites_in(v, f"{path}[{i}]")


def keys_of(findings):
    return {f["key"] for f in findings}


# ---- loading and citations --------------------------------------------------------------

def test_all_five_profiles_are_available():
    assert set(available()) >= set(JURISDICTIONS)


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_each_profile_loads_and_matches_its_file_name(key):
    profile = load_profile(key)
    assert profile.key == key
    assert "drc" in profile.data["agencies"]


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_every_cite_names_its_own_jurisdiction_and_a_printed_article(key):
    found = list(cites_in(raw(key)))
    assert len(found) > 30
    for path, cite in found:
        assert CITE.match(cite), f"{key}: {path}: {cite!r}"
        refs = ART_REF.findall(cite)
        if not cite.startswith(("our reading", "suite rule", "GB/T")):
            assert refs, f"{key}: {path}: {cite!r} names no article"
        for jurisdiction, number in refs:
            assert jurisdiction == key, f"{key}: {path} cites another jurisdiction: {cite!r}"
            assert int(number) in ARTICLES[key], f"{key}: {path}: {cite!r} is not an article of the seed"


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_readings_are_marked_as_ours(key):
    data = raw(key)
    assert data["opinion_due_workdays"]["cite"].startswith("our reading")
    assert data["experts"]["exclude_own_unit_cite"].startswith("suite rule")


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_citations_only_use_known_check_keys(key):
    assert set(load_profile(key).data["citations"]) <= CHECK_KEYS


def test_a_check_the_seed_does_not_support_falls_back_to_the_request():
    guangyuan = load_profile("guangyuan")
    assert guangyuan.cite("pre_review") == "guangyuan art. 10"
    assert guangyuan.cite("grading", fallback="guangyuan art. 5") == "guangyuan art. 5"
    assert load_profile("bazhong").cite("cost_review") is None


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_every_pipeline_ends_with_the_decision_signed_by_an_officer(key):
    profile = load_profile(key)
    assert profile.data["decision"]["sign"] == "officer"
    for kind in ("build", "service", "om"):
        assert profile.pipeline(kind)[-1]["type"] == "decision"


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_officers_have_at_least_one_opinion_to_sign(key):
    profile = load_profile(key)
    signs = [op["sign"] for stages in profile.data["pipelines"].values() for s in stages for op in s["opinions"]]
    assert "officer" in signs


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_document_rules_end_with_a_default_and_name_known_documents(key):
    profile = load_profile(key)
    for kind, rules in profile.data["documents"].items():
        assert rules[-1].get("when") is None
        for rule in rules:
            assert set(rule["requires"]) <= set(DOCUMENT_TYPES)


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_intake_rule_keys_are_unique(key):
    intake = load_profile(key).data["intake"]
    assert len({r["key"] for r in intake}) == len(intake)


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_a_clean_application_passes_intake_without_refusal(key):
    profile = load_profile(key)
    for kind in ("build", "service", "om"):
        refusals = [r for r in profile.intake_findings(application(kind=kind)) if r["effect"] == "refuse"]
        assert refusals == [], (key, kind, keys_of(refusals))


def test_only_jinjiang_bars_a_project_after_failed_reviews():
    for key in JURISDICTIONS:
        bar = load_profile(key).data["experts"]["failures_before_bar"]
        assert (bar is not None) == (key == "jinjiang")
    assert load_profile("jinjiang").data["experts"]["panel"]["directed_max_fraction"] == "1/3"


@pytest.mark.parametrize("key, prefix", [
    ("sichuan", "川发改审批"), ("bazhong", "巴发改审"), ("jinjiang", "锦发改审"),
    ("guangyuan", "广发改审"), ("dalate", "达发改审"),
])
def test_each_jurisdiction_numbers_its_approvals_with_its_own_prefix(key, prefix):
    assert load_profile(key).data["decision"]["document_prefix"] == prefix


# ---- boundaries -------------------------------------------------------------------------

def test_bazhong_merges_the_three_documents_below_300wan_but_not_at_300wan():
    bazhong = load_profile("bazhong")
    merged, rule = bazhong.required_documents(application(amount=2_999_999))
    assert merged == ["implementation_plan"] and rule["cite"] == "bazhong art. 12"
    separate, rule = bazhong.required_documents(application(amount=3_000_000))
    assert separate == ["proposal"] and rule["cite"] == "bazhong art. 13"


def test_bazhong_reserve_pool_projects_go_straight_to_the_fsr():
    docs, rule = load_profile("bazhong").required_documents(
        application(amount=5_000_000, flags={"in_reserve_pool": True}))
    assert docs == ["fsr"] and rule["cite"] == "bazhong art. 13"


def test_bazhong_scope_includes_30wan_and_below_it_only_warns_to_file():
    bazhong = load_profile("bazhong")
    assert bazhong.meets("scope", 300_000)
    below = bazhong.intake_findings(application(amount=299_999))
    assert [(r["key"], r["effect"], r["cite"]) for r in below] == [("below_scope_files_only", "warn", "bazhong art. 28")]
    assert bazhong.intake_findings(application(amount=300_000)) == []


def test_sichuan_merges_into_an_implementation_plan_up_to_and_including_2000wan():
    sichuan = load_profile("sichuan")
    assert sichuan.required_documents(application(amount=20_000_000))[0] == ["implementation_plan"]
    assert sichuan.required_documents(application(amount=20_000_001))[0] == ["fsr", "preliminary_design"]


@pytest.mark.parametrize("flag", ["mandated", "urgent"])
def test_sichuan_mandated_or_urgent_projects_merge_at_any_amount(flag):
    docs, rule = load_profile("sichuan").required_documents(application(amount=900_000_000, flags={flag: True}))
    assert docs == ["implementation_plan"] and rule["cite"] == "sichuan art. 18"


def test_sichuan_service_purchase_needs_a_service_requirements_plan():
    docs, rule = load_profile("sichuan").required_documents(application(kind="service"))
    assert docs == ["service_requirements"] and rule["cite"] == "sichuan art. 19"


def test_jinjiang_needs_the_yearly_plan_from_30wan_but_not_below():
    jinjiang = load_profile("jinjiang")
    assert "yearly_plan" in [s["key"] for s in jinjiang.stages_for(application(amount=300_000))]
    assert "yearly_plan" not in [s["key"] for s in jinjiang.stages_for(application(amount=299_999))]


@pytest.mark.parametrize("amount, body_has, body_lacks", [
    (3_999_999, "按政府采购程序实施", "常务会议"),
    (4_000_000, "区政府常务会议", "区委常委会议"),
    (29_999_999, "区政府常务会议", "区委常委会议"),
    (30_000_000, "区委常委会议", None),
])
def test_jinjiang_decision_level_follows_the_amount_bands(amount, body_has, body_lacks):
    level = load_profile("jinjiang").decision_level(application(amount=amount))
    assert body_has in level["body"] and level["cite"] == "jinjiang art. 10"
    if body_lacks:
        assert body_lacks not in level["body"]


def test_guangyuan_supervision_and_testing_start_above_100wan():
    guangyuan = load_profile("guangyuan")
    for name in ("supervision", "system_testing"):
        assert not guangyuan.meets(name, 1_000_000)
        assert guangyuan.meets(name, 1_000_001)
    assert guangyuan.parameter("supervision_threshold_yuan") == 1_000_000
    assert guangyuan.parameter_cite("supervision_threshold_yuan") == "guangyuan art. 14"


def test_sichuan_and_dalate_supervise_every_project():
    assert load_profile("sichuan").meets("supervision", 1)
    assert load_profile("dalate").meets("supervision", 1)


# ---- documents and stages --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["build", "service"])
@pytest.mark.parametrize("flag", ["planned", "emergency"])
def test_dalate_planned_or_emergency_projects_skip_the_proposal(kind, flag):
    docs, rule = load_profile("dalate").required_documents(application(kind=kind, flags={flag: True}))
    assert "proposal" not in docs and docs == ["fsr", "preliminary_design"] and rule["cite"] == "dalate art. 5"


def test_dalate_other_projects_file_the_proposal_first():
    docs, _ = load_profile("dalate").required_documents(application())
    assert docs == ["proposal", "fsr", "preliminary_design"]


def test_dalate_simple_projects_get_a_simplified_review_without_experts():
    dalate = load_profile("dalate")
    assert "expert_review" in [s["key"] for s in dalate.stages_for(application())]
    assert "expert_review" not in [s["key"] for s in dalate.stages_for(application(flags={"simple": True}))]


@pytest.mark.parametrize("kind", ["build", "service", "om"])
def test_guangyuan_pre_review_comes_first_and_the_decision_requires_it(kind):
    stages = load_profile("guangyuan").pipeline(kind)
    assert stages[0]["key"] == "pre_review"
    assert stages[0]["opinions"][0]["agency"] == "data_bureau"
    decision = stages[-1]
    assert decision["requires_stages"] == ["pre_review"] and decision["cite"] == "guangyuan art. 10"


def test_guangyuan_asks_the_secrecy_bureau_only_for_classified_projects():
    guangyuan = load_profile("guangyuan")
    assert "secrecy_review" not in [s["key"] for s in guangyuan.stages_for(application())]
    assert "secrecy_review" in [s["key"] for s in guangyuan.stages_for(application(flags={"classified": True}))]


def test_sichuan_runs_central_review_documents_written_opinions_experts_then_decision():
    stages = load_profile("sichuan").pipeline("build")
    assert [s["type"] for s in stages] == ["opinions", "documents", "opinions", "experts", "decision"]
    written = stages[2]
    assert {op["agency"] for op in written["opinions"]} == {
        "cac", "secrecy", "crypto", "miit", "public_security", "finance", "data_bureau"}
    assert all(op["cite"] == "sichuan art. 22" for op in written["opinions"])
    assert {(op["agency"], op["subject"]) for op in written["opinions"]} >= {("finance", "funding"), ("data_bureau", "technical")}


def test_bazhong_asks_the_committee_members_but_not_the_drc_which_decides():
    stages = load_profile("bazhong").pipeline("build")
    assert [s["type"] for s in stages] == ["opinions", "experts", "documents", "decision"]
    agencies = {op["agency"] for op in stages[0]["opinions"]}
    assert agencies == {"cac", "secrecy", "public_security", "finance", "data_bureau"}


def test_dalate_reviews_technically_at_the_office_before_the_drc_decides():
    stages = load_profile("dalate").pipeline("build")
    keys = [s["key"] for s in stages]
    assert keys.index("documents") < keys.index("technical_review") < keys.index("expert_review") < keys.index("decision")
    technical = stages[keys.index("technical_review")]
    assert {"agency": "data_bureau", "subject": "technical", "sign": "officer", "cite": "dalate art. 8"} in technical["opinions"]


# ---- intake ----------------------------------------------------------------------------

SICHUAN_NEGATIVE_LIST = [
    ("new_datacenter_or_servers", {"new_datacenter": True}),
    ("new_datacenter_or_servers", {"new_servers": True}),
    ("network_lease", {"internet_line_lease": True}),
    ("network_lease", {"private_network_lease": True}),
    ("not_on_gov_cloud", {"on_gov_cloud": False}),
    ("rebuilds_common_system", {"rebuilds_common_system": True}),
    ("not_on_sharing_platform", {"connected_to_sharing_platform": False}),
    ("unclear_goals_or_sharing", {"goals_clear": False}),
    ("unclear_goals_or_sharing", {"data_catalog_done": False}),
    ("unclear_goals_or_sharing", {"data_shared": False}),
    ("non_shared_infrastructure", {"non_shared_infrastructure": True}),
    ("upgrade_of_unaccepted", {"upgrade_of_unaccepted": True}),
]


@pytest.mark.parametrize("key, facts", SICHUAN_NEGATIVE_LIST)
def test_each_sichuan_negative_list_item_refuses(key, facts):
    (found,) = load_profile("sichuan").intake_findings(application(facts=facts))
    assert (found["key"], found["effect"], found["cite"]) == (key, "refuse", "sichuan art. 8")


@pytest.mark.parametrize("key, facts", SICHUAN_NEGATIVE_LIST)
def test_a_legal_basis_lifts_each_sichuan_negative_list_item(key, facts):
    assert load_profile("sichuan").intake_findings(application(facts={**facts, "legal_basis": True})) == []


def test_sichuan_negative_list_has_the_eight_items_of_article_8():
    items = [r for r in load_profile("sichuan").data["intake"] if r["cite"] == "sichuan art. 8"]
    assert len(items) == 8


def test_sichuan_not_on_cloud_applies_to_non_classified_projects_only():
    found = load_profile("sichuan").intake_findings(application(flags={"classified": True}, facts={"on_gov_cloud": False}))
    assert found == []


def test_sichuan_refuses_a_unit_that_has_not_aggregated_its_data():
    (found,) = load_profile("sichuan").intake_findings(application(facts={"unit_data_aggregated": False}))
    assert (found["key"], found["effect"], found["cite"]) == ("unit_data_not_aggregated", "refuse", "sichuan art. 12")


def test_sichuan_refuses_an_application_without_its_catalog():
    (found,) = load_profile("sichuan").intake_findings(application(catalog=[]))
    assert (found["key"], found["effect"], found["cite"]) == ("catalog_missing", "refuse", "sichuan art. 20")


def test_sichuan_service_purchase_must_meet_all_four_conditions():
    sichuan = load_profile("sichuan")
    found = sichuan.intake_findings(application(kind="service", service_purchase=None))
    assert len(found) == 4 and {f["cite"] for f in found} == {"sichuan art. 19"}
    one_short = application(kind="service", service_purchase={
        "not_goods_or_works": True, "cheaper_than_build": False, "multiple_providers": True, "meets_secrecy_rules": True})
    assert keys_of(sichuan.intake_findings(one_short)) == {"service_not_cheaper"}


@pytest.mark.parametrize("key, overrides", [
    ("no_funding_source", {"funding": None}),
    ("materials_incomplete", {"facts": {"materials_complete": False}}),
    ("existing_system_sufficient", {"facts": {"existing_system_sufficient": True}}),
    ("need_unclear", {"facts": {"goals_clear": False}}),
    ("data_not_shared", {"facts": {"data_shared": False}}),
    ("new_system_refuses_sharing", {"facts": {"connected_to_sharing_platform": False}}),
])
def test_bazhong_article_11_refuses(key, overrides):
    (found,) = load_profile("bazhong").intake_findings(application(**overrides))
    assert (found["key"], found["effect"], found["cite"]) == (key, "refuse", "bazhong art. 11")


def test_bazhong_refuses_isolated_systems_and_a_growing_system_count():
    bazhong = load_profile("bazhong")
    (isolated,) = bazhong.intake_findings(application(facts={"isolated_system": True}))
    assert (isolated["key"], isolated["effect"], isolated["cite"]) == ("isolated_system", "refuse", "bazhong art. 5")
    (grows,) = bazhong.intake_findings(application(facts={"unit_system_count_delta": 1}))
    assert (grows["key"], grows["effect"], grows["cite"]) == ("system_count_increase", "refuse", "bazhong art. 5")
    assert bazhong.intake_findings(application(facts={"unit_system_count_delta": 0})) == []
    assert bazhong.intake_findings(application(facts={"unit_system_count_delta": -1})) == []


def test_guangyuan_controls_isolated_systems_with_a_warning_not_a_refusal():
    (found,) = load_profile("guangyuan").intake_findings(application(flags={"in_rolling_pool": True},
                                                                    facts={"isolated_system": True}))
    assert (found["key"], found["effect"], found["cite"]) == ("isolated_system", "warn", "guangyuan art. 4")


def test_guangyuan_needs_a_funding_source_and_reminds_fiscal_projects_of_the_rolling_pool():
    guangyuan = load_profile("guangyuan")
    assert keys_of(guangyuan.intake_findings(application(funding=None, flags={"in_rolling_pool": True}))) == {"no_funding_source"}
    (reminder,) = guangyuan.intake_findings(application())
    assert (reminder["key"], reminder["effect"], reminder["cite"]) == ("not_in_rolling_pool", "warn", "guangyuan art. 10")
    social = application(funding={"source": "social", "amount": 1_000_000})
    assert guangyuan.intake_findings(social) == []


def test_dalate_refuses_new_systems_from_a_unit_whose_data_is_not_shared():
    (found,) = load_profile("dalate").intake_findings(application(facts={"data_shared": False}))
    assert (found["key"], found["effect"], found["cite"]) == ("unit_data_not_shared", "refuse", "dalate art. 24")


# ---- declaration -----------------------------------------------------------------------

def test_bazhong_collects_next_years_needs_by_10_december():
    declaration = load_profile("bazhong").data["declaration"]
    (window,) = declaration["windows"]
    assert window["cutoff"] == "12-10" and window["for_next_year"] is True
    assert window["cite"].startswith("our reading") and "bazhong art. 9" in window["cite"]


def test_guangyuan_declares_into_the_three_year_rolling_pool():
    guangyuan = load_profile("guangyuan")
    assert guangyuan.data["declaration"]["initial_pool"] == "rolling"
    assert guangyuan.data["declaration"]["initial_pool_cite"] == "guangyuan art. 9"
    assert guangyuan.parameter("rolling_pool_years") == 3


@pytest.mark.parametrize("key", ["sichuan", "dalate"])
def test_sichuan_and_dalate_collect_next_years_needs_by_our_reading(key):
    (window,) = load_profile(key).data["declaration"]["windows"]
    assert window["for_next_year"] is True and window["cite"].startswith("our reading")


# ---- decision and funding --------------------------------------------------------------

def test_sichuan_sends_some_projects_to_the_provincial_government():
    sichuan = load_profile("sichuan")
    assert "省政府" in sichuan.decision_level(application(amount=50_000_000))["body"]
    assert sichuan.decision_level(application(amount=49_999_999))["body"].startswith("省发展改革委组织")
    assert sichuan.decision_level(application(kind="om"))["cite"] == "sichuan art. 38"


def test_bazhong_decides_through_the_committee_and_the_city_and_urgent_projects_start_first():
    bazhong = load_profile("bazhong")
    assert bazhong.decision_level(application())["cite"] == "bazhong art. 10"
    assert bazhong.decision_level(application(flags={"urgent": True}))["cite"] == "bazhong art. 7"


def test_guangyuan_finance_approves_procurement_and_the_drc_approves_construction():
    guangyuan = load_profile("guangyuan")
    assert guangyuan.decision_level(application())["cite"] == "guangyuan art. 9"
    assert "市财政局" in guangyuan.decision_level(application(kind="service"))["body"]


def test_dalate_sends_a_system_that_by_law_cannot_share_to_the_banner_government():
    dalate = load_profile("dalate")
    assert dalate.decision_level(application())["cite"] == "dalate art. 8"
    assert dalate.decision_level(application(facts={"legal_basis": True}))["cite"] == "dalate art. 24"


def test_bazhong_approved_projects_go_to_the_to_build_pool_and_o_and_m_to_the_operation_pool():
    bazhong = load_profile("bazhong")
    assert bazhong.approval_pool(application()) == ("to_build", "bazhong art. 13")
    assert bazhong.approval_pool(application(kind="om")) == ("operation", "bazhong art. 25")
    assert load_profile("jinjiang").approval_pool(application(kind="om")) == ("library", "jinjiang art. 8")


def test_bazhong_funds_the_to_build_pool_and_sends_o_and_m_to_the_unit_budget():
    bazhong = load_profile("bazhong")
    build = bazhong.funding_pool(application())
    assert (build["pool"], build["cite"]) == ("to_build", "bazhong art. 15")
    om = bazhong.funding_pool(application(kind="om"))
    assert om["pool"] == "finance_alternate"


@pytest.mark.parametrize("key", JURISDICTIONS)
def test_every_kind_has_a_funding_channel(key):
    profile = load_profile(key)
    for kind in ("build", "service", "om"):
        assert profile.funding_pool(application(kind=kind)) is not None


# ---- parameters ------------------------------------------------------------------------

@pytest.mark.parametrize("key, name, value, cite", [
    ("sichuan", "change_ratio", Decimal("0.15"), "sichuan art. 29"),
    ("sichuan", "trial_run_months", 3, "sichuan art. 31"),
    ("sichuan", "self_evaluation_from_months", 12, "sichuan art. 46"),
    ("sichuan", "self_evaluation_by_months", 24, "sichuan art. 46"),
    ("sichuan", "om_contract_max_years", 3, "sichuan art. 42"),
    ("bazhong", "change_ratio", Decimal("0.10"), "bazhong art. 21"),
    ("bazhong", "self_evaluation_by_months", 6, "bazhong art. 30"),
    ("dalate", "change_ratio", Decimal("0.10"), "dalate art. 20"),
    ("dalate", "final_acceptance_months", 6, "dalate art. 21"),
    ("dalate", "self_evaluation_by_months", 24, "dalate art. 17"),
    ("jinjiang", "contract_filing_workdays", 7, "jinjiang art. 11"),
])
def test_lifecycle_parameters_come_from_the_seed(key, name, value, cite):
    profile = load_profile(key)
    got = profile.parameter(name)
    assert (Decimal(str(got)) if isinstance(value, Decimal) else got) == value
    assert profile.parameter_cite(name) == cite


def test_an_absent_parameter_gives_the_default():
    assert load_profile("guangyuan").parameter("change_ratio") is None
    assert load_profile("guangyuan").parameter("change_ratio", "0") == "0"


# ---- broken profiles ---------------------------------------------------------------------

def _last_stage_not_decision(d):
    d["pipelines"]["build"].pop()


@pytest.mark.parametrize("change, words", [
    (lambda d: d["pipelines"]["build"][0]["opinions"][0].update(agency="crypto"),
     "pipelines.build[0]: agency 'crypto' is not in this profile's agencies"),
    (lambda d: d["agencies"].update(tax_bureau={"name": "税务局", "cite": "jinjiang art. 5"}), "agencies"),
    (lambda d: d["decision"].update(cite="article 8 of jinjiang"), "'decision': {'cite'"),
    (lambda d: d["intake"][0].update(when={"threshold": "no_such"}), "intake[0].when: unknown threshold 'no_such'"),
    (lambda d: d["pipelines"]["om"][1].update(when={"threshold": "no_such"}), "pipelines.om[1].when: unknown threshold"),
    (_last_stage_not_decision, "pipelines.build: the last stage must be the decision"),
    (lambda d: d["citations"].update(horoscope="jinjiang art. 1"), "citations: unknown check keys ['horoscope']"),
    (lambda d: d["documents"]["build"][-1].update(when={"flag": "urgent"}), "documents.build: the last rule must have no 'when'"),
    (lambda d: d["pipelines"]["build"][0].update(requires_stages=["decision"]), "pipelines.build[0]: requires stage 'decision'"),
    (lambda d: d["decision"].update(pool_by_kind={"repair": {"pool": "operation", "cite": "jinjiang art. 8"}}), "pool_by_kind"),
    (lambda d: d["agencies"].pop("drc"), "agencies.drc is required"),
    (lambda d: d["experts"]["panel"].update(directed_max_fraction="a third"), "experts.panel.directed_max_fraction"),
])
def test_a_broken_profile_raises_profile_error_naming_the_path(change, words):
    with pytest.raises(ProfileError) as err:
        variant("jinjiang", change)
    assert "jinjiang-variant" in str(err.value)
    assert words in str(err.value)


def test_an_unknown_jurisdiction_is_refused_with_the_available_ones():
    with pytest.raises(ProfileError) as err:
        load_profile("chengdu")
    assert "sichuan" in str(err.value) and "dalate" in str(err.value)


def test_the_bundled_profiles_survive_a_round_trip_through_yaml():
    for key in JURISDICTIONS:
        assert variant(key, lambda d: None).data == load_profile(key).data
