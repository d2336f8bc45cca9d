"""The review service on the real RabbitMQ, over SQLite and PostgreSQL.

A tiny fake ``registry`` submits projects through the runtime (outbox → broker) and
records what review tells it; tiny fake ``budget``, ``security`` and ``filing``
services answer ``opinion_requested`` at once. They carry the real service names and
handler names of contracts.events.SUBSCRIPTIONS, since the runtime enforces them.
"""
import itertools
import json
import uuid

import pytest
from kombu import Connection
from nameko import config
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcClient
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select

from contracts import Conflict, Forbidden, NotFound, ValidationFailed
from contracts.events import queue_name
from runtime.dependencies import Database
from runtime import signing
from runtime.db import runtime_tables
from runtime.messaging import subscribe
from services.review.service import ReviewService
from tests.support.broker import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.db]

TODAY = "2026-03-02"
UNIT = "jj-edu-bureau"

# what the fake agencies say: {(code, subject): verdict} answered once, then "approve"
ONCE = {}
# requests the fake agencies keep unanswered: {(code, subject)}
HOLD = set()
_ids = itertools.count(1)


def _metadata():
    md = MetaData()
    runtime_tables(md)
    Table("received", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("event_type", String(64), nullable=False),
          Column("code", String(64), nullable=False),
          Column("body", Text, nullable=False))
    return md


REGISTRY_MD = _metadata()
AGENCY_MD = {name: _metadata() for name in ("budget", "security", "filing")}


