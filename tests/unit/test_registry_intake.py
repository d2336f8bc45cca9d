"""Intake (受理): the profile's negative list and the declaration windows (no network).

Uses Jinjiang's profile as it is, and variants of it built through the Profile API, so
the rules are shown to come from the profile, not from code."""
import copy
import datetime as dt
import uuid

import pytest

from policy.profile import CITE, Profile, available, load_profile
from services.registry import domain
from services.registry.domain import check_declaration_window, run_intake, windows_for
from services.registry.usecases import complete_application

pytestmark = pytest.mark.unit

D = dt.date


@pytest.fixture
def jinjiang():
    return load_profile("jinjiang")


def make_application(**overrides):
    app = {
        "name": f"项目-{uuid.uuid4().hex[:6]}",
        "kind": "build",
        "amount": 500_000,
        "year": 2027,
        "summary": "建设内容",
        "basis": "区委区政府工作安排",
        "funding": {"source": "budget", "amount": 500_000},
    }
    app.update(overrides)
    return complete_application(app)


def variant(profile, **declaration):
    data = copy.deepcopy(profile.data)
    data["key"] = "variant"
    data["declaration"].update(declaration)
    return Profile(data, "variant")


# ---- windows and batches ---------------------------------------------------------------

def test_jinjiang_first_batch_closes_at_the_end_of_december_before_the_plan_year(jinjiang):
    windows = windows_for(jinjiang.data["declaration"], 2027)
    assert [(w.key, w.deadline) for w in windows] == [("batch_1", D(2026, 12, 31)), ("batch_2", D(2027, 6, 30))]


@pytest.mark.parametrize("declared_on,batch", [
    (D(2026, 3, 1), "batch_1"),
    (D(2026, 12, 31), "batch_1"),  # the cutoff day itself is in time
    (D(2027, 1, 1), "batch_2"),
    (D(2027, 6, 30), "batch_2"),
])
def test_a_declaration_joins_the_first_window_still_open(jinjiang, declared_on, batch):
    check = check_declaration_window(jinjiang.data["declaration"], 2027, declared_on)
    assert check.batch.key == batch
    assert not check.late and check.findings == []


def test_a_declaration_after_the_last_window_is_late_with_a_warning_citing_the_window(jinjiang):
    check = check_declaration_window(jinjiang.data["declaration"], 2027, D(2027, 7, 1), jinjiang.cite("declaration_window"))
    assert check.batch is None and check.late
    (late,) = check.findings
    assert late["rule"] == "late_declaration"
    assert late["severity"] == "warning"  # Jinjiang: late_effect warn
    assert late["cite"] == "jinjiang art. 7"
    assert "2027-06-30" in late["zh"] and "2027-06-30" in late["en"]


def test_a_profile_whose_late_effect_is_refuse_makes_lateness_blocking(jinjiang):
    strict = variant(jinjiang, late_effect="refuse")
    check = check_declaration_window(strict.data["declaration"], 2027, D(2027, 7, 1))
    assert check.findings[0]["severity"] == "blocking"


def test_a_profile_without_windows_never_finds_a_declaration_late(jinjiang):
    open_all_year = variant(jinjiang, windows=[])
    check = check_declaration_window(open_all_year.data["declaration"], 2027, D(2030, 1, 1))
    assert check.batch is None and not check.late and check.findings == []


def test_a_single_early_december_window_for_next_year_is_read_from_the_profile(jinjiang):
    early_december = variant(jinjiang, windows=[
        {"key": "yearly", "name": "12月上旬前", "cutoff": "12-10", "for_next_year": True, "cite": "bazhong art. 9"},
    ])
    decl = early_december.data["declaration"]
    assert check_declaration_window(decl, 2027, D(2026, 12, 10)).batch.key == "yearly"
    late = check_declaration_window(decl, 2027, D(2026, 12, 11))
    assert late.late and late.findings[0]["cite"] == "bazhong art. 9"


def test_a_february_29_cutoff_falls_back_to_the_last_day_of_february(jinjiang):
    leap = variant(jinjiang, windows=[{"key": "w", "name": "w", "cutoff": "02-29", "cite": "dalate art. 5"}])
    assert windows_for(leap.data["declaration"], 2027)[0].deadline == D(2027, 2, 28)
    assert windows_for(leap.data["declaration"], 2028)[0].deadline == D(2028, 2, 29)


# ---- the negative list -------------------------------------------------------------------

def test_a_complete_application_in_time_passes_intake_with_no_findings(jinjiang):
    result = run_intake(jinjiang, make_application(), D(2026, 11, 24))
    assert result.findings == []
    assert not result.refused
    assert result.batch.key == "batch_1"


