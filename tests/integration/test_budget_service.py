"""The budget service on the real RabbitMQ, over SQLite and PostgreSQL.

A tiny fake ``review`` service emits ``opinion_requested`` and ``project_approved`` through
the runtime outbox, and consumes ``budget.opinion_issued`` from the very queue the real
review service uses (``evt-budget-opinion_issued--review.handle_budget_opinion_issued``).
"""
import datetime as dt
import json
import uuid

import pytest
from nameko.containers import ServiceContainer
from sqlalchemy import func, select

from contracts import NotFound, ValidationFailed
from runtime.db import DatabaseCore
from runtime.dependencies import Database
from services.budget.models import metadata as budget_metadata
from tests.support import broker
from tests.support.broker import wait_for
from tests.support.fakes import fake_review
from tests.support.suite import Suite

pytestmark = [pytest.mark.integration, pytest.mark.db]

YEAR = dt.date.today().year  # the dev envelopes are seeded for this year and the next
ISSUED_QUEUE = "evt-budget-opinion_issued--review.handle_budget_opinion_issued"

FakeReview, review_md, received = fake_review("budget")

def make_line(**overrides):
    line = {"item": f"item-{uuid.uuid4().hex[:6]}", "category": "hardware", "quantity": 1,
            "unit_price": 100_000, "basis": "询价"}
    line.update(overrides)
    return line


def make_application(**overrides):
    app = {"name": "智慧锦江测试项目", "kind": "build", "amount": 1_000_000, "year": YEAR, "summary": "建设内容",
           "funding": {"source": "budget", "amount": 1_000_000}}
    app.update(overrides)
    return app


def project_ref(code, application):
    return {"code": code, "jurisdiction": "jinjiang", "unit_id": "unit-1", "unit_name": "区城运中心",
            "name": application["name"], "kind": application["kind"], "amount": application["amount"]}


class Harness:
    def __init__(self, suite, review, budget_url):
        self.suite = suite
        self.review = review
        self.budget_url = budget_url
        self.review_db = next(e for e in review.extensions if isinstance(e, Database)).core
        self.vhost = broker.vhost_of(suite.amqp_uri)

    def emit(self, event_type, payload, code, routing_key=None):
        with self.review_db.transaction() as tx:
            tx.emit(event_type, payload, correlation_id=code, routing_key=routing_key)

    def request_opinion(self, subject, agency, application, sign="auto", code=None):
        code = code or f"JJ-{uuid.uuid4().hex[:8]}"
        request = {
            "request_id": uuid.uuid4().hex, "project": project_ref(code, application), "application": application,
            "stage": "cost_review", "stage_name": "造价审核", "agency": agency, "agency_name": "区财政局",
            "subject": subject, "sign": sign, "due_on": "2026-12-31", "cite": "jinjiang art. 8", "context": {},
        }
        self.emit("opinion_requested", request, code, routing_key="opinion_requested.budget")
        return request

    def issued(self, request_id):
        with self.review_db.read() as conn:
            row = conn.execute(select(received.c.payload).where(received.c.request_id == request_id)).first()
        return json.loads(row.payload) if row else None

    def wait_issued(self, request_id):
        return wait_for(lambda: self.issued(request_id), timeout=15, message=f"opinion_issued for {request_id}")

    def budget_inbox_count(self, event_type):
        core = DatabaseCore(self.budget_url, budget_metadata, "budget")
        try:
            with core.read() as conn:
                return conn.execute(select(func.count()).select_from(core.inbox)
                                    .where(core.inbox.c.event_type == event_type)).scalar()
        finally:
            core.dispose()

    def rpc(self, method, **kwargs):
        return self.suite.rpc("budget", method, **kwargs)


@pytest.fixture
def budget(vhost_uri, make_db_url, sqlite_url):
    urls = {"budget": make_db_url("budget"), "review": sqlite_url("review")}
    with Suite(vhost_uri, "jinjiang", urls) as suite:
        suite.start("budget")
        review = ServiceContainer(FakeReview)
        review.start()
        try:
            yield Harness(suite, review, urls["budget"])
        finally:
            review.stop()


def test_funding_opinions_reach_the_review_queue_and_an_exhausted_envelope_is_refused(budget):
    assert broker.queue(budget.vhost, ISSUED_QUEUE) is not None
    envelope = budget.rpc("set_envelope", year=YEAR, source="bond", total=500_000)
    assert envelope == {"year": YEAR, "source": "bond", "source_name": "专项债券", "total": 500_000,
                        "committed": 0, "remaining": 500_000}
    funded = budget.request_opinion("funding", "finance", make_application())
    short = budget.request_opinion("funding", "finance",
                                   make_application(funding={"source": "bond", "amount": 1_000_000}))

    opinion = budget.wait_issued(funded["request_id"])
    assert opinion["verdict"] == "approve"
    assert opinion["signed_by"] == "auto"
    assert opinion["agency"] == "finance" and opinion["subject"] == "funding"
    seeded = next(e for e in budget.rpc("list_envelopes", year=YEAR) if e["source"] == "budget")
    assert opinion["data"] == {"source": "budget", "remaining_before": seeded["remaining"]}

    refused = budget.wait_issued(short["request_id"])
    assert refused["verdict"] == "reject"
    assert [f["rule"] for f in refused["findings"]] == ["funding_envelope_exhausted"]
    assert refused["findings"][0]["cite"] == "jinjiang art. 9"
    assert refused["data"] == {"source": "bond", "remaining_before": 500_000}


