"""History entries (项目历程) and the data bureau's opinion checks (no network)."""
import copy
import datetime as dt

import pytest

from contracts.rpc_registry import HISTORY_KINDS
from policy.profile import Profile, load_profile
from runtime.opinions import verdict_from_findings
from services.registry import domain
from services.registry.usecases import complete_application

pytestmark = pytest.mark.unit


@pytest.fixture
def jinjiang():
    return load_profile("jinjiang")


def reason(rule="docs", zh="方案不完整", en="The plan is incomplete.", cite="jinjiang art. 8"):
    return {"rule": rule, "severity": "blocking", "zh": zh, "en": en, "cite": cite}


def application(**overrides):
    app = {"name": "n", "kind": "build", "amount": 500_000, "year": 2027, "summary": "s", "basis": "依据",
           "facts": {}, "flags": {}, "catalog": [{"name": "人口库", "shared": True}]}
    app.update(overrides)
    return complete_application(app)


# ---- history ---------------------------------------------------------------------------

def test_an_accepted_declaration_writes_code_intake_state_and_pool_in_that_order(jinjiang):
    intake = domain.run_intake(jinjiang, application(funding={"source": "budget", "amount": 1}), dt.date(2026, 11, 24))
    entries = domain.declaration_entries("2026-510104-00001-X", "2026-11-24", intake, "in_approval", "reserve",
                                         "jinjiang art. 7")
    assert [e["kind"] for e in entries] == ["declared", "intake", "state", "pool"]
    assert entries[0]["to_value"] == "2026-510104-00001-X"
    assert entries[1]["to_value"] == "accepted"
    assert (entries[2]["from_value"], entries[2]["to_value"]) == (None, "in_approval")
    assert (entries[3]["from_value"], entries[3]["to_value"], entries[3]["cite"]) == (None, "reserve", "jinjiang art. 7")
    assert "储备库" in entries[3]["note_zh"]


def test_a_refused_declaration_writes_no_pool_and_cites_the_refusing_rule(jinjiang):
    intake = domain.run_intake(jinjiang, application(), dt.date(2026, 11, 24))  # no funding
    entries = domain.declaration_entries("c", "2026-11-24", intake, "intake_refused", None, "jinjiang art. 7")
    assert [e["kind"] for e in entries] == ["declared", "intake", "state"]
    assert entries[1]["to_value"] == "refused" and entries[1]["cite"] == "jinjiang art. 6"
    assert "经费保障" in entries[1]["note_zh"]
    assert entries[2]["to_value"] == "intake_refused" and entries[2]["cite"] == "jinjiang art. 6"


def test_a_return_names_the_time_and_every_reason_in_both_languages():
    (entry,) = domain.returned_entries("in_approval", 2, [reason(), reason(zh="估算偏高", en="Estimate too high.")],
                                       "expert_review", "jinjiang art. 8")
    assert (entry["kind"], entry["from_value"], entry["to_value"]) == ("state", "in_approval", "returned")
    assert "第 2 次" in entry["note_zh"] and "方案不完整；估算偏高" in entry["note_zh"]
    assert "time 2" in entry["note_en"] and "Estimate too high." in entry["note_en"]
    assert entry["cite"] == "jinjiang art. 8"


def test_a_refusal_with_a_bar_names_the_date():
    (entry,) = domain.refused_entries("in_approval", [reason()], "2027-11-24", "expert_review", "jinjiang art. 8")
    assert entry["to_value"] == "refused"
    assert "2027-11-24" in entry["note_zh"] and "2027-11-24" in entry["note_en"]


def test_an_approval_moves_the_pool_only_when_it_changes():
    moved = domain.approved_entries("in_approval", "yearly_plan", "library", "锦发改审〔2027〕1号", "区政府常务会议",
                                    4_000_000, "jinjiang art. 8")
    assert [(e["kind"], e["to_value"]) for e in moved] == [("state", "approved"), ("pool", "library")]
    assert moved[1]["from_value"] == "yearly_plan" and moved[1]["cite"] == "jinjiang art. 8"
    same = domain.approved_entries("in_approval", "library", "library", "x", "y", 1, "jinjiang art. 8")
    assert [e["kind"] for e in same] == ["state"]


