"""The logs of a whole declaration, as an ops team would collect them.

Every line, from every service, nameko, kombu and amqp — at DEBUG, the most a deployment
could write — is one JSON object; the lines written inside workers say which service,
entrypoint, call and project they belong to; and nothing the unit declared (its summary,
its name, the project's name) is in them.
"""
import json

import pytest

from scripts.demo import AMOUNTS, Walker, application
from tests.flows.conftest import ADMIN_PASSWORD
from tests.support.logcapture import capturing

pytestmark = pytest.mark.flow


@pytest.fixture
def capture():
    with capturing() as handler:
        yield handler


def test_a_full_declaration_logs_who_did_what_for_which_project_and_none_of_the_declared_content(
        start_suite, capture):
    suite = start_suite("jinjiang")
    walker = Walker("jinjiang", suite.base_url, ADMIN_PASSWORD)
    app = application("jinjiang", AMOUNTS["jinjiang"], name="锦江区居民健康档案共享平台")
    project = walker.declare(app)
    case = walker.drive(project["code"])
    assert case["state"] == "approved"
    code = project["code"]
    unit_name = walker.api.req("GET", f"/api/v1/projects/{code}", walker.unit)["unit_name"]

    text = "\n".join(capture.lines)
    for secret in (app["summary"], unit_name, app["name"]):
        assert secret not in text
    records = [json.loads(line) for line in capture.lines]

    in_workers = [r for r in records if r.get("entrypoint")]
    assert all(r["service"] and r["call_id"] for r in in_workers)
    # one INFO line per call and event handled (what a deployment writes at its INFO level),
    # and the project's lines, across services, found by its code
    about = [r for r in in_workers if r.get("code") == code and r["msg"].endswith(" handled")]
    assert all(r["level"] == "info" and r["outcome"] in ("success", "duplicate", "rejected")
               and r["duration_ms"] >= 0 for r in about)
    services = {r["service"] for r in about}
    assert {"registry", "review", "budget", "security", "filing", "gateway"} <= services
    kinds = {r["entrypoint"].split(":")[0] for r in about}
    assert {"rpc", "event", "http"} <= kinds
    events = [r for r in about if r["entrypoint"].startswith("event:")]
    assert all(r["event_id"] and r["event"] for r in events)
    # an RPC the gateway made names the gateway's HTTP call as its origin
    called = [r for r in about if r["entrypoint"].startswith("rpc:") and r.get("parent_call_id")]
    assert called and all(r["origin_call_id"].startswith("gateway.") for r in called)
