"""The approval saga of the review service (发展改革委), on the jinjiang profile: plain data in,
new case and commands out; no broker, no database."""
import copy
import datetime as dt
import itertools
import random
import uuid

import pytest
import yaml

from contracts import dump
from contracts.enums import DOCUMENT_TYPES
from contracts.rpc_review import CaseSummarySchema, CaseViewSchema
from policy import load_profile, parse_profile
from policy.profile import PROFILE_DIR
from runtime.workdays import add_workdays
from services.review.domain import (
    AdvanceTo, ApproveProject, RefuseProject, RequestOpinion, ReturnProject, RuleBroken, Saga,
)
from services.review.views import case_summary, case_view

# ---- factories ------------------------------------------------------------------------

TODAY = dt.date(2026, 3, 2)  # a Monday


def make_project(**overrides):
    code = overrides.pop("code", f"JJ-{uuid.uuid4().hex[:8]}")
    project = {"code": code, "jurisdiction": "jinjiang", "unit_id": "unit-edu", "unit_name": "区教育局",
               "name": "智慧教育平台", "kind": "build", "amount": 500000}
    project.update(overrides)
    return project


def make_application(project, **overrides):
    app = {"name": project["name"], "kind": project["kind"], "amount": project["amount"], "year": 2026,
           "summary": "建设目标与内容", "flags": {}, "facts": {}}
    app.update(overrides)
    return app


def make_pool(n=15, unit="expert-unit", directed_every=4):
    return [{"expert_id": f"E{i:03d}", "name": f"专家{i}", "unit_id": f"{unit}-{i % 5}", "field": "软件",
             "directed": i % directed_every == 0, "active": True} for i in range(1, n + 1)]


def make_saga(profile=None, today=TODAY, experts=None, seed=7, numbers=None, **kwargs):
    counter = numbers if numbers is not None else itertools.count(1)
    return Saga(profile or load_profile("jinjiang"), today, experts=make_pool() if experts is None else experts,
                rng=random.Random(seed), next_number=lambda year: next(counter), **kwargs)


def open_case(saga, amount=500000, **project_overrides):
    project = make_project(amount=amount, **project_overrides)
    outcome = saga.submit(None, project=project, application=make_application(project), revision=0,
                          declared_on=TODAY.isoformat())
    return outcome


def current(case):
    return next(s for s in case["stages"] if s["key"] == case["current_stage"])


def answer_stage(saga, case, verdict="approve", *, by_subject=None, findings=None, conditions=None, data=None):
    """Issue every requested opinion of the current stage. ``by_subject`` overrides the
    verdict / data per subject: {"cost": {"data": {"reviewed_amount": 1}}}."""
    commands = []
    for opinion in list(current(case)["opinions"]):
        if opinion["status"] != "requested":
            continue
        extra = (by_subject or {}).get(opinion["subject"], {})
        outcome = saga.opinion_issued(case, {
            "request_id": opinion["request_id"], "code": case["code"], "stage": case["current_stage"],
            "agency": opinion["agency"], "subject": opinion["subject"],
            "verdict": extra.get("verdict", verdict), "findings": extra.get("findings", findings or []),
            "conditions": extra.get("conditions", conditions or []), "signed_by": "auto",
            "signed_at": "2026-03-02T00:00:00Z", "data": extra.get("data", data or {}),
        })
        case = outcome.case
        commands.extend(outcome.commands)
    return case, commands


def submit_documents(saga, case, doc_types=("requirements_plan", "construction_plan")):
    commands = []
    for doc_type in doc_types:
        outcome, _ = saga.submit_document(case, unit_id=case["unit_id"], doc_type=doc_type, title=f"{doc_type} v1")
        case = outcome.case
        commands.extend(outcome.commands)
    return case, commands


def vote_all(saga, case, approvals, officer="drc-officer-1"):
    """The first ``approvals`` panel members approve, the others reject."""
    commands = []
    for i, member in enumerate(current(case)["panel"]["experts"]):
        outcome = saga.record_vote(case, expert_id=member["expert_id"], vote="approve" if i < approvals else "reject",
                                   comment="" if i < approvals else "方案不完善", officer_id=officer,
                                   officer_agency="drc")
        case = outcome.case
        commands.extend(outcome.commands)
    return case, commands


def entered(commands):
    return [c.stage for c in commands if isinstance(c, AdvanceTo)]



pytestmark = pytest.mark.unit