def test_every_entry_kind_the_domain_writes_is_a_contract_history_kind():
    intake = domain.IntakeResult(findings=[])
    entries = (domain.declaration_entries("c", "2026-01-01", intake, "in_approval", "reserve", "x")
               + [domain.revision_entry(0, 1), domain.stage_entry(None, "pre_review", "预审", "jinjiang art. 6"),
                  domain.opinion_entry("办公室", "plan", "approve", "auto", "jinjiang art. 7")])
    assert {e["kind"] for e in entries} == set(HISTORY_KINDS)
    for e in entries:
        assert set(e) == {"kind", "from_value", "to_value", "note_zh", "note_en", "cite"}


# ---- the data bureau's opinion checks ----------------------------------------------------

def cites(profile, fallback="jinjiang art. 6"):
    return domain.Cites(profile, fallback)


def test_pre_review_of_a_clear_complete_application_finds_nothing(jinjiang):
    assert domain.check_pre_review(application(), cites(jinjiang)) == []


def test_pre_review_blocks_unclear_goals_and_incomplete_materials_and_warns_on_missing_basis(jinjiang):
    found = domain.check_pre_review(
        application(basis="", facts={"goals_clear": False, "materials_complete": False}), cites(jinjiang))
    assert [(f["rule"], f["severity"]) for f in found] == [
        ("goals_unclear", "blocking"), ("materials_incomplete", "blocking"), ("basis_missing", "warning")]
    assert {f["cite"] for f in found} == {"jinjiang art. 6"}
    assert verdict_from_findings(found) == "reject"


def test_a_check_with_no_article_in_the_profile_cites_the_request(jinjiang):
    data = copy.deepcopy(jinjiang.data)
    data["citations"] = {}
    bare = Profile(data, "variant")
    (found,) = domain.check_pre_review(application(basis=""), cites(bare, fallback="dalate art. 8"))
    assert found["cite"] == "dalate art. 8"


def test_plan_in_time_is_approved_and_names_the_batch(jinjiang):
    found, data = domain.check_plan(application(), jinjiang.data["declaration"], dt.date(2026, 11, 24), cites(jinjiang))
    assert data["batch"] == "batch_1"
    assert [f["severity"] for f in found] == ["info"]
    assert verdict_from_findings(found) == "approve"


def test_plan_declared_late_gets_a_warning_and_an_urgent_one_a_note_about_meeting_minutes(jinjiang):
    late, data = domain.check_plan(application(year=2026), jinjiang.data["declaration"], dt.date(2026, 11, 24),
                                   cites(jinjiang))
    assert data["batch"] is None
    assert [f["rule"] for f in late] == ["late_declaration"]
    assert verdict_from_findings(late) == "approve_with_conditions"
    urgent, _ = domain.check_plan(application(year=2026, flags={"urgent": True}), jinjiang.data["declaration"],
                                  dt.date(2026, 11, 24), cites(jinjiang))
    assert [f["rule"] for f in urgent] == ["late_declaration", "late_but_urgent"]


def test_technical_review_blocks_off_cloud_unshared_and_uncatalogued_projects(jinjiang):
    assert domain.check_technical(application(), cites(jinjiang)) == []
    found = domain.check_technical(
        application(catalog=[], facts={"on_gov_cloud": False, "connected_to_sharing_platform": False}), cites(jinjiang))
    assert [f["rule"] for f in found] == ["not_on_gov_cloud", "not_on_sharing_platform", "catalog_missing"]
    assert all(f["severity"] == "blocking" for f in found)
    # Jinjiang names no article for gov_cloud: the technical review's article stands in
    assert found[0]["cite"] == "jinjiang art. 8"
    assert found[1]["cite"] == "jinjiang art. 3"


def test_data_sharing_names_each_unshared_catalog_entry(jinjiang):
    found = domain.check_data_sharing(
        application(catalog=[{"name": "人口库", "shared": True}, {"name": "法人库", "shared": False},
                             {"name": "证照库", "shared": False}]), cites(jinjiang))
    (entry,) = found
    assert entry["rule"] == "catalog_not_shared"
    assert "法人库、证照库" in entry["zh"] and "法人库, 证照库" in entry["en"]
    assert entry["cite"] == "jinjiang art. 3"


def test_an_opinion_subject_the_data_bureau_does_not_handle_is_an_error(jinjiang):
    with pytest.raises(ValueError):
        domain.check_opinion("security", application(), cites(jinjiang))


@pytest.mark.parametrize("subject,verdict,admitted", [
    ("plan", "approve", True), ("plan", "approve_with_conditions", True), ("plan", "reject", False),
    ("pre_review", "approve", False),
])
def test_only_an_approving_plan_opinion_admits_the_project_to_the_yearly_plan(subject, verdict, admitted):
    assert domain.plan_admitted(subject, verdict) is admitted
