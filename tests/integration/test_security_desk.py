"""The security service on the real RabbitMQ, over SQLite and PostgreSQL.

A fake ``review`` (same service name, same outbox, same subscription as the real one)
asks for opinions with ``opinion_requested.security`` and hears ``opinion_issued``.
An automatic opinion goes straight out; an officer-signed one waits in the inbox until
an officer of that agency signs it."""
import json
import time
import uuid

import pytest
from nameko.containers import ServiceContainer
from sqlalchemy import MetaData

from contracts import Conflict, Forbidden, ValidationFailed
from contracts.events import queue_name
from runtime.db import runtime_tables
from runtime.dependencies import Database
from runtime.messaging import subscribe
from tests.support import broker
from tests.support.broker import take_one, wait_for
from tests.support.suite import Suite

pytestmark = [pytest.mark.integration, pytest.mark.db]

ISSUED_QUEUE = queue_name("security", "opinion_issued", "review", "handle_security_opinion_issued")

review_md = MetaData()
runtime_tables(review_md)

HEARD = {}  # request_id -> opinion_issued payload, as the fake review heard it


class QuietReview:
    """Stands in for ``review``: asks for opinions, does not consume the answers."""

    name = "review"
    db = Database(review_md)


class ListeningReview(QuietReview):
    """Stands in for ``review``: asks for opinions and hears them, under the real handler name."""

    @subscribe("security", "opinion_issued")
    def handle_security_opinion_issued(self, event):
        HEARD[event["payload"]["request_id"]] = event["payload"]


def application(**sections):
    app = {
        "name": "智慧锦江城运平台",
        "kind": "build",
        "amount": 1_200_000,
        "year": 2026,
        "summary": "建设城市运行管理平台",
        "facts": {"on_gov_cloud": True, "isolated_system": False},
        "security_plan": {"present": True, "level_claimed": 3, "measures": ["边界防护", "安全审计"]},
        "crypto_plan": {"present": True, "algorithms": ["SM2", "SM3", "SM4"], "evaluation_planned": True},
        "xinchuang": {"statement": True, "products": []},
    }
    app.update(sections)
    return app


def opinion_request(agency, subject, sign, app=None):
    code = f"JJ-2026-{uuid.uuid4().hex[:6]}"
    return {
        "request_id": uuid.uuid4().hex,
        "project": {"code": code, "jurisdiction": "jinjiang", "unit_id": "unit-cyy", "unit_name": "区城运中心",
                    "name": "智慧锦江城运平台", "kind": "build", "amount": 1_200_000},
        "application": app or application(),
        "stage": "joint_review",
        "stage_name": "部门联审",
        "agency": agency,
        "agency_name": {"cac": "区委网信办", "secrecy": "区委保密机要局"}[agency],
        "subject": subject,
        "sign": sign,
        "due_on": "2026-12-03",
        "cite": "jinjiang art. 8",
        "context": {},
    }


class Desk:
    """The running suite (security + a fake review) and what a test does with it."""

    def __init__(self, suite, review):
        self.suite = suite
        self.review = review

    def ask(self, agency="cac", subject="security", sign="officer", app=None):
        """The fake review asks for an opinion through its outbox (opinion_requested.security)."""
        request = opinion_request(agency, subject, sign, app)
        db = next(e for e in self.review.extensions if isinstance(e, Database))
        with db.core.transaction() as tx:
            tx.emit("opinion_requested", request, correlation_id=request["project"]["code"],
                    routing_key="opinion_requested.security")
        return request

    def rpc(self, method, **kwargs):
        return self.suite.rpc("security", method, **kwargs)

    def opinion(self, request_id):
        return self.rpc("get_opinion", request_id=request_id)

    def wait_pending(self, request):
        def pending():
            rows = self.rpc("list_inbox", agency=request["agency"], code=request["project"]["code"])
            return rows[0] if rows else None
        return wait_for(pending, timeout=10, interval=0.1, message="the request waiting in the inbox")

    def wait_heard(self, request_id):
        return wait_for(lambda: HEARD.get(request_id), timeout=10, message="opinion_issued heard by review")


