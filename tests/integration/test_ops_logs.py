"""Log lines written inside a worker carry the worker's context, as JSON, without data.

A small service under review's name (so that its subscription is one listed in
``contracts.events.SUBSCRIPTIONS``) logs from an RPC method and from an event handler; a
handler with :class:`runtime.logs.JsonFormatter` on the root logger captures what an
operator would read.
"""
import json
import logging
import uuid

import pytest
import requests
from nameko.containers import ServiceContainer
from nameko.rpc import rpc
from sqlalchemy import MetaData

from contracts import NotFound
from runtime.db import runtime_tables
from runtime.dependencies import Database
from runtime.messaging import subscribe
from runtime.ops import Instrumentation, OpsEndpoints
from runtime.web import bound_port, http
from scripts.demo import application
from tests.support.broker import wait_for
from tests.support.logcapture import capturing
from tests.support.suite import Suite

pytestmark = [pytest.mark.integration]

log = logging.getLogger("tests.ops.logs")

SUMMARY = "整合部门政务服务事项，接入一体化政务服务平台和数据共享交换平台，实现一网通办。"
UNIT_NAME = "锦江区测试单位（个人信息）"

registry_md = MetaData()
runtime_tables(registry_md)
review_md = MetaData()
runtime_tables(review_md)
web_md = MetaData()
runtime_tables(web_md)

HEARD = []


class FakeRegistry:
    name = "registry"
    db = Database(registry_md)


class Chatty:
    """Logs from inside its workers, as the services' use cases do."""

    name = "review"
    instrumentation = Instrumentation()
    db = Database(review_md)

    @rpc(expected_exceptions=(NotFound,))
    def look_up(self, code, missing=False):
        log.info("looking the project up")
        if missing:
            raise NotFound(message_zh=f"项目 {code} 不存在", message_en=f"project {code} not found", field="code")
        return code

    @subscribe("registry", "project_submitted")
    def handle_project_submitted(self, event):
        log.info("project submitted heard", extra={"stage": "intake"})
        HEARD.append(event["event_id"])


class Web(OpsEndpoints):
    """An HTTP service: its requests are logged once each."""

    name = "web_logged"
    instrumentation = Instrumentation()
    db = Database(web_md)

    @http("GET", "/hello/<code>")
    def hello(self, request, code):
        return 200, code


@pytest.fixture
def capture():
    with capturing(service="process-default") as handler:
        yield handler


@pytest.fixture
def running(vhost_uri, sqlite_url):
    with Suite(vhost_uri, "jinjiang", {"registry": sqlite_url("registry"), "review": sqlite_url("review")}) as suite:
        for cls in (FakeRegistry, Chatty):
            container = ServiceContainer(cls)
            container.start()
            suite.containers[cls.name] = container
        yield suite


def test_a_line_logged_inside_an_rpc_worker_names_the_service_the_entrypoint_the_call_and_the_project(
        running, capture):
    assert running.rpc("review", "look_up", code="JJ-2026-000123") == "JJ-2026-000123"
    [line] = [r for r in capture.records() if r["msg"] == "looking the project up"]
    assert line["service"] == "review" and line["entrypoint"] == "rpc:look_up"
    assert line["code"] == "JJ-2026-000123"
    assert line["call_id"].startswith("review.look_up.")
    assert line["logger"] == "tests.ops.logs" and line["level"] == "info" and line["ts"]


def test_an_expected_refusal_is_logged_with_its_code_and_field_and_no_message_text(running, capture):
    with pytest.raises(NotFound):
        running.rpc("review", "look_up", code="JJ-2026-000124", missing=True)
    [line] = wait_for(lambda: [r for r in capture.records() if "error handling worker" in r["msg"]],
                      message="nameko's line about the refusal")
    assert line["entrypoint"] == "rpc:look_up" and line["code"] == "JJ-2026-000124"
    assert line["exc_type"] == "NotFound" and line["exc"] == "NotFound(not_found) fields=code"
    assert "不存在" not in json.dumps(line, ensure_ascii=False) and "stack" not in line
    [handled] = wait_for(lambda: [r for r in capture.records() if r["msg"] == "rpc handled"
                                  and r.get("code") == "JJ-2026-000124"], message="the call's summary line")
    assert handled["outcome"] == "rejected" and handled["entrypoint"] == "rpc:look_up" and handled["duration_ms"] >= 0


