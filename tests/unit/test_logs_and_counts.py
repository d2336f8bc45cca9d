"""The log line's timestamp and context, and the counts of :class:`runtime.ops.Instrumentation`.

The JSON formatter writes the time from a second's text kept while the second lasts, keeps
the worker's context in a ``ContextVar`` (one per green thread), and the instrumentation
looks each counter and histogram child up once: each of these must give what the plain
way gave.
"""
import datetime as dt
import json
import logging
import random

import eventlet

from runtime import logs
from runtime import metrics as m
from runtime.messaging import Subscribe
from runtime.ops import Instrumentation


def _record(msg="%s handled", args=("rpc",), level=logging.INFO, **extra):
    return logging.getLogger("tests.logs").makeRecord("tests.logs", level, None, 0, msg, args, None, extra=extra)


def test_the_timestamp_is_what_datetime_writes_to_the_microsecond_around_every_second():
    rng = random.Random(5)
    stamps = [1795000000.0, 1795000000.9999996, 1795000001.0000004, 1795000059.999999]
    stamps += [rng.uniform(1.6e9, 2.2e9) for _ in range(3000)]
    stamps += [int(s) + f for s in stamps[:200] for f in (0.0, 0.5, 0.999999, 0.9999995)]
    for created in stamps:
        expected = dt.datetime.fromtimestamp(created, dt.timezone.utc).isoformat(timespec="microseconds")
        assert logs._timestamp(created) == expected, created


def test_a_line_carries_the_context_of_its_own_green_thread_and_the_safe_extras():
    formatter = logs.JsonFormatter(service="review")
    seen = {}

    def worker(code):
        logs.set_context(service="review", entrypoint="rpc:get_case", code=code, parent_call_id=None, event="")
        eventlet.sleep(0)  # the other worker sets its own context meanwhile
        logs.update_context(event_id=f"e-{code}")
        seen[code] = json.loads(formatter.format(_record(outcome="success", duration_ms=1.5, payload="secret")))

    threads = [eventlet.spawn(worker, code) for code in ("2026-1", "2026-2")]
    for thread in threads:
        thread.wait()
    for code, line in seen.items():
        assert line["code"] == code and line["event_id"] == f"e-{code}"
        assert line["entrypoint"] == "rpc:get_case" and line["service"] == "review"
        assert "parent_call_id" not in line and "event" not in line  # empty values are left out
        assert line["msg"] == "rpc handled" and line["level"] == "info" and line["logger"] == "tests.logs"
        assert line["outcome"] == "success" and line["duration_ms"] == 1.5
        assert "payload" not in line  # not a safe extra
    # a green thread that set nothing has no context
    assert eventlet.spawn(lambda: json.loads(formatter.format(_record()))).wait().keys() == {
        "ts", "level", "service", "logger", "msg"}
    assert json.loads(formatter.format(_record(level=logging.WARNING)))["level"] == "warning"


class _Container:
    def __init__(self, service_name):
        self.service_name = service_name


_CONTAINERS = []  # an extension holds its container by a weak reference


def _instrumentation(service):
    _CONTAINERS.append(_Container(service))
    inst = Instrumentation().bind(_CONTAINERS[-1], "instrumentation")
    inst.setup()
    return inst


class _Rpc:
    expected_exceptions = (LookupError,)

    def __init__(self, method_name):
        self.method_name = method_name


def _value(metric, **labels):
    return m.REGISTRY.get_sample_value(metric, labels) or 0.0


def test_each_call_is_counted_under_its_own_method_and_outcome():
    inst = _instrumentation("counted_svc")
    look_up, other = _Rpc("look_up"), _Rpc("other")
    rpc_total = "govpm_rpc_requests_total"
    before = {(meth, outcome): _value(rpc_total, service="counted_svc", method=meth, outcome=outcome)
              for meth in ("look_up", "other") for outcome in ("success", "rejected", "error")}
    try:
        raise LookupError("expected")
    except LookupError as exc:
        rejected = (type(exc), exc, exc.__traceback__)
    failed = (RuntimeError, RuntimeError("boom"), None)
    for entrypoint, exc_info, times in ((look_up, None, 3), (look_up, rejected, 2), (look_up, failed, 1),
                                        (other, None, 4)):
        for _ in range(times):
            inst._record("rpc", entrypoint, 0.002, exc_info)
    counted = {key: _value(rpc_total, service="counted_svc", method=key[0], outcome=key[1]) - value
               for key, value in before.items()}
    assert counted == {("look_up", "success"): 3, ("look_up", "rejected"): 2, ("look_up", "error"): 1,
                       ("other", "success"): 4, ("other", "rejected"): 0, ("other", "error"): 0}
    assert _value("govpm_rpc_duration_seconds_count", service="counted_svc", method="other", outcome="success") == 4
    assert _value("govpm_rpc_duration_seconds_bucket", service="counted_svc", method="other", outcome="success",
                  le="0.001") == 0
    assert _value("govpm_rpc_duration_seconds_bucket", service="counted_svc", method="other", outcome="success",
                  le="0.0025") == 4
    # two instances of one service (the scale-out test runs them in one process) share the series
    _instrumentation("counted_svc")._record("rpc", other, 0.002, None)
    assert _value(rpc_total, service="counted_svc", method="other", outcome="success") - before[("other", "success")] == 5