ALL_STAGES = ["pre_review", "yearly_plan", "documents", "expert_review", "joint_review", "cost_review", "decision"]


def drive_to(saga, case, stage_key, *, cost_data=None):
    """Move a fresh case forward (everyone agrees) until ``stage_key`` is active."""
    commands = []
    while case["current_stage"] != stage_key:
        stage = current(case)
        if stage["type"] == "opinions":
            case, cmds = answer_stage(saga, case, by_subject={"cost": {"data": cost_data or {}}})
        elif stage["type"] == "documents":
            case, cmds = submit_documents(saga, case, stage["documents_required"])
        elif stage["type"] == "experts":
            case, cmds = vote_all(saga, case, approvals=len(stage["panel"]["experts"]))
        else:
            raise AssertionError(f"cannot drive past {stage['key']}")
        commands.extend(cmds)
    return case, commands


def jinjiang_variant(mutate):
    """The jinjiang profile with a change (to exercise rules other profiles use)."""
    with open(f"{PROFILE_DIR}/jinjiang.yaml", encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    mutate(data)
    return parse_profile(yaml.safe_dump(data, allow_unicode=True), source="jinjiang-variant")


# ---- the pipeline ---------------------------------------------------------------------

def test_a_build_project_of_300k_or_more_passes_every_jinjiang_stage_in_order():
    saga = make_saga()
    outcome = open_case(saga, amount=500000)
    case, commands = outcome.case, list(outcome.commands)
    case, more = drive_to(saga, case, "decision")
    commands += more
    assert entered(commands) == ALL_STAGES
    outcome = saga.sign_decision(case, officer_id="drc-1", officer_agency="drc", verdict="approve")
    approved = [c for c in outcome.commands if isinstance(c, ApproveProject)]
    assert len(approved) == 1
    assert outcome.case["state"] == "approved"
    assert approved[0].pool == "library" and approved[0].cite == "jinjiang art. 8"
    assert all(s["status"] == "passed" for s in outcome.case["stages"])


def test_a_project_below_300k_skips_the_yearly_plan():
    saga = make_saga()
    outcome = open_case(saga, amount=299999)
    case, commands = drive_to(saga, outcome.case, "decision")
    assert "yearly_plan" not in entered(outcome.commands + commands)
    assert next(s for s in case["stages"] if s["key"] == "yearly_plan")["status"] == "skipped"


def test_an_om_project_goes_from_documents_straight_to_cost_review():
    saga = make_saga()
    outcome = open_case(saga, amount=500000, kind="om")
    case, commands = drive_to(saga, outcome.case, "decision")
    assert entered(outcome.commands + commands) == ["pre_review", "yearly_plan", "documents", "cost_review", "decision"]


def test_each_opinion_is_requested_from_the_profiles_agency_with_a_due_date_in_working_days():
    saga = make_saga()
    outcome = open_case(saga)
    (request,) = [c for c in outcome.commands if isinstance(c, RequestOpinion)]
    assert request.agency == "data_bureau" and request.subject == "pre_review" and request.sign == "officer"
    assert request.agency_name == saga.profile.agency_name("data_bureau")
    assert request.due_on == add_workdays(TODAY, 7)[0].isoformat()
    assert request.cite == "jinjiang art. 6" and request.stage == "pre_review"
    case, _ = drive_to(saga, outcome.case, "joint_review")
    agencies = {o["agency"]: o for o in current(case)["opinions"]}
    assert set(agencies) == {"cac", "secrecy", "public_security"}
    assert len({o["request_id"] for o in agencies.values()}) == 3


def test_the_stage_waits_until_every_opinion_is_in():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "joint_review")
    first = current(case)["opinions"][0]
    outcome = saga.opinion_issued(case, {
        "request_id": first["request_id"], "code": case["code"], "stage": "joint_review", "agency": first["agency"],
        "subject": first["subject"], "verdict": "approve", "signed_by": "auto", "signed_at": "x"})
    assert outcome.commands == []
    assert outcome.case["current_stage"] == "joint_review"


def test_a_rejecting_opinion_returns_the_project_with_its_findings_as_reasons():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "joint_review")
    blocking = {"rule": "crypto_plan", "severity": "blocking", "zh": "缺少密码应用方案", "en": "no crypto plan",
                "cite": "jinjiang art. 18"}
    case, commands = answer_stage(saga, case, by_subject={"crypto": {"verdict": "reject", "findings": [blocking]}})
    (returned,) = [c for c in commands if isinstance(c, ReturnProject)]
    assert returned.stage == "joint_review" and returned.reasons == [blocking] and returned.returns == 1
    assert returned.cite == "jinjiang art. 8"
    assert case["state"] == "returned" and case["returns"] == 1
    assert current(case)["status"] == "returned"