def start_desk(suite, review_cls):
    suite.start("security")
    review = ServiceContainer(review_cls)
    review.start()
    suite.containers["review"] = review
    return Desk(suite, review)


@pytest.fixture
def urls(make_db_url, sqlite_url):
    return {"security": make_db_url("security"), "review": sqlite_url("review")}


@pytest.fixture
def desk(vhost_uri, urls):
    with Suite(vhost_uri, "jinjiang", urls) as suite:
        yield start_desk(suite, ListeningReview)


# ---- automatic opinions --------------------------------------------------------------

def test_an_automatic_crypto_opinion_lands_in_reviews_queue_with_its_cited_findings(vhost_uri, urls):
    with Suite(vhost_uri, "jinjiang", urls) as suite:
        desk = start_desk(suite, QuietReview)
        app = application(crypto_plan={"present": True, "algorithms": ["RSA", "AES"], "evaluation_planned": True})
        request = desk.ask(agency="secrecy", subject="crypto", sign="auto", app=app)
        message = wait_for(lambda: take_one(vhost_uri, ISSUED_QUEUE), timeout=10, interval=0.1,
                           message=f"opinion_issued waiting in {ISSUED_QUEUE}")
        assert take_one(vhost_uri, ISSUED_QUEUE) is None  # exactly one
        assert broker.queue(broker.vhost_of(vhost_uri), ISSUED_QUEUE)["type"] == "quorum"
        envelope = json.loads(message.body)
        assert envelope["event_type"] == "opinion_issued" and envelope["source"] == "security"
        assert envelope["correlation_id"] == request["project"]["code"]
        opinion = envelope["payload"]
        assert opinion["request_id"] == request["request_id"]
        assert (opinion["agency"], opinion["subject"], opinion["signed_by"]) == ("secrecy", "crypto", "auto")
        assert opinion["verdict"] == "reject"
        [blocking] = [f for f in opinion["findings"] if f["severity"] == "blocking"]
        assert blocking["rule"] == "crypto_no_domestic_algorithm" and blocking["cite"] == "jinjiang art. 5"

        compliance = desk.rpc("get_compliance", code=request["project"]["code"])
        assert compliance["status"] == "non_compliant" and compliance["unit_id"] == "unit-cyy"
        [entry] = compliance["entries"]
        assert (entry["agency"], entry["subject"], entry["verdict"], entry["signed_by"]) == \
            ("secrecy", "crypto", "reject", "auto")


# ---- officer-signed opinions -----------------------------------------------------------

def test_an_officer_signed_opinion_waits_in_the_inbox_until_an_officer_of_that_agency_signs(desk):
    request = desk.ask(agency="cac", subject="security", sign="officer",
                       app=application(facts={"isolated_system": True, "on_gov_cloud": True}))
    pending = desk.wait_pending(request)
    assert pending["status"] == "pending_signature" and pending["verdict"] == "approve_with_conditions"
    assert [f["rule"] for f in pending["findings"]] == ["isolated_system"]
    assert pending["findings"][0]["cite"] == "jinjiang art. 3"
    time.sleep(0.5)
    assert request["request_id"] not in HEARD  # nothing goes out before the signature
    assert desk.rpc("get_compliance", code=request["project"]["code"])["status"] == "unknown"

    signed = desk.rpc("sign_opinion", request_id=request["request_id"], officer_id="officer-wxb-1",
                      officer_agency="cac")
    assert signed["status"] == "issued" and signed["signed_by"] == "officer-wxb-1"
    heard = desk.wait_heard(request["request_id"])
    assert heard["verdict"] == "approve_with_conditions" and heard["signed_by"] == "officer-wxb-1"
    assert heard["conditions"] == pending["conditions"]
    assert desk.rpc("list_inbox", agency="cac", code=request["project"]["code"]) == []
    compliance = desk.rpc("get_compliance", code=request["project"]["code"])
    assert compliance["status"] == "conditional"
    assert compliance["entries"][0]["signed_by"] == "officer-wxb-1"


