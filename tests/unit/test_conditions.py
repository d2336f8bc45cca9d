"""The condition language profiles are written in (policy/conditions.py): plain data, no I/O."""
import pytest

from policy.conditions import ConditionError, check_condition, evaluate, meets_threshold

AT_LEAST_INCLUSIVE = {"amount": 300000, "direction": "at_least", "inclusive": True}  # 30万元以上 / （含）以上
AT_LEAST_EXCLUSIVE = {"amount": 1000000, "direction": "at_least", "inclusive": False}  # 超过100万元
BELOW_EXCLUSIVE = {"amount": 3000000, "direction": "below", "inclusive": False}  # 300万元以下 (bazhong art. 34)
BELOW_INCLUSIVE = {"amount": 20000000, "direction": "below", "inclusive": True}  # 不超过2000万元

THRESHOLDS = {"scope": AT_LEAST_INCLUSIVE, "merge": BELOW_EXCLUSIVE}


def project(**overrides):
    base = {"kind": "build", "amount": 1000000, "flags": {}, "facts": {}, "funding": {"source": "budget", "amount": 1000000}}
    base.update(overrides)
    return base


# ---- boundaries ------------------------------------------------------------------------

def test_yishang_includes_the_number_itself():
    assert meets_threshold(300000, AT_LEAST_INCLUSIVE)
    assert not meets_threshold(299999, AT_LEAST_INCLUSIVE)


def test_yixia_excludes_the_number_itself():
    assert meets_threshold(2999999, BELOW_EXCLUSIVE)
    assert not meets_threshold(3000000, BELOW_EXCLUSIVE)


def test_chaoguo_is_strictly_more():
    assert not meets_threshold(1000000, AT_LEAST_EXCLUSIVE)
    assert meets_threshold(1000001, AT_LEAST_EXCLUSIVE)


def test_bu_chaoguo_includes_the_number_itself():
    assert meets_threshold(20000000, BELOW_INCLUSIVE)
    assert not meets_threshold(20000001, BELOW_INCLUSIVE)


def test_threshold_condition_uses_the_projects_amount():
    assert evaluate({"threshold": "scope"}, project(amount=300000), THRESHOLDS)
    assert not evaluate({"threshold": "scope"}, project(amount=299999), THRESHOLDS)


def test_an_unknown_direction_is_refused():
    with pytest.raises(ConditionError):
        meets_threshold(1, {"amount": 1, "direction": "around", "inclusive": True})


# ---- operators -------------------------------------------------------------------------

def test_a_missing_condition_always_holds():
    assert evaluate(None, project(), THRESHOLDS)


def test_flag_and_not_flag_read_the_application_flags():
    urgent = project(flags={"urgent": True})
    assert evaluate({"flag": "urgent"}, urgent, THRESHOLDS)
    assert not evaluate({"not_flag": "urgent"}, urgent, THRESHOLDS)
    assert not evaluate({"flag": "urgent"}, project(flags=None), THRESHOLDS)


def test_kind_accepts_one_kind_or_a_list():
    assert evaluate({"kind": "om"}, project(kind="om"), THRESHOLDS)
    assert evaluate({"kind": ["service", "om"]}, project(kind="service"), THRESHOLDS)
    assert not evaluate({"kind": ["service", "om"]}, project(kind="build"), THRESHOLDS)


def test_fact_and_not_fact_read_the_intake_facts():
    p = project(facts={"isolated_system": True, "data_shared": False})
    assert evaluate({"fact": "isolated_system"}, p, THRESHOLDS)
    assert evaluate({"not_fact": "data_shared"}, p, THRESHOLDS)
    assert not evaluate({"fact": "data_shared"}, p, THRESHOLDS)


def test_gt_reads_a_dotted_path_and_is_strict():
    rule = {"gt": {"field": "facts.unit_system_count_delta", "value": 0}}
    assert evaluate(rule, project(facts={"unit_system_count_delta": 1}), THRESHOLDS)
    assert not evaluate(rule, project(facts={"unit_system_count_delta": 0}), THRESHOLDS)
    assert not evaluate(rule, project(facts={"unit_system_count_delta": -2}), THRESHOLDS)
    assert not evaluate(rule, project(facts={}), THRESHOLDS)


def test_missing_holds_for_absent_null_false_or_empty_values():
    assert evaluate({"missing": "funding"}, project(funding=None), THRESHOLDS)
    assert evaluate({"missing": "catalog"}, project(catalog=[]), THRESHOLDS)
    assert evaluate({"missing": "service_purchase.cheaper_than_build"}, project(service_purchase=None), THRESHOLDS)
    assert evaluate({"missing": "service_purchase.cheaper_than_build"},
                    project(service_purchase={"cheaper_than_build": False}), THRESHOLDS)
    assert not evaluate({"missing": "funding"}, project(), THRESHOLDS)


def test_in_matches_a_field_against_a_list_of_values():
    rule = {"in": {"field": "funding.source", "values": ["social"]}}
    assert evaluate(rule, project(funding={"source": "social", "amount": 1}), THRESHOLDS)
    assert not evaluate(rule, project(), THRESHOLDS)
    assert not evaluate(rule, project(funding=None), THRESHOLDS)


def test_all_any_and_not_combine_conditions():
    p = project(amount=100000, flags={"urgent": True})
    assert evaluate({"all": [{"flag": "urgent"}, {"threshold": "merge"}]}, p, THRESHOLDS)
    assert not evaluate({"all": [{"flag": "urgent"}, {"threshold": "scope"}]}, p, THRESHOLDS)
    assert evaluate({"any": [{"flag": "mandated"}, {"threshold": "merge"}]}, p, THRESHOLDS)
    assert evaluate({"not": {"threshold": "scope"}}, p, THRESHOLDS)


# ---- shape checks (the profile loader) -------------------------------------------------

@pytest.mark.parametrize("cond, words", [
    ({"threshold": "nope"}, "unknown threshold 'nope'"),
    ({"flag": "hurried"}, "unknown flag 'hurried'"),
    ({"when": {"flag": "urgent"}}, "unknown operator 'when'"),
    ({"flag": "urgent", "kind": "om"}, "exactly one operator"),
    ("urgent", "exactly one operator"),
    ({"all": []}, "non-empty list"),
    ({"any": {"flag": "urgent"}}, "non-empty list"),
    ({"gt": {"field": "facts.x"}}, "needs {field, value}"),
    ({"missing": ["funding"]}, "needs a field path"),
    ({"in": {"field": "funding.source", "values": []}}, "non-empty list of values"),
    ({"in": {"field": "funding.source"}}, "needs {field, values}"),
])
def test_a_badly_shaped_condition_is_refused_with_its_path(cond, words):
    with pytest.raises(ConditionError) as err:
        check_condition(cond, THRESHOLDS, "intake[3].when")
    assert words in str(err.value)
    assert str(err.value).startswith("intake[3].when")


def test_a_nested_bad_condition_names_its_full_path():
    with pytest.raises(ConditionError) as err:
        check_condition({"all": [{"flag": "urgent"}, {"not": {"threshold": "nope"}}]}, THRESHOLDS, "documents.build[0].when")
    assert "documents.build[0].when.all[1].not: unknown threshold 'nope'" in str(err.value)


def test_a_well_shaped_condition_passes_the_check():
    check_condition({"all": [{"threshold": "scope"}, {"not_fact": "legal_basis"},
                             {"in": {"field": "funding.source", "values": ["social"]}},
                             {"gt": {"field": "facts.unit_system_count_delta", "value": 0}}]}, THRESHOLDS)