def test_a_reject_without_findings_still_gives_a_reason():
    saga = make_saga()
    case, commands = answer_stage(saga, open_case(saga).case, verdict="reject")
    (returned,) = [c for c in commands if isinstance(c, ReturnProject)]
    assert returned.reasons[0]["rule"] == "opinion_rejected" and returned.reasons[0]["cite"] == "jinjiang art. 6"


def test_a_revision_resumes_the_case_at_the_stage_that_returned_it():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "joint_review")
    old_requests = {o["request_id"] for o in current(case)["opinions"]}
    case, _ = answer_stage(saga, case, by_subject={"security": {"verdict": "reject"}})
    project = case["project"]
    outcome = saga.submit(case, project=project, application=make_application(project), revision=1,
                          declared_on=TODAY.isoformat())
    case = outcome.case
    assert entered(outcome.commands) == ["joint_review"]
    requests = [c for c in outcome.commands if isinstance(c, RequestOpinion)]
    assert {r.agency for r in requests} == {"cac", "secrecy", "public_security"}
    assert not old_requests & {r.request_id for r in requests}
    assert case["state"] == "in_progress" and case["revision"] == 1
    statuses = {s["key"]: s["status"] for s in case["stages"]}
    assert [statuses[k] for k in ALL_STAGES[:4]] == ["passed"] * 4
    assert current(case)["attempts"][0]["outcome"] == "returned"
    case, _ = drive_to(saga, case, "decision")
    assert saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve").case["state"] == "approved"


def test_a_revision_after_a_failed_panel_draws_a_new_panel():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    case, commands = vote_all(saga, case, approvals=2)
    assert any(isinstance(c, ReturnProject) for c in commands)
    outcome = saga.submit(case, project=case["project"], application=make_application(case["project"]),
                          revision=1, declared_on=TODAY.isoformat())
    stage = current(outcome.case)
    assert stage["key"] == "expert_review" and stage["panel"]["votes"] == []
    assert outcome.case["expert_failures"] == 1


def test_a_repeated_or_stale_submission_changes_nothing():
    saga = make_saga()
    case = open_case(saga).case
    again = saga.submit(case, project=case["project"], application=case["application"], revision=0,
                        declared_on=TODAY.isoformat())
    assert again.commands == [] and again.ignored


def test_a_stale_or_repeated_opinion_changes_nothing():
    saga = make_saga()
    case = open_case(saga).case
    opinion = current(case)["opinions"][0]
    issued = {"request_id": opinion["request_id"], "code": case["code"], "stage": "pre_review",
              "agency": "data_bureau", "subject": "pre_review", "verdict": "approve", "signed_by": "u", "signed_at": "x"}
    case = saga.opinion_issued(case, issued).case
    again = saga.opinion_issued(case, issued)
    assert again.commands == [] and again.ignored
    unknown = saga.opinion_issued(case, dict(issued, request_id="nope"))
    assert unknown.commands == [] and unknown.ignored


def test_conditions_of_every_agency_travel_with_the_approval():
    saga = make_saga()
    case = open_case(saga).case
    case, _ = answer_stage(saga, case, verdict="approve_with_conditions", conditions=["部署到政务云"])
    case, _ = drive_to(saga, case, "joint_review")
    case, _ = answer_stage(saga, case, by_subject={"grading": {"verdict": "approve_with_conditions",
                                                               "conditions": ["按三级开展等保测评"],
                                                               "data": {"level": 3}}})
    case, _ = drive_to(saga, case, "decision")
    outcome = saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve")
    (approved,) = [c for c in outcome.commands if isinstance(c, ApproveProject)]
    assert approved.conditions == ["部署到政务云", "按三级开展等保测评"]
    assert outcome.case["opinion_data"]["grading"] == {"level": 3}


# ---- documents ------------------------------------------------------------------------