def _subscription(expected_exceptions=()):
    """A ``@subscribe`` entrypoint as Instrumentation sees it: its method, event and
    expected exceptions (not set up: no container, no queue)."""
    handler = Subscribe.__new__(Subscribe)
    handler.method_name, handler.event_type = "handle_it", "project_submitted"
    handler.expected_exceptions = expected_exceptions
    return handler


def test_an_event_is_counted_under_its_event_type():
    handler = _subscription()
    inst = _instrumentation("counted_events")
    inst._record("event", handler, 0.004, None)
    inst._record("event", handler, 0.004, None)
    assert _value("govpm_events_handled_total", service="counted_events", event="project_submitted",
                  outcome="success") == 2
    assert _value("govpm_event_handle_duration_seconds_sum", service="counted_events", event="project_submitted",
                  outcome="success") == 0.008


def test_a_record_with_lines_is_written_as_one_line_per_item_each_over_the_record_and_its_context():
    formatter = logs.JsonFormatter(service="review")

    def worker():
        logs.set_context(service="review", entrypoint="event:handle_it", call_id="review.handle_it.1",
                         code="2026-last", event_id="e-last")
        items = [{"code": "2026-1", "event_id": "e-1", "event": "project_submitted", "outcome": "success",
                  "duration_ms": 0.0},
                 {"code": "2026-2", "event_id": "e-2", "event": "project_submitted", "outcome": "duplicate",
                  "duration_ms": 1.5, "payload": "secret"}]
        return formatter.format(_record(args=("event",), lines=items))

    text = eventlet.spawn(worker).wait()
    first, second = (json.loads(line) for line in text.split("\n"))
    for line, code in ((first, "2026-1"), (second, "2026-2")):
        assert line["msg"] == "event handled" and line["level"] == "info" and line["logger"] == "tests.logs"
        assert line["entrypoint"] == "event:handle_it" and line["call_id"] == "review.handle_it.1"
        assert line["code"] == code and line["event_id"] == f"e-{code[-1]}" and line["event"] == "project_submitted"
        assert line["ts"] == first["ts"]
    assert first["outcome"] == "success" and first["duration_ms"] == 0.0
    assert second["outcome"] == "duplicate" and second["duration_ms"] == 1.5
    assert "payload" not in second  # a line carries context fields and safe extras only
    assert "lines" not in first


def test_a_batch_of_events_gets_one_line_and_one_count_per_event_with_its_own_outcome():
    from runtime.db import AlreadyHandled
    from runtime.messaging import EventBatch, _Item
    from tests.support.logcapture import capturing

    handler = _subscription((AlreadyHandled,))
    inst = _instrumentation("batched_events")
    batch = EventBatch(handler)
    outcomes = {"e-1": None, "e-2": (AlreadyHandled, AlreadyHandled("e-2"), None),
                "e-3": (RuntimeError, RuntimeError("boom"), None)}
    for event_id, exc_info in outcomes.items():
        item = _Item({"event_id": event_id, "event_type": "project_submitted", "correlation_id": f"P-{event_id}"},
                     None)
        item.exc_info, item.elapsed = exc_info, 0.002
        batch.items.append(item)
    batch.committed = 3

    class Worker:
        entrypoint, args, kwargs = handler, (batch,), {}
        call_id, immediate_parent_call_id, origin_call_id = "batched_events.handle_it.1", None, None

    worker = Worker()
    with capturing() as capture:
        inst.worker_setup(worker)
        inst.worker_result(worker)
    lines = [r for r in capture.records() if r["msg"] == "event handled"]
    assert [(r["event_id"], r["code"], r["outcome"], r["duration_ms"]) for r in lines] == [
        ("e-1", "P-e-1", "success", 2.0), ("e-2", "P-e-2", "duplicate", 2.0), ("e-3", "P-e-3", "error", 2.0)]
    assert all(r["event"] == "project_submitted" and r["entrypoint"] == "event:handle_it" for r in lines)
    assert len(capture.lines) == len(capture.records())
    assert {outcome: _value("govpm_events_handled_total", service="batched_events", event="project_submitted",
                            outcome=outcome) for outcome in ("success", "duplicate", "error")} == {
        "success": 1, "duplicate": 1, "error": 1}
