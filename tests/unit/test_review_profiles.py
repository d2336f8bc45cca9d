"""The saga is jurisdiction-agnostic: every profile's pipeline, for every project kind and
a spread of amounts, runs from submission to a decision when every agency and expert
agrees, and the case view fits its contract on the way. (Plain data, no fixtures.)"""
import datetime as dt
import itertools
import random
import uuid

import pytest

from contracts import dump
from contracts.enums import DOCUMENT_TYPES
from contracts.rpc_review import CaseViewSchema
from policy import available, load_profile
from services.review.domain import AdvanceTo, ApproveProject, RefuseProject, Saga
from services.review.views import case_view

pytestmark = pytest.mark.unit

TODAY = dt.date(2026, 3, 2)
POOL = [{"expert_id": f"E{i:03d}", "name": f"专家{i}", "unit_id": f"unit-{i % 6}", "field": "软件",
         "directed": i % 3 == 0, "active": True} for i in range(30)]


def run_to_decision(profile, kind, amount):
    saga = Saga(profile, TODAY, experts=POOL, rng=random.Random(1), next_number=lambda y, c=itertools.count(1): next(c),
                own_agencies={"drc"}, document_names=DOCUMENT_TYPES)
    project = {"code": f"P-{uuid.uuid4().hex[:8]}", "jurisdiction": profile.key, "unit_id": "applicant",
               "unit_name": "申报单位", "name": "项目", "kind": kind, "amount": amount}
    application = {"name": "项目", "kind": kind, "amount": amount, "year": 2026, "summary": "s", "flags": {},
                   "facts": {}}
    outcome = saga.submit(None, project=project, application=application, revision=0, declared_on=TODAY.isoformat())
    case, commands = outcome.case, list(outcome.commands)
    for _ in range(50):
        if case["state"] != "in_progress":
            break
        stage = next(s for s in case["stages"] if s["key"] == case["current_stage"])
        dump(CaseViewSchema, case_view(case, TODAY, DOCUMENT_TYPES))
        if stage["type"] == "opinions":
            for opinion in stage["opinions"]:
                if opinion["agency"] in saga.own_agencies:
                    out = saga.sign_own_opinion(case, request_id=opinion["request_id"], officer_id="o",
                                                officer_agency=opinion["agency"], verdict="approve")
                else:
                    out = saga.opinion_issued(case, {
                        "request_id": opinion["request_id"], "agency": opinion["agency"], "verdict": "approve",
                        "findings": [], "conditions": [], "data": {}, "signed_by": "auto"})
                case = out.case
                commands += out.commands
        elif stage["type"] == "documents":
            for doc_type in stage["documents_required"]:
                out, _ = saga.submit_document(case, unit_id="applicant", doc_type=doc_type, title=doc_type)
                case = out.case
                commands += out.commands
        elif stage["type"] == "experts":
            for member in stage["panel"]["experts"]:
                out = saga.record_vote(case, expert_id=member["expert_id"], vote="approve", officer_id="o",
                                       officer_agency="drc")
                case = out.case
                commands += out.commands
        elif stage["type"] == "decision":
            out = saga.sign_decision(case, officer_id="o", officer_agency="drc", verdict="approve")
            case = out.case
            commands += out.commands
    dump(CaseViewSchema, case_view(case, TODAY, DOCUMENT_TYPES))
    return saga, application, case, commands


@pytest.mark.parametrize("key", available())
@pytest.mark.parametrize("kind", ["build", "service", "om"])
@pytest.mark.parametrize("amount", [100000, 2500000, 50000000])
def test_every_profile_pipeline_runs_to_a_decision_when_everyone_agrees(key, kind, amount):
    profile = load_profile(key)
    saga, application, case, commands = run_to_decision(profile, kind, amount)
    expected = [s["key"] for s in profile.stages_for(application)]
    assert [c.stage for c in commands if isinstance(c, AdvanceTo)] == expected
    if case["state"] == "approved":
        (approved,) = [c for c in commands if isinstance(c, ApproveProject)]
        assert approved.pool == profile.approval_pool({"kind": kind})[0]
        assert approved.document_no.startswith(profile.data["decision"]["document_prefix"] + "〔2026〕")
        assert approved.approved_amount == amount
    else:
        # only a mandatory stage that did not apply to this project may stop it (e.g. a pre-review)
        (refused,) = [c for c in commands if isinstance(c, RefuseProject)]
        assert refused.reasons[0]["rule"] == "required_stage_not_passed"
        assert case["state"] == "refused"