def test_a_line_logged_inside_an_event_handler_carries_the_event_and_its_correlation_id_and_no_payload(
        running, capture):
    code = f"JJ-2026-{uuid.uuid4().hex[:6]}"
    app = application("jinjiang", 5_000_000)
    assert app["summary"] == SUMMARY
    payload = {"project": {"code": code, "jurisdiction": "jinjiang", "unit_id": "JJ-U9", "unit_name": UNIT_NAME,
                           "name": app["name"], "kind": "build", "amount": app["amount"]},
               "application": app, "revision": 0, "declared_on": "2026-11-24"}
    core = next(e for e in running.containers["registry"].extensions if isinstance(e, Database)).core
    with core.transaction() as tx:
        event_id = tx.emit("project_submitted", payload, correlation_id=code)
    wait_for(lambda: event_id in HEARD, message="the event handled")

    [line] = wait_for(lambda: [r for r in capture.records() if r["msg"] == "project submitted heard"],
                      message="the handler's line")
    assert line["service"] == "review" and line["entrypoint"] == "event:handle_project_submitted"
    assert line["code"] == code and line["event_id"] == event_id and line["event"] == "project_submitted"
    assert line["call_id"].startswith("review.handle_project_submitted.")
    assert line["stage"] == "intake"  # a field from SAFE_EXTRA
    # everything logged at DEBUG, by us, nameko, kombu and amqp: no payload
    text = "\n".join(capture.lines)
    for secret in (SUMMARY, UNIT_NAME, app["name"]):
        assert secret not in text
    # every line is one JSON object
    assert all(isinstance(r, dict) for r in capture.records())


def test_an_unexpected_error_is_logged_with_its_stack_and_without_the_data_its_text_quotes(capture):
    from sqlalchemy.exc import IntegrityError
    try:
        raise IntegrityError("INSERT INTO projects (name) VALUES (?)", (UNIT_NAME,),
                             Exception("UNIQUE constraint failed: projects.name"))
    except IntegrityError:
        logging.getLogger("tests.ops.logs").exception("could not store %s", "the project")
    [line] = [r for r in capture.records() if r["msg"] == "could not store the project"]
    assert line["exc_type"] == "IntegrityError"
    assert line["exc"] == "IntegrityError(Exception): UNIQUE constraint failed: projects.name"
    assert any("test_ops_logs.py" in frame for frame in line["stack"])
    assert UNIT_NAME not in "\n".join(capture.lines)


def test_each_http_request_gets_one_line_health_probes_none_and_a_request_no_route_takes_one_refusal(
        vhost_uri, sqlite_url, capture):
    from nameko import config
    with config.patch({"AMQP_URI": vhost_uri, "DATABASES": {"web_logged": sqlite_url("web_logged")}}):
        container = ServiceContainer(Web)
        container.start()
        try:
            base = f"http://127.0.0.1:{bound_port(container)}"
            assert requests.get(f"{base}/hello/JJ-2026-000125", timeout=10).text == "JJ-2026-000125"
            assert requests.get(f"{base}/health/live", timeout=10).status_code == 200
            assert requests.get(f"{base}/nowhere/JJ-2026-000126", timeout=10).status_code == 404
            assert requests.post(f"{base}/hello/JJ-2026-000127", timeout=10).status_code == 405

            def http_lines():
                found = [r for r in capture.records() if r["msg"] in ("http handled", "http refused")]
                return found if len(found) >= 3 else None

            lines = wait_for(http_lines, message="the requests' lines")
        finally:
            container.stop()
    [handled] = [r for r in lines if r["msg"] == "http handled"]
    assert handled["entrypoint"] == "http:hello" and handled["code"] == "JJ-2026-000125"
    assert handled["outcome"] == "success"
    refused = sorted((r["status"], r["method"], r["path"]) for r in lines if r["msg"] == "http refused")
    assert refused == [(404, "GET", "/nowhere/JJ-2026-000126"), (405, "POST", "/hello/JJ-2026-000127")]
    # no second (access) line per request, and none for the probe
    assert not [r for r in capture.records() if r["logger"] == "nameko.web.server"]
    assert not [r for r in capture.records() if "/health/live" in json.dumps(r)
                and not r["logger"].startswith("urllib3")]  # the test's own client logs its requests
