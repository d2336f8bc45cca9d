"""``CONTRACT_CHECKS``: which outgoing data is loaded again through its contract."""
import pytest
from nameko import config

from contracts import ValidationFailed, dump
from contracts.rpc_registry import SystemSchema
from runtime.dependencies import contract_checks, rpc_method

# a status the catalog does not know, and no status_name, registered_at or cite
BROKEN = {"id": 7, "unit_id": "U1", "name": "x", "project_code": None, "status": "lost"}


class Service:
    @rpc_method("registry.list_systems")
    def list_systems(self, args):
        return [dict(BROKEN)]


def test_dump_checks_what_it_dumped_unless_told_not_to():
    with pytest.raises(ValidationFailed) as err:
        dump(SystemSchema, BROKEN)
    assert {e["field"] for e in err.value.data["errors"]} >= {"status", "status_name", "registered_at", "cite"}
    assert dump(SystemSchema, BROKEN, check=False) == BROKEN


def test_strict_checks_every_rpc_result_and_events_mode_only_dumps_it():
    with config.patch({"CONTRACT_CHECKS": "strict"}):
        with pytest.raises(ValidationFailed):
            Service().list_systems(unit_id="U1")
    with config.patch({"CONTRACT_CHECKS": "events"}):
        assert Service().list_systems(unit_id="U1") == [BROKEN]


def test_the_test_suite_runs_strict_and_a_wrong_mode_is_refused_in_both_languages(monkeypatch):
    assert contract_checks() == "strict"  # tests/conftest.py
    with config.patch({"CONTRACT_CHECKS": "sometimes"}):
        with pytest.raises(ValueError, match="CONTRACT_CHECKS") as err:
            contract_checks()
    assert "只能是" in str(err.value) and "must be events or strict" in str(err.value)
    monkeypatch.delenv("CONTRACT_CHECKS")
    assert contract_checks() == "events"  # a deployment's default
