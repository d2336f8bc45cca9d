"""The filing service on the real RabbitMQ, over SQLite and PostgreSQL.

A tiny fake ``review`` service emits ``opinion_requested`` through the runtime outbox and
consumes ``filing.opinion_issued`` from the very queue the real review service uses
(``evt-filing-opinion_issued--review.handle_filing_opinion_issued``).
"""
import json
import uuid

import pytest
from nameko.containers import ServiceContainer
from sqlalchemy import select

from contracts import Forbidden, NotFound, ValidationFailed
from runtime.dependencies import Database
from tests.support import broker
from tests.support.broker import wait_for
from tests.support.fakes import fake_review
from tests.support.suite import Suite

pytestmark = [pytest.mark.integration, pytest.mark.db]

ISSUED_QUEUE = "evt-filing-opinion_issued--review.handle_filing_opinion_issued"

FakeReview, review_md, received = fake_review("filing")

def make_application(**overrides):
    app = {
        "name": "智慧锦江测试系统", "kind": "build", "amount": 1_000_000, "year": 2026, "summary": "建设内容",
        "funding": {"source": "budget", "amount": 1_000_000},
        "grading": {"business_object": "public", "business_degree": "serious",
                    "service_object": "citizens", "service_degree": "serious"},
        "security_plan": {"present": True, "level_claimed": 3, "yearly_test_planned": False},
    }
    app.update(overrides)
    return app


class Harness:
    def __init__(self, suite, review):
        self.suite = suite
        self.review_db = next(e for e in review.extensions if isinstance(e, Database)).core
        self.vhost = broker.vhost_of(suite.amqp_uri)

    def request_grading(self, application, sign="auto"):
        code = f"JJ-{uuid.uuid4().hex[:8]}"
        request = {
            "request_id": uuid.uuid4().hex,
            "project": {"code": code, "jurisdiction": "jinjiang", "unit_id": "unit-1", "unit_name": "区城运中心",
                        "name": application["name"], "kind": application["kind"], "amount": application["amount"]},
            "application": application, "stage": "joint_review", "stage_name": "部门联审",
            "agency": "public_security", "agency_name": "区公安分局", "subject": "grading", "sign": sign,
            "due_on": "2026-12-31", "cite": "jinjiang art. 8", "context": {},
        }
        with self.review_db.transaction() as tx:
            tx.emit("opinion_requested", request, correlation_id=code, routing_key="opinion_requested.filing")
        return request

    def issued(self, request_id):
        with self.review_db.read() as conn:
            row = conn.execute(select(received.c.payload).where(received.c.request_id == request_id)).first()
        return json.loads(row.payload) if row else None

    def wait_issued(self, request_id):
        return wait_for(lambda: self.issued(request_id), timeout=15, message=f"opinion_issued for {request_id}")

    def rpc(self, method, **kwargs):
        return self.suite.rpc("filing", method, **kwargs)


@pytest.fixture
def filing(vhost_uri, make_db_url, sqlite_url):
    urls = {"filing": make_db_url("filing"), "review": sqlite_url("review")}
    with Suite(vhost_uri, "jinjiang", urls) as suite:
        suite.start("filing")
        review = ServiceContainer(FakeReview)
        review.start()
        try:
            yield Harness(suite, review)
        finally:
            review.stop()


def test_a_grading_request_is_answered_with_the_level_on_the_review_queue(filing):
    assert broker.queue(filing.vhost, ISSUED_QUEUE) is not None
    request = filing.request_grading(make_application())
    opinion = filing.wait_issued(request["request_id"])
    assert opinion["agency"] == "public_security" and opinion["subject"] == "grading"
    assert opinion["signed_by"] == "auto"
    assert opinion["data"] == {"level": 3, "business_level": 3, "service_level": 2}
    assert opinion["verdict"] == "approve_with_conditions"
    assert [f["rule"] for f in opinion["findings"] if f["severity"] == "warning"] == ["yearly_test_not_planned"]
    assert len(opinion["conditions"]) == 2

    grading = filing.rpc("get_grading", code=request["project"]["code"])
    assert (grading["level"], grading["business_level"], grading["service_level"]) == (3, 3, 2)
    assert grading["filing_required"] is True and grading["yearly_test_required"] is True
    assert grading["level_claimed"] == 3 and grading["request_id"] == request["request_id"]
    assert grading["cite"] == "jinjiang art. 18"


def test_a_plan_below_the_grade_is_rejected(filing):
    request = filing.request_grading(make_application(security_plan={"level_claimed": 2}))
    opinion = filing.wait_issued(request["request_id"])
    assert opinion["verdict"] == "reject"
    assert "plan_level_below_grade" in [f["rule"] for f in opinion["findings"]]


def test_a_grading_opinion_signed_by_an_officer_reaches_review_with_the_signature(filing):
    request = filing.request_grading(make_application(security_plan={"level_claimed": 3, "yearly_test_planned": True}),
                                     sign="officer")
    code = request["project"]["code"]
    pending = wait_for(lambda: filing.rpc("list_inbox", code=code), message="the opinion in the officers' inbox")
    assert pending[0]["verdict"] == "approve_with_conditions"
    with pytest.raises(NotFound):
        filing.rpc("get_grading", code=code)  # recorded when issued
    with pytest.raises(Forbidden):
        filing.rpc("sign_opinion", request_id=request["request_id"], officer_id="o-1", officer_agency="cac")

    filing.rpc("sign_opinion", request_id=request["request_id"], officer_id="police-3", officer_agency="public_security")
    opinion = filing.wait_issued(request["request_id"])
    assert opinion["signed_by"] == "police-3"
    assert filing.rpc("get_grading", code=code)["signed_by"] == "police-3"


def test_the_grading_calculator_answers_and_bad_input_names_the_field(filing):
    result = filing.rpc("grade_system", business_object="national", business_degree="general",
                        service_object="public", service_degree="especially_serious")
    assert result == {"level": 4, "business_level": 3, "service_level": 4, "cite": "GB/T 22240-2020"}
    with pytest.raises(ValidationFailed) as exc:
        filing.rpc("grade_system", business_object="planet", business_degree="general",
                   service_object="public", service_degree="general")
    assert [(e["field"], e["rule"]) for e in exc.value.errors] == [("business_object", "one_of")]
    with pytest.raises(ValidationFailed) as exc:
        filing.rpc("get_grading")
    assert [(e["field"], e["rule"]) for e in exc.value.errors] == [("code", "required")]