def test_an_officer_of_another_agency_may_not_sign(desk):
    request = desk.ask(agency="cac", subject="security", sign="officer")
    desk.wait_pending(request)
    with pytest.raises(Forbidden) as exc:
        desk.rpc("sign_opinion", request_id=request["request_id"], officer_id="officer-bmj-1",
                 officer_agency="secrecy")
    assert exc.value.data["field"] == "officer_agency"
    assert desk.opinion(request["request_id"])["status"] == "pending_signature"


def test_changing_the_drafted_verdict_without_a_reason_is_refused(desk):
    request = desk.ask(agency="cac", subject="security", sign="officer")
    pending = desk.wait_pending(request)
    assert pending["verdict"] == "approve"
    with pytest.raises(ValidationFailed) as exc:
        desk.rpc("sign_opinion", request_id=request["request_id"], officer_id="officer-wxb-1",
                 officer_agency="cac", verdict="reject")
    assert [(e["field"], e["rule"]) for e in exc.value.errors] == [("comment", "reason_required")]
    assert desk.opinion(request["request_id"])["status"] == "pending_signature"

    signed = desk.rpc("sign_opinion", request_id=request["request_id"], officer_id="officer-wxb-1",
                      officer_agency="cac", verdict="reject", comment="现场核查发现未落实边界防护")
    assert signed["verdict"] == "reject" and signed["comment"] == "现场核查发现未落实边界防护"
    assert desk.wait_heard(request["request_id"])["verdict"] == "reject"
    assert desk.rpc("get_compliance", code=request["project"]["code"])["status"] == "non_compliant"


def test_signing_an_opinion_twice_is_a_conflict(desk):
    request = desk.ask(agency="secrecy", subject="crypto", sign="officer")
    desk.wait_pending(request)
    desk.rpc("sign_opinion", request_id=request["request_id"], officer_id="officer-bmj-1", officer_agency="secrecy")
    with pytest.raises(Conflict):
        desk.rpc("sign_opinion", request_id=request["request_id"], officer_id="officer-bmj-2",
                 officer_agency="secrecy")
    desk.wait_heard(request["request_id"])
    assert len(desk.rpc("get_compliance", code=request["project"]["code"])["entries"]) == 1


# ---- RPC: dry run and bad input ---------------------------------------------------------

def test_a_dry_run_returns_the_draft_and_stores_nothing(desk):
    app = application(facts={"on_gov_cloud": False, "isolated_system": False})
    draft = desk.rpc("check_application", subject="security", application=app)
    assert draft["jurisdiction"] == "jinjiang" and draft["verdict"] == "approve_with_conditions"
    [warning] = draft["findings"]
    assert warning["rule"] == "not_on_gov_cloud"
    assert warning["cite"] == "jinjiang art. 8"  # no article for the cloud check: the joint review's
    crypto = desk.rpc("check_application", subject="crypto", application=application(xinchuang={"statement": False}))
    assert crypto["verdict"] == "reject"
    assert crypto["findings"][0]["cite"] == "jinjiang art. 19"
    assert desk.rpc("list_inbox", status="all") == []


def test_bad_input_is_refused_naming_the_field(desk):
    def refused(method, **kwargs):
        with pytest.raises(ValidationFailed) as exc:
            desk.rpc(method, **kwargs)
        return {e["field"] for e in exc.value.errors}

    assert "subject" in refused("check_application", subject="grading", application=application())
    assert "application.security_plan.level_claimed" in refused(
        "check_application", subject="security",
        application=application(security_plan={"present": True, "level_claimed": 9}))
    assert "code" in refused("get_compliance", code="")
    assert "agency" in refused("list_inbox", agency="nobody")
    assert "officer_id" in refused("sign_opinion", request_id="r-1", officer_agency="cac")
    assert "officer_agency" in refused("sign_opinion", request_id="r-1", officer_id="o-1", officer_agency="nobody")