def test_a_cost_opinion_waits_for_an_officer_and_reaches_review_once_signed(budget):
    lines = [make_line(quantity=10, unit_price=1000, basis=""), make_line(quantity=1, unit_price=990_000, category="development")]
    application = make_application(amount=1_000_000, estimate=lines)
    request = budget.request_opinion("cost", "cost_review", application, sign="officer")

    pending = wait_for(lambda: budget.suite.rpc("budget", "list_inbox", agency="cost_review",
                                                code=request["project"]["code"]),
                       message="the opinion in the officers' inbox")
    assert pending[0]["status"] == "pending_signature"
    assert pending[0]["data"]["reduction"] == 2000
    assert budget.issued(request["request_id"]) is None

    signed = budget.suite.rpc("budget", "sign_opinion", request_id=request["request_id"],
                              officer_id="officer-7", officer_agency="cost_review")
    assert signed["status"] == "issued"
    opinion = budget.wait_issued(request["request_id"])
    assert opinion["signed_by"] == "officer-7"
    assert opinion["verdict"] == "approve_with_conditions"
    assert opinion["data"]["reviewed_amount"] == 998_000

    review = budget.rpc("get_cost_review", code=request["project"]["code"])
    assert review["origin"] == "opinion" and review["request_id"] == request["request_id"]
    assert (review["requested_amount"], review["reviewed_amount"], review["reduction"]) == (1_000_000, 998_000, 2000)
    assert review["lines"][0]["reviewed_unit_price"] == 800
    assert review["lines"][0]["reasons"][0]["rule"] == "unbased_cut"
    assert review["lines"][1]["reasons"] == []


def test_an_approved_project_commits_its_amount_to_the_envelope_once(budget):
    application = make_application(funding={"source": "special_fund", "amount": 1_000_000})
    request = budget.request_opinion("funding", "finance", application)
    budget.wait_issued(request["request_id"])
    code = request["project"]["code"]
    before = next(e for e in budget.rpc("list_envelopes", year=YEAR) if e["source"] == "special_fund")
    approved = {
        "project": request["project"], "approved_amount": 900_000, "document_no": "锦发改审〔2026〕1号",
        "decision_body": "按政府采购程序实施", "pool": "library", "approved_on": f"{YEAR}-11-24",
        "conditions": [], "cite": "jinjiang art. 10",
    }
    budget.emit("project_approved", approved, code)
    budget.emit("project_approved", approved, code)  # a second approval event for the same project
    wait_for(lambda: budget.budget_inbox_count("project_approved") == 2, message="both approvals handled")

    funding = budget.rpc("get_funding", code=code)
    assert funding["amount"] == 900_000
    assert (funding["year"], funding["source"]) == (YEAR, "special_fund")
    assert funding["within_envelope"] is True
    assert funding["channel"] == "library" and funding["cite"] == "jinjiang art. 9"
    after = next(e for e in budget.rpc("list_envelopes", year=YEAR) if e["source"] == "special_fund")
    assert after["committed"] - before["committed"] == 900_000
    assert [a["code"] for a in budget.rpc("list_allocations", year=YEAR)] == [code]
    assert budget.rpc("list_allocations", year=YEAR + 5) == []


def test_bad_rpc_input_is_refused_naming_the_field(budget):
    with pytest.raises(ValidationFailed) as exc:
        budget.rpc("set_envelope", year=YEAR, source="gold", total=1)
    assert [e["field"] for e in exc.value.errors] == ["source"]
    with pytest.raises(ValidationFailed) as exc:
        budget.rpc("review_cost", code="JJ-1", lines=[])
    assert [(e["field"], e["rule"]) for e in exc.value.errors] == [("lines", "min_length")]
    with pytest.raises(ValidationFailed) as exc:
        budget.rpc("review_cost", code="JJ-1", lines=[make_line(unit_price="12")])
    assert [e["field"] for e in exc.value.errors] == ["lines.0.unit_price"]
    with pytest.raises(NotFound):
        budget.rpc("get_funding", code="JJ-none")

    review = budget.rpc("review_cost", code="JJ-1", lines=[make_line(unit_price=600_000, basis="")])
    assert review["origin"] == "rpc" and review["request_id"] is None
    assert review["lines"][0]["reviewed_unit_price"] == 400_000  # capped at 500000, then cut by 20%
    assert budget.rpc("get_cost_review", code="JJ-1")["review_id"] == review["review_id"]
