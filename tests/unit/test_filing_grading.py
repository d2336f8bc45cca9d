"""Graded protection (等保) grading per GB/T 22240-2020 and the grading opinion."""
import uuid

import pytest

from policy import load_profile
from runtime.opinions import verdict_from_findings
from services.filing.domain import GRADING_STANDARD, check_grading, grade_system, harm_level

pytestmark = pytest.mark.unit

JINJIANG = load_profile("jinjiang")
REQUEST_CITE = "jinjiang art. 8"


def cite(check_key):
    return JINJIANG.cite(check_key, fallback=REQUEST_CITE)


def make_grading(business=("citizens", "general"), service=("citizens", "general")):
    return {"business_object": business[0], "business_degree": business[1],
            "service_object": service[0], "service_degree": service[1]}


def make_application(**overrides):
    app = {
        "name": f"项目-{uuid.uuid4().hex[:6]}", "kind": "build", "amount": 1_000_000, "year": 2026,
        "summary": "s", "grading": make_grading(("public", "serious")),
        "security_plan": {"present": True, "level_claimed": 3, "measures": [], "yearly_test_planned": True},
    }
    app.update(overrides)
    return app


GRID = [
    ("citizens", "general", 1), ("citizens", "serious", 2), ("citizens", "especially_serious", 2),
    ("public", "general", 2), ("public", "serious", 3), ("public", "especially_serious", 4),
    ("national", "general", 3), ("national", "serious", 4), ("national", "especially_serious", 5),
]


@pytest.mark.parametrize("harm_object,degree,level", GRID)
def test_each_cell_of_the_grid_gives_its_level(harm_object, degree, level):
    assert harm_level(harm_object, degree) == level
    assert grade_system(make_grading((harm_object, degree), (harm_object, degree))) == (level, level, level)


def test_the_system_level_is_the_higher_of_business_and_service():
    assert grade_system(make_grading(("citizens", "general"), ("national", "serious"))) == (4, 1, 4)
    assert grade_system(make_grading(("national", "especially_serious"), ("public", "general"))) == (5, 5, 2)


def test_an_unknown_harm_object_is_refused():
    with pytest.raises(ValueError, match="GB/T 22240-2020"):
        harm_level("planet", "general")


def test_an_application_without_grading_facts_is_rejected():
    draft = check_grading(make_application(grading=None), cite)
    assert draft.resolved_verdict() == "reject"
    (blocking,) = [f for f in draft.findings if f["severity"] == "blocking"]
    assert blocking["rule"] == "grading_missing"
    assert blocking["cite"] == "jinjiang art. 18"
    assert draft.data == {"level": None, "business_level": None, "service_level": None}


def test_a_security_plan_below_the_computed_level_is_rejected():
    app = make_application(security_plan={"level_claimed": 2, "yearly_test_planned": True})
    draft = check_grading(app, cite)
    assert draft.resolved_verdict() == "reject"
    blocking = [f for f in draft.findings if f["severity"] == "blocking"]
    assert [f["rule"] for f in blocking] == ["plan_level_below_grade"]
    assert "等保方案级别低于定级结果" in blocking[0]["zh"]


def test_a_security_plan_without_a_level_is_rejected():
    draft = check_grading(make_application(security_plan={"present": True}), cite)
    assert "plan_level_below_grade" in [f["rule"] for f in draft.findings if f["severity"] == "blocking"]


def test_level_two_must_be_filed_with_public_security():
    app = make_application(grading=make_grading(("public", "general")),
                           security_plan={"level_claimed": 2})
    draft = check_grading(app, cite)
    assert draft.data == {"level": 2, "business_level": 2, "service_level": 1}
    assert draft.resolved_verdict() == "approve_with_conditions"
    assert len(draft.conditions) == 1
    assert "备案" in draft.conditions[0] and "jinjiang art. 18" in draft.conditions[0]
    assert not [f for f in draft.findings if f["severity"] != "info"]


def test_level_three_without_a_yearly_test_gets_a_warning_and_a_condition():
    app = make_application(security_plan={"level_claimed": 3, "yearly_test_planned": False})
    draft = check_grading(app, cite)
    (warning,) = [f for f in draft.findings if f["severity"] == "warning"]
    assert warning["rule"] == "yearly_test_not_planned"
    assert warning["cite"] == "jinjiang art. 15"
    assert len(draft.conditions) == 2
    assert draft.resolved_verdict() == "approve_with_conditions"


def test_level_three_with_a_yearly_test_planned_only_needs_filing():
    draft = check_grading(make_application(), cite)
    assert draft.data["level"] == 3
    assert len(draft.conditions) == 1
    assert verdict_from_findings(draft.findings) == "approve"


def test_level_one_is_approved_without_conditions():
    app = make_application(grading=make_grading(), security_plan={"level_claimed": 1})
    draft = check_grading(app, cite)
    assert draft.resolved_verdict() == "approve"
    assert draft.conditions == []
    (info,) = draft.findings
    assert info["cite"] == GRADING_STANDARD