def answer(db, event):
    """Issue the requested opinion at once (the fake agency's whole desk)."""
    request = event["payload"]
    code, subject = request["project"]["code"], request["subject"]
    if (code, subject) in HOLD:
        with db.transaction(event=event):
            return
    verdict = ONCE.pop((code, subject), "approve")
    findings = []
    if verdict == "reject":
        findings = [{"rule": f"{subject}_check", "severity": "blocking", "zh": f"{subject}审核不通过",
                     "en": f"{subject} check failed", "cite": request["cite"]}]
    conditions = ["按三级开展等保测评"] if subject == "grading" else []
    data = {"level": 3} if subject == "grading" else {}
    if subject == "cost":
        data = {"reviewed_amount": request["project"]["amount"] * 9 // 10}
    opinion = {
        "request_id": request["request_id"], "code": code, "stage": request["stage"],
        "agency": request["agency"], "subject": subject, "verdict": verdict, "findings": findings,
        "conditions": conditions, "signed_by": "auto", "signed_at": "2026-03-02T08:00:00Z", "data": data,
    }
    signer = FORGE.pop((code, subject), db.service_name)
    opinion["signature"] = signing.keyring(signer).sign(opinion)
    with db.transaction(event=event) as tx:
        tx.emit("opinion_issued", opinion, correlation_id=code)


FORGE = {}  # (code, subject) -> the service whose key signs instead (a forgery)


def record(db, event):
    with db.transaction(event=event) as tx:
        tx.conn.execute(db.metadata.tables["received"].insert().values(
            event_type=event["event_type"], code=event["correlation_id"],
            body=json.dumps(event["payload"], ensure_ascii=False)))


class FakeRegistry:
    name = "registry"
    db = Database(REGISTRY_MD)

    @subscribe("review", "opinion_requested", routing_key="opinion_requested.registry")
    def handle_opinion_requested(self, event):
        answer(self.db, event)

    @subscribe("review", "project_returned")
    def handle_project_returned(self, event):
        record(self.db, event)

    @subscribe("review", "project_refused")
    def handle_project_refused(self, event):
        record(self.db, event)

    @subscribe("review", "project_approved")
    def handle_project_approved(self, event):
        record(self.db, event)

    @subscribe("review", "stage_advanced")
    def handle_stage_advanced(self, event):
        record(self.db, event)


def fake_agency(service):
    class FakeAgency:
        name = service
        db = Database(AGENCY_MD[service])

        @subscribe("review", "opinion_requested", routing_key=f"opinion_requested.{service}")
        def handle_opinion_requested(self, event):
            answer(self.db, event)

    FakeAgency.__name__ = f"Fake{service.title()}"
    return FakeAgency


class Harness:
    def __init__(self, amqp_uri, registry_db, client):
        self.amqp_uri = amqp_uri
        self.registry_db = registry_db
        self.client = client

    def rpc(self, method, **kwargs):
        return getattr(self.client.review, method)(**kwargs)

    def submit(self, code, amount=500000, revision=0, kind="build"):
        project = {"code": code, "jurisdiction": "jinjiang", "unit_id": UNIT, "unit_name": "区教育局",
                   "name": "智慧教育平台", "kind": kind, "amount": amount}
        application = {"name": "智慧教育平台", "kind": kind, "amount": amount, "year": 2026,
                       "summary": "建设区级智慧教育平台", "funding": {"source": "budget", "amount": amount}}
        with self.registry_db.transaction() as tx:
            tx.emit("project_submitted", {"project": project, "application": application, "revision": revision,
                                          "declared_on": TODAY}, correlation_id=code)

    def received(self, event_type, code):
        table = REGISTRY_MD.tables["received"]
        with self.registry_db.read() as conn:
            rows = conn.execute(select(table.c.body).where(table.c.event_type == event_type)
                                .where(table.c.code == code).order_by(table.c.id)).scalars()
            return [json.loads(body) for body in rows]

    def case_at(self, code, stage=None, timeout=15):
        """Wait until the case exists (and, with ``stage``, is at that stage)."""
        def check():
            try:
                case = self.rpc("get_case", code=code)
            except NotFound:
                return None
            return case if stage is None or case["current_stage"] == stage else None
        return wait_for(check, timeout=timeout, message=f"case {code} at {stage or 'any stage'}")

    def review_core(self):
        from runtime.db import DatabaseCore
        from services.review.models import metadata
        return DatabaseCore(config["DATABASES"]["review"], metadata, "review")

    def queue_depth(self, source, event_type, subscriber, method):
        with Connection(self.amqp_uri) as conn:
            _, count, _ = conn.default_channel.queue_declare(
                queue_name(source, event_type, subscriber, method), passive=True)
            return count


@pytest.fixture
def harness(vhost_uri, make_db_url, sqlite_url):
    urls = {"review": make_db_url("review"), "registry": sqlite_url("registry"),
            "budget": sqlite_url("budget"), "security": sqlite_url("security"), "filing": sqlite_url("filing")}
    settings = {"AMQP_URI": vhost_uri, "DATABASES": urls, "JURISDICTION": "jinjiang", "TODAY": TODAY,
                "PANEL_SEED": 5, "OUTBOX_POLL_SECONDS": 0.2, "DELIVERY_LIMIT": 3}
    containers = []
    with config.patch(settings):
        try:
            for cls in (FakeRegistry, fake_agency("budget"), fake_agency("security"), fake_agency("filing"),
                        ReviewService):
                container = ServiceContainer(cls)
                container.start()
                containers.append(container)
            registry_db = next(e for e in containers[0].extensions if isinstance(e, Database)).core
            with ClusterRpcClient(uri=vhost_uri, timeout=15) as client:
                yield Harness(vhost_uri, registry_db, client)
        finally:
            for container in reversed(containers):
                container.stop()


def new_code():
    return f"JJ-{uuid.uuid4().hex[:8]}-{next(_ids)}"


def vote_everyone(harness, case, vote="approve"):
    stage = next(s for s in case["stages"] if s["key"] == "expert_review")
    for member in stage["panel"]["experts"]:
        case = harness.rpc("record_vote", code=case["code"], expert_id=member["expert_id"], vote=vote,
                           comment="" if vote == "approve" else "方案不完善",
                           officer_id="drc-officer-1", officer_agency="drc")
    return case


def test_a_jinjiang_case_runs_from_submission_to_approval(harness):
    code = new_code()
    harness.submit(code, amount=500000)
    harness.case_at(code)  # the fake registry answers at once: the case may already have moved on
    # documents handed in before the case reaches the documents stage are kept
    for doc_type in ("requirements_plan", "construction_plan"):
        harness.rpc("submit_document", code=code, unit_id=UNIT, doc_type=doc_type, title=f"{doc_type} v1",
                    summary="方案正文摘要")
    case = harness.case_at(code, "expert_review")
    panel = next(s for s in case["stages"] if s["key"] == "expert_review")["panel"]
    assert len(panel["experts"]) == 5 and all(m["unit_id"] != UNIT for m in panel["experts"])
    vote_everyone(harness, case)
    case = harness.case_at(code, "decision")
    assert next(s for s in case["stages"] if s["key"] == "decision")["decision"]["body"] == "按政府采购程序实施"

    case = harness.rpc("sign_decision", code=code, officer_id="drc-officer-1", officer_agency="drc",
                       verdict="approve", comment="同意")
    assert case["state"] == "approved"
    (approved,) = wait_for(lambda: harness.received("project_approved", code), message="project_approved at registry")
    assert approved["approved_amount"] == 450000  # the cost review's reviewed amount
    assert approved["document_no"] == "锦发改审〔2026〕1号"
    assert approved["pool"] == "library" and approved["cite"] == "jinjiang art. 8"
    assert approved["conditions"] == ["按三级开展等保测评"]
    assert approved["approved_on"] == TODAY
    wait_for(lambda: harness.queue_depth("review", "project_approved", "budget", "handle_project_approved") == 1,
             message="project_approved waiting in budget's queue")
    stages = [e["stage"] for e in wait_for(lambda: (lambda r: r if len(r) == 7 else None)(
        harness.received("stage_advanced", code)), message="every stage_advanced at registry")]
    assert stages == ["pre_review", "yearly_plan", "documents", "expert_review", "joint_review", "cost_review",
                      "decision"]
    listed = harness.rpc("list_cases", state="approved")
    assert [c["code"] for c in listed] == [code] and listed[0]["document_no"] == "锦发改审〔2026〕1号"


def test_a_rejecting_opinion_returns_the_project_and_the_revision_resumes_there(harness):
    code = new_code()
    ONCE[(code, "pre_review")] = "reject"
    harness.submit(code, amount=100000)
    (returned,) = wait_for(lambda: harness.received("project_returned", code), message="project_returned")
    assert returned["stage"] == "pre_review" and returned["returns"] == 1
    assert returned["reasons"][0]["rule"] == "pre_review_check" and returned["cite"] == "jinjiang art. 6"
    assert harness.rpc("get_case", code=code)["state"] == "returned"

    harness.submit(code, amount=100000, revision=1)
    case = harness.case_at(code, "documents")  # below 30万: no yearly plan
    assert case["state"] == "in_progress" and case["returns"] == 1 and case["revision"] == 1
    pre_review = case["stages"][0]
    assert pre_review["status"] == "passed" and pre_review["rounds"] == 1
    assert case["stages"][1]["status"] == "skipped"


def test_pending_opinions_are_listed_with_their_due_date(harness):
    code = new_code()
    HOLD.add((code, "pre_review"))
    harness.submit(code)
    pending = wait_for(lambda: harness.rpc("list_pending_opinions", code=code), message="pending opinion")
    (request,) = pending
    assert request["agency"] == "data_bureau" and request["stage"] == "pre_review"
    assert request["due_on"] == "2026-03-11" and request["overdue"] is False  # 7 working days
    assert harness.rpc("list_pending_opinions", agency="finance") == []


def test_the_rpc_refuses_what_the_rules_forbid(harness):
    code = new_code()
    HOLD.add((code, "pre_review"))
    with pytest.raises(NotFound):
        harness.rpc("get_case", code=code)
    harness.submit(code)
    harness.case_at(code, "pre_review")
    with pytest.raises(Forbidden):
        harness.rpc("submit_document", code=code, unit_id="someone-else", doc_type="requirements_plan", title="t")
    with pytest.raises(ValidationFailed) as caught:
        harness.rpc("submit_document", code=code, unit_id=UNIT, doc_type="fsr", title="可研")
    assert caught.value.data["cite"] == "jinjiang art. 6" and caught.value.errors[0]["field"] == "doc_type"
    with pytest.raises(ValidationFailed):
        harness.rpc("submit_document", code=code, unit_id=UNIT, doc_type="no-such-type", title="t")
    with pytest.raises(Forbidden):
        harness.rpc("sign_decision", code=code, officer_id="x", officer_agency="finance", verdict="approve")
    with pytest.raises(Conflict):
        harness.rpc("sign_decision", code=code, officer_id="x", officer_agency="drc", verdict="approve")
    document = harness.rpc("submit_document", code=code, unit_id=UNIT, doc_type="requirements_plan", title="v1")
    assert document["version"] == 1 and document["stage_completed"] is False


def test_the_expert_pool_is_seeded_and_grows(harness):
    experts = harness.rpc("list_experts")
    assert len(experts) == 15 and sum(e["directed"] for e in experts) >= 3
    added = harness.rpc("add_expert", name="新专家", unit_id="new-unit", field="数据安全", directed=True)
    assert added["active"] and added["directed"]
    assert added["expert_id"] in {e["expert_id"] for e in harness.rpc("list_experts")}


def test_three_failed_expert_reviews_bar_the_project_and_a_resubmission_is_refused(harness):
    code = new_code()
    harness.submit(code, amount=100000)
    harness.case_at(code)
    for doc_type in ("requirements_plan", "construction_plan"):
        harness.rpc("submit_document", code=code, unit_id=UNIT, doc_type=doc_type, title=doc_type)
    for revision in (1, 2, 3):
        case = harness.case_at(code, "expert_review")
        case = vote_everyone(harness, case, vote="reject")
        if revision < 3:
            assert case["state"] == "returned"
            harness.submit(code, amount=100000, revision=revision)
            wait_for(lambda: harness.rpc("get_case", code=code)["revision"] == revision, message="revision taken")
    assert case["state"] == "refused" and case["barred_until"] == "2027-03-02"
    (refused,) = wait_for(lambda: harness.received("project_refused", code), message="project_refused")
    assert refused["barred_until"] == "2027-03-02" and refused["cite"] == "jinjiang art. 8"
    assert len(harness.received("project_returned", code)) == 2

    harness.submit(code, amount=100000, revision=3)
    refusals = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(harness.received("project_refused", code)),
                        message="the resubmission refused")
    assert refusals[1]["reasons"][0]["rule"] == "barred" and refusals[1]["cite"] == "jinjiang art. 8"


def test_a_forged_opinion_is_dead_lettered_and_changes_nothing(harness):
    code = new_code()
    # the pre-review answer is signed with the security service's key, not the registry's
    FORGE[(code, "pre_review")] = "security"
    harness.submit(code, amount=100000)
    harness.case_at(code, "pre_review")

    def dead_letters():
        with Connection(harness.amqp_uri) as conn:
            return conn.default_channel.queue_declare("review.dead-letters", passive=True)[1]

    wait_for(lambda: dead_letters() >= 1, message="the forged opinion in review's dead-letter queue")
    case = harness.rpc("get_case", code=code)
    stage = case["stages"][0]
    assert case["current_stage"] == "pre_review" and stage["opinions"][0]["status"] != "issued"


def test_opinions_received_are_kept_in_an_intact_hash_chain(harness):
    code = new_code()
    harness.submit(code, amount=100000)
    harness.case_at(code, "documents")
    from runtime import audit
    from services.review.models import metadata
    review = harness.review_core()
    with review.read() as conn:
        ok, entries, broken = audit.verify(conn, metadata.tables["audit_log"])
    assert ok and entries >= 1 and broken is None
