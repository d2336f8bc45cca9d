"""The investment review centre's cost review (造价评审): cuts by profile parameters."""
import uuid
from decimal import Decimal

import pytest

from policy import load_profile
from services.budget.domain import (
    COST_PRICE_CEILINGS, COST_UNBASED_CUT_RATIO, CostParameterError, check_cost, cost_rules, review_estimate,
)

pytestmark = pytest.mark.unit

RATIO_CITE = "our reading: a line with no price basis is cut"
CEILING_CITE = "our reading: unit prices above the ceiling are cut"


def rules(ratio=0.2, ceilings=None):
    return cost_rules(ratio, RATIO_CITE, ceilings, CEILING_CITE)


def make_line(**overrides):
    line = {"item": f"item-{uuid.uuid4().hex[:6]}", "category": "hardware", "quantity": 1,
            "unit_price": 1000, "basis": "询价"}
    line.update(overrides)
    return line


def make_application(lines):
    return {"name": "p", "kind": "build", "year": 2026, "summary": "s",
            "amount": sum(line["quantity"] * line["unit_price"] for line in lines), "estimate": lines}


def cite(key):
    return load_profile("jinjiang").cite(key, fallback="jinjiang art. 8")


def test_a_line_without_a_price_basis_is_cut_by_the_ratio():
    review = review_estimate([make_line(quantity=10, unit_price=1000, basis="")], rules(ratio=0.2))
    (line,) = review["lines"]
    assert line["reviewed_unit_price"] == 800
    assert line["reviewed"] == 8000
    assert [r["rule"] for r in line["reasons"]] == ["unbased_cut"]
    assert line["reasons"][0]["cite"] == RATIO_CITE
    assert "20%" in line["reasons"][0]["zh"]
    assert (review["requested_amount"], review["reviewed_amount"], review["reduction"]) == (10000, 8000, 2000)


def test_a_line_with_a_price_basis_is_kept():
    review = review_estimate([make_line(quantity=3, unit_price=1000, basis="市场价")], rules())
    assert review["lines"][0]["reviewed"] == 3000
    assert review["lines"][0]["reasons"] == []
    assert review["reduction"] == 0


def test_a_blank_basis_counts_as_no_basis():
    review = review_estimate([make_line(basis="   ")], rules(ratio=0.5))
    assert review["lines"][0]["reviewed_unit_price"] == 500


def test_a_unit_price_above_its_category_ceiling_is_cut_to_the_ceiling():
    review = review_estimate([make_line(category="hardware", quantity=2, unit_price=600_000)],
                             rules(ceilings={"hardware": 500_000}))
    (line,) = review["lines"]
    assert line["reviewed_unit_price"] == 500_000
    assert line["reviewed"] == 1_000_000
    assert [r["rule"] for r in line["reasons"]] == ["price_ceiling"]
    assert line["reasons"][0]["cite"] == CEILING_CITE
    assert review["reduction"] == 200_000


def test_a_ceiling_of_another_category_does_not_apply():
    review = review_estimate([make_line(category="software", unit_price=600_000)], rules(ceilings={"hardware": 500_000}))
    assert review["reduction"] == 0


def test_an_unbased_line_above_the_ceiling_is_capped_first_and_then_cut():
    review = review_estimate([make_line(unit_price=600_000, quantity=1, basis="")],
                             rules(ratio=0.2, ceilings={"hardware": 500_000}))
    (line,) = review["lines"]
    assert [r["rule"] for r in line["reasons"]] == ["price_ceiling", "unbased_cut"]
    assert line["reviewed_unit_price"] == 400_000
    assert review["reduction"] == 200_000


def test_the_reduction_adds_up_over_every_line():
    lines = [
        make_line(quantity=10, unit_price=1000, basis=""),  # 10000 → 8000
        make_line(quantity=1, unit_price=700_000, category="hardware"),  # 700000 → 500000
        make_line(quantity=5, unit_price=2000),  # kept: 10000
    ]
    review = review_estimate(lines, rules(ratio=0.2, ceilings={"hardware": 500_000}))
    assert review["requested_amount"] == 720_000
    assert review["reviewed_amount"] == 518_000
    assert review["reduction"] == 202_000
    assert [line["line_no"] for line in review["lines"]] == [1, 2, 3]
    assert all(isinstance(line["reviewed"], int) for line in review["lines"])


def test_a_cut_unit_price_rounds_half_up_to_whole_yuan():
    review = review_estimate([make_line(unit_price=10, basis=""), make_line(unit_price=7, basis="")], rules(ratio=0.25))
    assert [line["reviewed_unit_price"] for line in review["lines"]] == [8, 5]  # 7.5 → 8, 5.25 → 5


def test_a_rule_whose_parameter_is_absent_does_not_apply():
    review = review_estimate([make_line(unit_price=9_000_000, basis="")], cost_rules())
    assert review["reduction"] == 0


@pytest.mark.parametrize("ratio", [1.5, -0.1, True, "abc"])
def test_a_cut_ratio_outside_zero_to_one_is_a_broken_parameter(ratio):
    with pytest.raises(CostParameterError, match=COST_UNBASED_CUT_RATIO):
        cost_rules(unbased_cut_ratio=ratio)


@pytest.mark.parametrize("ceilings", [{"gold": 1}, {"hardware": -1}, {"hardware": 1.5}, [1, 2]])
def test_a_malformed_ceiling_table_is_a_broken_parameter(ceilings):
    with pytest.raises(CostParameterError, match=COST_PRICE_CEILINGS):
        cost_rules(price_ceilings=ceilings)


def test_the_jinjiang_profile_states_both_cost_parameters_with_their_reading():
    profile = load_profile("jinjiang")
    built = cost_rules(profile.parameter(COST_UNBASED_CUT_RATIO), profile.parameter_cite(COST_UNBASED_CUT_RATIO),
                       profile.parameter(COST_PRICE_CEILINGS), profile.parameter_cite(COST_PRICE_CEILINGS))
    assert built.unbased_cut_ratio == Decimal("0.2")
    assert built.price_ceilings["hardware"] > 0
    assert built.unbased_cite.startswith("our reading: jinjiang art. 8")
    assert built.ceilings_cite.startswith("our reading: jinjiang art. 8")


def test_an_application_without_estimate_lines_cannot_be_reviewed():
    draft = check_cost(make_application([]), rules(), cite)
    assert draft.resolved_verdict() == "reject"
    assert draft.findings[0]["rule"] == "cost_estimate_missing"
    assert draft.findings[0]["cite"] == "jinjiang art. 8"
    assert draft.data["reviewed_amount"] is None


def test_a_reduced_estimate_is_approved_on_the_reviewed_amount():
    draft = check_cost(make_application([make_line(quantity=10, unit_price=1000, basis="")]), rules(), cite)
    assert draft.resolved_verdict() == "approve_with_conditions"
    assert draft.data["reviewed_amount"] == 8000
    assert draft.data["reduction"] == 2000
    assert "8000" in draft.conditions[0] and "2000" in draft.conditions[0]
    line = draft.data["lines"][0]
    assert {"item", "requested", "reviewed", "reasons"} <= set(line)


def test_an_estimate_with_nothing_to_cut_is_approved_plainly():
    draft = check_cost(make_application([make_line()]), rules(), cite)
    assert draft.resolved_verdict() == "approve"
    assert draft.conditions == []
    assert draft.data["reduction"] == 0
