"""The entrypoints' check of a call's arguments (runtime.workers.SignatureOnce)."""
import pytest
from nameko.exceptions import IncorrectSignature

from runtime.workers import SignatureOnce


class Service:
    def fixed(self, code, limit=10):
        return code

    def open(self, code, **filters):
        return code


def entrypoint(method_name):
    check = SignatureOnce()
    check.container = type("Container", (), {"service_cls": Service})()
    check.method_name = method_name
    return check


def test_a_call_shaped_as_one_that_bound_is_accepted_whatever_its_values():
    check = entrypoint("fixed")
    check.check_signature(("A",), {"limit": 5})
    check.check_signature(({"any": "value"},), {"limit": None})
    assert check._shapes == {(1, "limit")}


@pytest.mark.parametrize("args, kwargs", [
    ((), {}),  # code missing
    (("A", 5, 6), {}),  # one positional too many
    (("A",), {"code": "B"}),  # code twice
    (("A",), {"offset": 1}),  # no such parameter
])
def test_a_call_that_does_not_fit_is_refused_after_calls_that_did(args, kwargs):
    check = entrypoint("fixed")
    check.check_signature(("A",), {})
    check.check_signature((), {"code": "A", "limit": 1})
    with pytest.raises(IncorrectSignature):
        check.check_signature(args, kwargs)
    with pytest.raises(IncorrectSignature):  # and again: a refusal is never remembered
        check.check_signature(args, kwargs)
    assert check._shapes == {(1,), (0, "code", "limit")}


def test_a_method_taking_any_keywords_remembers_a_bounded_number_of_shapes():
    check = entrypoint("open")
    for i in range(SignatureOnce.SHAPES + 20):
        check.check_signature(("A",), {f"filter_{i}": i})
    assert len(check._shapes) == SignatureOnce.SHAPES
    with pytest.raises(IncorrectSignature):
        check.check_signature((), {"filter_1": 1})


def test_nameko_times_a_worker_s_steps_only_when_its_debug_lines_are_written(caplog):
    import logging

    import nameko.containers

    from runtime.workers import quiet_timing
    logger = logging.getLogger("test.workers.timing")
    log_time = quiet_timing(logger)
    with caplog.at_level(logging.INFO, logger=logger.name):
        with log_time("ran handler for %s", "worker-1"):
            pass
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        with log_time("ran handler for %s", "worker-2"):
            pass
    [line] = caplog.records
    assert line.levelno == logging.DEBUG and line.getMessage().startswith("ran handler for worker-2 in ")
    assert nameko.containers._log_time.__qualname__ == "quiet_timing.<locals>.log_time"