def test_the_documents_stage_completes_when_every_required_document_is_in():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "documents")
    assert current(case)["documents_required"] == ["requirements_plan", "construction_plan"]
    outcome, _ = saga.submit_document(case, unit_id=case["unit_id"], doc_type="requirements_plan", title="需求方案")
    assert outcome.commands == [] and outcome.case["current_stage"] == "documents"
    outcome, _ = saga.submit_document(outcome.case, unit_id=case["unit_id"], doc_type="construction_plan", title="建设方案")
    assert entered(outcome.commands) == ["expert_review"]


def test_documents_handed_in_early_complete_the_stage_on_entry():
    saga = make_saga()
    case = open_case(saga).case
    case, commands = submit_documents(saga, case)
    assert commands == [] and case["current_stage"] == "pre_review"
    case, commands = answer_stage(saga, case)  # pre_review
    case, commands = answer_stage(saga, case)  # yearly_plan → documents (already in) → experts
    assert entered(commands) == ["documents", "expert_review"]
    assert next(s for s in case["stages"] if s["key"] == "documents")["status"] == "passed"


def test_resubmitting_a_document_adds_a_version():
    saga = make_saga()
    case = open_case(saga).case
    outcome, first = saga.submit_document(case, unit_id=case["unit_id"], doc_type="requirements_plan", title="v1")
    outcome, second = saga.submit_document(outcome.case, unit_id=case["unit_id"], doc_type="requirements_plan", title="v2")
    assert (first["version"], second["version"]) == (1, 2)
    assert [d["title"] for d in outcome.case["documents"]["requirements_plan"]] == ["v1", "v2"]


def test_only_the_applying_unit_may_submit_documents():
    saga = make_saga()
    case = open_case(saga).case
    with pytest.raises(RuleBroken) as caught:
        saga.submit_document(case, unit_id="someone-else", doc_type="requirements_plan", title="t")
    assert caught.value.kind == "forbidden" and caught.value.field == "unit_id"


def test_a_document_the_project_does_not_need_is_refused_citing_the_rule():
    saga = make_saga()
    case = open_case(saga).case
    with pytest.raises(RuleBroken) as caught:
        saga.submit_document(case, unit_id=case["unit_id"], doc_type="fsr", title="可研")
    assert caught.value.kind == "validation" and caught.value.rule == "document_not_required"
    assert caught.value.cite == "jinjiang art. 6" and caught.value.field == "doc_type"


# ---- experts --------------------------------------------------------------------------

def test_a_panel_is_drawn_on_entering_the_expert_stage():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    panel = current(case)["panel"]
    assert len(panel["experts"]) == 5 and not any(m["directed"] for m in panel["experts"])
    assert panel["cite"] == "jinjiang art. 8"


def test_the_panel_passes_with_three_of_five():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    case, commands = vote_all(saga, case, approvals=3)
    assert entered(commands) == ["joint_review"]


def test_the_panel_fails_with_two_of_five_and_returns_the_project():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    case, commands = vote_all(saga, case, approvals=2)
    (returned,) = [c for c in commands if isinstance(c, ReturnProject)]
    assert returned.stage == "expert_review" and returned.cite == "jinjiang art. 8"
    assert returned.reasons[0]["rule"] == "expert_review_failed"
    assert case["expert_failures"] == 1 and case["returns"] == 1


def test_exactly_half_of_an_even_panel_is_not_enough():
    profile = jinjiang_variant(lambda d: d["experts"]["panel"].update(size=4))
    saga = make_saga(profile=profile)
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    _, commands = vote_all(saga, case, approvals=2)
    assert any(isinstance(c, ReturnProject) for c in commands)
    _, commands = vote_all(saga, case, approvals=3)
    assert entered(commands) == ["joint_review"]


def fail_panel(saga, case):
    case, commands = vote_all(saga, case, approvals=0)
    return case, commands


def test_three_failed_expert_reviews_bar_the_project_for_a_year():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    for revision in (1, 2):
        case, commands = fail_panel(saga, case)
        assert any(isinstance(c, ReturnProject) for c in commands)
        case = saga.submit(case, project=case["project"], application=case["application"], revision=revision,
                           declared_on=TODAY.isoformat()).case
    case, commands = fail_panel(saga, case)
    (refused,) = [c for c in commands if isinstance(c, RefuseProject)]
    assert refused.barred_until == "2027-03-02" and refused.cite == "jinjiang art. 8"
    assert refused.reasons[0]["rule"] == "barred"
    assert case["state"] == "refused" and case["expert_failures"] == 3 and case["barred_until"] == "2027-03-02"