def test_an_application_without_funding_is_refused_citing_the_profile(jinjiang):
    result = run_intake(jinjiang, make_application(funding=None), D(2026, 11, 24))
    assert result.refused
    (refusal,) = result.findings
    assert refusal == {
        "rule": "no_funding_guarantee", "severity": "blocking",
        "zh": "需求方案应包括经费保障（含多渠道保障或分级保障）",
        "en": "The requirements plan must state how the project is funded.",
        "cite": "jinjiang art. 6",
    }


def test_an_om_project_longer_than_three_years_is_refused_and_three_years_is_not(jinjiang):
    too_long = run_intake(jinjiang, make_application(kind="om", om_period_years=4), D(2026, 11, 24))
    assert [f["rule"] for f in too_long.findings] == ["om_period_over_3_years"]
    assert too_long.refused
    three = run_intake(jinjiang, make_application(kind="om", om_period_years=3), D(2026, 11, 24))
    assert not three.refused


def test_a_late_declaration_alone_is_accepted_with_a_warning_in_jinjiang(jinjiang):
    result = run_intake(jinjiang, make_application(year=2026), D(2026, 11, 24))
    assert not result.refused
    assert [f["rule"] for f in result.findings] == ["late_declaration"]
    assert result.batch is None


def test_every_fired_rule_is_reported_not_only_the_first(jinjiang):
    app = make_application(funding=None, facts={"materials_complete": False})
    result = run_intake(jinjiang, app, D(2027, 8, 1))
    assert {f["rule"] for f in result.findings} == {"no_funding_guarantee", "materials_incomplete", "late_declaration"}
    assert all(f["cite"].startswith("jinjiang art.") for f in result.findings)


def test_an_application_that_leaves_out_its_facts_gets_their_defaults_and_is_not_refused(jinjiang):
    # the unit never said its materials were incomplete: the fact's default (complete) holds
    app = complete_application({"name": "n", "kind": "build", "amount": 1, "year": 2027, "summary": "s",
                                "funding": {"source": "budget", "amount": 1}})
    assert app["facts"]["materials_complete"] is True and app["flags"]["urgent"] is False
    assert not run_intake(jinjiang, app, D(2026, 11, 24)).refused


def test_a_warn_rule_of_another_profile_does_not_refuse(jinjiang):
    data = copy.deepcopy(jinjiang.data)
    data["intake"] = [{"key": "isolated", "when": {"fact": "isolated_system"}, "effect": "warn",
                       "zh": "孤立封闭系统严格控制", "en": "Isolated systems are strictly controlled.",
                       "cite": "guangyuan art. 4"}]
    guarded = Profile(data, "variant")
    result = run_intake(guarded, make_application(facts={"isolated_system": True}), D(2026, 11, 24))
    assert not result.refused
    assert result.findings[0]["severity"] == "warning" and result.findings[0]["cite"] == "guangyuan art. 4"


# ---- every jurisdiction, through the same code ---------------------------------------------

@pytest.mark.parametrize("key", available())
def test_every_profile_runs_intake_and_the_data_bureau_checks_with_cited_findings(key):
    profile = load_profile(key)
    troubled = make_application(
        funding=None, basis="", catalog=[{"name": "人口库", "shared": False}],
        facts={"goals_clear": False, "materials_complete": False, "on_gov_cloud": False, "data_shared": False},
    )
    result = run_intake(profile, troubled, D(2027, 8, 1))
    assert result.refused  # every seed refuses an application its unit calls incomplete
    cite = domain.Cites(profile, "suite rule: request")
    findings = list(result.findings)
    for subject in domain.REGISTRY_SUBJECTS:
        found, _ = domain.check_opinion(subject, troubled, cite, profile.data["declaration"], D(2027, 8, 1))
        if subject != "plan" or profile.data["declaration"]["windows"]:
            assert found, subject  # (a profile without windows has nothing to say about the plan date)
        findings += found
    for f in findings:
        assert f["severity"] in ("info", "warning", "blocking")
        assert CITE.match(f["cite"]), f
    assert domain.is_valid_code(domain.project_code(2027, profile.admin_code, 1))


@pytest.mark.parametrize("key", available())
def test_every_profile_accepts_a_clean_application_declared_early(key):
    profile = load_profile(key)
    clean = make_application(service_purchase={"not_goods_or_works": True, "cheaper_than_build": True,
                                                "multiple_providers": True, "meets_secrecy_rules": True},
                             catalog=[{"name": "人口库", "shared": True}],
                             flags={"in_rolling_pool": True})
    result = run_intake(profile, clean, D(2026, 3, 1))
    assert not result.refused, result.findings
