"""The security service's RPC contracts refuse bad input naming the field and the rule;
its rules module stays plain Python. No network."""
import ast
import os

import pytest

from contracts import ValidationFailed, dump, load
from contracts.rpc import contract
from contracts.rpc_security import CheckApplicationArgs, ComplianceSchema, GetComplianceArgs

pytestmark = pytest.mark.unit

APP = {"name": "n", "kind": "build", "amount": 1, "year": 2026, "summary": "s"}


def fields_of(exc):
    return {(e["field"], e["rule"]) for e in exc.value.errors}


def test_the_security_rpcs_are_registered_with_their_contracts():
    assert contract("security.check_application")[0] is CheckApplicationArgs
    assert contract("security.get_compliance")[0] is GetComplianceArgs


def test_a_dry_run_for_a_subject_the_service_does_not_answer_names_the_subject_field():
    with pytest.raises(ValidationFailed) as exc:
        load(CheckApplicationArgs, {"subject": "grading", "application": APP})
    assert ("subject", "one_of") in fields_of(exc)
    assert "意见事项" in exc.value.errors[0]["zh"]


def test_a_dry_run_with_a_broken_application_names_the_nested_field():
    broken = dict(APP, crypto_plan={"present": "maybe"}, security_plan={"level_claimed": 7})
    with pytest.raises(ValidationFailed) as exc:
        load(CheckApplicationArgs, {"subject": "crypto", "application": broken})
    assert ("application.crypto_plan.present", "type_boolean") in fields_of(exc)
    assert ("application.security_plan.level_claimed", "range") in fields_of(exc)


def test_a_compliance_query_needs_a_project_code():
    with pytest.raises(ValidationFailed) as exc:
        load(GetComplianceArgs, {})
    assert ("code", "required") in fields_of(exc)
    with pytest.raises(ValidationFailed) as exc:
        load(GetComplianceArgs, {"code": ""})
    assert ("code", "length") in fields_of(exc)


def test_an_unknown_project_has_an_empty_unknown_compliance_record():
    data = dump(ComplianceSchema, {"code": "C-1", "unit_id": None, "status": "unknown", "entries": []})
    assert data == {"code": "C-1", "unit_id": None, "status": "unknown", "entries": []}


def test_the_rules_module_imports_no_framework():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "services", "security", "domain.py")
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"nameko", "sqlalchemy", "marshmallow", "kombu"}