def test_a_barred_project_resubmitted_before_the_bar_ends_is_refused_with_the_cite():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    for revision in (1, 2, 3):
        case, _ = fail_panel(saga, case)
        if revision < 3:
            case = saga.submit(case, project=case["project"], application=case["application"], revision=revision,
                               declared_on=TODAY.isoformat()).case
    later = make_saga(today=dt.date(2027, 3, 1))
    outcome = later.submit(case, project=case["project"], application=case["application"], revision=3,
                           declared_on="2027-03-01")
    (refused,) = outcome.commands
    assert isinstance(refused, RefuseProject) and refused.cite == "jinjiang art. 8"
    assert refused.barred_until == "2027-03-02" and outcome.case["state"] == "refused"
    after = make_saga(today=dt.date(2027, 3, 2))
    outcome = after.submit(outcome.case, project=case["project"], application=case["application"], revision=4,
                           declared_on="2027-03-02")
    assert entered(outcome.commands) == ["expert_review"]
    assert outcome.case["state"] == "in_progress" and outcome.case["expert_failures"] == 0
    assert outcome.case["barred_until"] is None


def test_a_profile_without_a_bar_keeps_returning_the_project():
    def no_bar(d):
        for key in ("failures_before_bar", "bar_months", "bar_cite"):
            d["experts"].pop(key)
    saga = make_saga(profile=jinjiang_variant(no_bar))
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    for revision in (1, 2, 3, 4):
        case, commands = fail_panel(saga, case)
        assert any(isinstance(c, ReturnProject) for c in commands)
        case = saga.submit(case, project=case["project"], application=case["application"], revision=revision,
                           declared_on=TODAY.isoformat()).case


def test_only_a_drc_officer_records_votes_and_each_member_votes_once():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    member = current(case)["panel"]["experts"][0]
    with pytest.raises(RuleBroken) as caught:
        saga.record_vote(case, expert_id=member["expert_id"], vote="approve", officer_id="x", officer_agency="finance")
    assert caught.value.kind == "forbidden"
    case = saga.record_vote(case, expert_id=member["expert_id"], vote="approve", officer_id="o",
                            officer_agency="drc").case
    with pytest.raises(RuleBroken) as caught:
        saga.record_vote(case, expert_id=member["expert_id"], vote="reject", officer_id="o", officer_agency="drc")
    assert caught.value.kind == "conflict"
    with pytest.raises(RuleBroken) as caught:
        saga.record_vote(case, expert_id="not-on-panel", vote="approve", officer_id="o", officer_agency="drc")
    assert caught.value.kind == "validation" and caught.value.field == "expert_id"


def test_a_drc_officer_may_redraw_with_one_directed_pick_before_any_vote():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    directed = next(e for e in saga.experts if e["directed"])
    case = saga.redraw_panel(case, directed=[directed["expert_id"]], officer_id="o", officer_agency="drc").case
    panel = current(case)["panel"]
    assert [m["expert_id"] for m in panel["experts"] if m["directed"]] == [directed["expert_id"]]
    assert len(panel["experts"]) == 5
    case = saga.record_vote(case, expert_id=panel["experts"][0]["expert_id"], vote="approve", officer_id="o",
                            officer_agency="drc").case
    with pytest.raises(RuleBroken) as caught:
        saga.redraw_panel(case, directed=[], officer_id="o", officer_agency="drc")
    assert caught.value.kind == "conflict"


def test_too_few_eligible_experts_leave_the_stage_waiting_with_a_note():
    pool = make_pool(n=3)
    saga = make_saga(experts=pool)
    case, _ = drive_to(saga, open_case(saga).case, "expert_review")
    stage = current(case)
    assert stage["panel"] is None and "专家" in stage["note"]["zh"] and stage["note"]["en"]
    with pytest.raises(RuleBroken) as caught:
        saga.redraw_panel(case, directed=[], officer_id="o", officer_agency="drc")
    assert caught.value.kind == "conflict"
    saga.experts = make_pool(n=15)
    case = saga.redraw_panel(case, directed=[], officer_id="o", officer_agency="drc").case
    assert len(current(case)["panel"]["experts"]) == 5


# ---- decision -------------------------------------------------------------------------

@pytest.mark.parametrize("amount, body", [
    (3999999, "按政府采购程序实施"),
    (4000000, "区政府常务会议审定后按政府采购程序实施"),
    (30000000, "区政府常务会议、区委常委会议审定后按政府采购程序实施"),
])
def test_the_decision_body_follows_the_amount(amount, body):
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga, amount=amount).case, "decision")
    assert current(case)["decision"]["body"] == body
    assert current(case)["decision"]["cite"] == "jinjiang art. 10"
    outcome = saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve")
    (approved,) = [c for c in outcome.commands if isinstance(c, ApproveProject)]
    assert approved.decision_body == body


def test_the_approved_amount_is_the_cost_reviews_reviewed_amount():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga, amount=500000).case, "decision", cost_data={"reviewed_amount": 452000})
    outcome = saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve")
    (approved,) = [c for c in outcome.commands if isinstance(c, ApproveProject)]
    assert approved.approved_amount == 452000
    assert outcome.case["approval"]["amount_basis"] == "cost_review"


def test_without_a_reviewed_amount_the_application_amount_is_approved():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga, amount=500000).case, "decision")
    outcome = saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve")
    assert outcome.case["approval"]["approved_amount"] == 500000
    assert outcome.case["approval"]["amount_basis"] == "application"


def test_approval_documents_are_numbered_per_year():
    numbers = itertools.count(41)
    saga = make_saga(numbers=numbers)
    docs = []
    for _ in range(2):
        case, _ = drive_to(saga, open_case(saga).case, "decision")
        docs.append(saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve")
                    .case["approval"]["document_no"])
    assert docs == ["锦发改审〔2026〕41号", "锦发改审〔2026〕42号"]


def test_only_a_drc_officer_signs_the_decision():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "decision")
    with pytest.raises(RuleBroken) as caught:
        saga.sign_decision(case, officer_id="o", officer_agency="finance", verdict="approve")
    assert caught.value.kind == "forbidden" and caught.value.field == "officer_agency"


def test_refusing_the_decision_needs_a_reason_and_refuses_the_project():
    saga = make_saga()
    case, _ = drive_to(saga, open_case(saga).case, "decision")
    with pytest.raises(RuleBroken) as caught:
        saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="reject", comment=" ")
    assert caught.value.kind == "validation" and caught.value.field == "comment"
    outcome = saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="reject", comment="重复建设")
    (refused,) = [c for c in outcome.commands if isinstance(c, RefuseProject)]
    assert refused.reasons[0]["zh"] == "重复建设" and refused.cite == "jinjiang art. 8"
    assert refused.barred_until is None and outcome.case["state"] == "refused"


def test_a_decision_can_be_signed_only_at_the_decision_stage():
    saga = make_saga()
    case = open_case(saga).case
    with pytest.raises(RuleBroken) as caught:
        saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve")
    assert caught.value.kind == "conflict"


def test_a_required_stage_that_did_not_run_refuses_approval_citing_it():
    def mandatory_plan(d):
        d["pipelines"]["build"][-1]["requires_stages"] = ["yearly_plan"]
    saga = make_saga(profile=jinjiang_variant(mandatory_plan))
    outcome = open_case(saga, amount=100000)  # below 30万: the yearly plan is skipped
    case, commands = drive_to(saga, outcome.case, "decision")
    (refused,) = [c for c in commands if isinstance(c, RefuseProject)]
    assert refused.stage == "decision" and refused.cite == "jinjiang art. 6"
    assert refused.reasons[0]["rule"] == "required_stage_not_passed"
    assert case["state"] == "refused"


def test_an_automatic_decision_approves_on_entry():
    saga = make_saga(profile=jinjiang_variant(lambda d: d["decision"].update(sign="auto")))
    case, commands = drive_to(saga, open_case(saga).case, "decision")
    assert any(isinstance(c, ApproveProject) for c in commands)
    assert case["state"] == "approved"


def test_an_opinion_asked_of_the_commission_itself_is_signed_here_not_sent():
    def drc_opinion(d):
        d["pipelines"]["build"][0]["opinions"].append({"agency": "drc", "subject": "plan", "sign": "auto",
                                                       "cite": "jinjiang art. 7"})
    saga = make_saga(profile=jinjiang_variant(drc_opinion), own_agencies={"drc"})
    outcome = open_case(saga)
    assert {c.agency for c in outcome.commands if isinstance(c, RequestOpinion)} == {"data_bureau"}
    case = outcome.case
    own = next(o for o in current(case)["opinions"] if o["agency"] == "drc")
    with pytest.raises(RuleBroken) as caught:
        saga.sign_own_opinion(case, request_id=own["request_id"], officer_id="o", officer_agency="finance",
                              verdict="approve")
    assert caught.value.kind == "forbidden"
    case = saga.sign_own_opinion(case, request_id=own["request_id"], officer_id="o", officer_agency="drc",
                                 verdict="approve").case
    case, commands = answer_stage(saga, case)
    assert entered(commands) == ["yearly_plan"]


# ---- what the service shows -----------------------------------------------------------

def test_the_case_view_fits_its_contract_at_every_step():
    saga = make_saga()
    outcome = open_case(saga)
    case = outcome.case
    dump(CaseViewSchema, case_view(case, TODAY, DOCUMENT_TYPES))
    case, _ = drive_to(saga, case, "expert_review", cost_data={"reviewed_amount": 1})
    case = saga.record_vote(case, expert_id=current(case)["panel"]["experts"][0]["expert_id"], vote="reject",
                            comment="c", officer_id="o", officer_agency="drc").case
    view = dump(CaseViewSchema, case_view(case, TODAY, DOCUMENT_TYPES))
    assert view["stages"][3]["panel"]["rejections"] == 1
    assert view["documents"][0]["name"] == "项目需求方案"
    case, _ = drive_to(saga, copy.deepcopy(open_case(saga).case), "decision")
    case = saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve").case
    view = dump(CaseViewSchema, case_view(case, TODAY, DOCUMENT_TYPES))
    assert view["state"] == "approved" and view["approval"]["document_no"].startswith("锦发改审〔2026〕")
    assert all(entry["cite"] for entry in view["history"])
    dump(CaseSummarySchema, case_summary(case))


def test_an_unanswered_opinion_is_overdue_after_its_due_date():
    saga = make_saga()
    case = open_case(saga).case
    due = dt.date.fromisoformat(current(case)["opinions"][0]["due_on"])
    assert case_view(case, due, {})["stages"][0]["opinions"][0]["overdue"] is False
    assert case_view(case, due + dt.timedelta(days=1), {})["stages"][0]["opinions"][0]["overdue"] is True


def test_no_step_changes_the_case_it_was_given():
    """Each step works on its own copy; only the project and the application are shared,
    and the saga never changes those in place."""
    saga = make_saga()
    case = open_case(saga).case
    seen = []
    while case["state"] == "in_progress" and case["current_stage"] != "decision":
        before = copy.deepcopy(case)
        stage = current(case)
        if stage["type"] == "opinions":
            new, _ = answer_stage(saga, case)
        elif stage["type"] == "documents":
            new, _ = submit_documents(saga, case, stage["documents_required"])
        else:
            new, _ = vote_all(saga, case, approvals=len(stage["panel"]["experts"]))
        assert case == before, f"{stage['key']} changed the case it was given"
        assert new["application"] is case["application"] and new["history"] is not case["history"]
        seen.append(stage["key"])
        case = new
    assert seen == ALL_STAGES[:-1]


def test_a_saga_that_takes_its_cases_steps_as_one_that_copies_them():
    """``takes_cases=True`` (what the service runs: each case is just decoded from its row)
    changes the case it is given instead of a copy, and nothing else: the same cases and
    commands at every step as a saga that copies."""
    def ids():
        counter = itertools.count(1)
        return lambda: f"id-{next(counter)}"

    copying = make_saga(new_id=ids())
    taking = make_saga(new_id=ids(), takes_cases=True)
    case_c, case_t = open_case(copying, code="JJ-1").case, open_case(taking, code="JJ-1").case
    assert case_c == case_t
    seen = []
    while case_c["state"] == "in_progress" and case_c["current_stage"] != "decision":
        stage = current(case_c)
        step = {"opinions": lambda saga, case: answer_stage(saga, case),
                "documents": lambda saga, case: submit_documents(saga, case, stage["documents_required"]),
                "experts": lambda saga, case: vote_all(saga, case, approvals=len(stage["panel"]["experts"]))}
        given = case_t
        (case_c, cmds_c), (case_t, cmds_t) = step[stage["type"]](copying, case_c), step[stage["type"]](taking, case_t)
        assert case_t == case_c and cmds_t == cmds_c, f"{stage['key']} differs"
        assert case_t is given, f"{stage['key']} copied the case it took"
        seen.append(stage["key"])
    assert seen == ALL_STAGES[:-1]
