"""The registry service on the real RabbitMQ, over SQLite and PostgreSQL.

A fake ``review`` (same service name, its own outbox, the real subscription names)
hears ``project_submitted`` and ``opinion_issued`` and announces returns, approvals,
stages and opinion requests through its outbox, as the real one does. Today is fixed
by config ``TODAY`` = 2026-11-24, so a 2027 project joins Jinjiang's first batch."""
import json
import logging
import re
import uuid

import pytest
from kombu import Connection, Exchange, Producer
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcClient
from sqlalchemy import MetaData, func, select

from contracts import Conflict, Forbidden, NotFound, PolicyRefusal, ValidationFailed
from contracts.rpc_registry import PROJECT_CODE_PATTERN
from runtime.db import runtime_tables
from runtime.dependencies import Database
from runtime.messaging import subscribe
from tests.support.broker import wait_for
from tests.support.suite import Suite

pytestmark = [pytest.mark.integration, pytest.mark.db]

TODAY = "2026-11-24"

review_md = MetaData()
runtime_tables(review_md)

SUBMITTED = {}  # (code, revision) -> project_submitted payload, as the fake review heard it
ISSUED = {}  # request_id -> opinion_issued payload


class FakeReview:
    """Stands in for ``review``: hears the registry's events under the real handler names
    and announces its own through its outbox."""

    name = "review"
    db = Database(review_md)

    @subscribe("registry", "project_submitted")
    def handle_project_submitted(self, event):
        p = event["payload"]
        SUBMITTED[(p["project"]["code"], p["revision"])] = p

    @subscribe("registry", "opinion_issued")
    def handle_registry_opinion_issued(self, event):
        ISSUED[event["payload"]["request_id"]] = event["payload"]


class Duplicates(logging.Handler):
    """Counts the duplicates the subscription ignored (they leave no other trace)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def emit(self, record):
        if record.getMessage() == "duplicate event ignored":
            self.seen.append(getattr(record, "event", None))


def core_of(container):
    return next(e for e in container.extensions if isinstance(e, Database)).core


@pytest.fixture
def suite(vhost_uri, make_db_url):
    SUBMITTED.clear()
    ISSUED.clear()
    urls = {"registry": make_db_url("registry"), "review": make_db_url("review")}
    with Suite(vhost_uri, "jinjiang", urls, extra_config={"TODAY": TODAY}) as s:
        s.start("registry")
        review = ServiceContainer(FakeReview)
        review.start()
        s.containers["fake_review"] = review
        yield s


@pytest.fixture
def rpc(suite):
    with ClusterRpcClient(uri=suite.amqp_uri, timeout=30) as client:
        yield client.registry


def announce(suite, event_type, payload, code, routing_key=None):
    """The fake review emits an event through its outbox (the real path)."""
    with core_of(suite.containers["fake_review"]).transaction() as tx:
        tx.emit(event_type, payload, correlation_id=code, routing_key=routing_key)


def application(**overrides):
    app = {
        "name": "智慧锦江城运平台",
        "kind": "build",
        "amount": 1_200_000,
        "year": 2027,
        "summary": "建设城市运行管理平台",
        "basis": "区委区政府工作安排",
        "funding": {"source": "budget", "amount": 1_200_000},
        "catalog": [{"name": "城市事件库", "shared": True}],
    }
    app.update(overrides)
    return app


def declare(rpc, unit_id="unit-cyy", **overrides):
    return rpc.declare_project(unit_id=unit_id, unit_name="区城运中心", application=application(**overrides))


def ref(project):
    return {k: project[k] for k in ("code", "jurisdiction", "unit_id", "unit_name", "name", "kind", "amount")}


def reason(zh="建设方案未说明数据共享", en="The plan does not say how data is shared."):
    return {"rule": "expert_review", "severity": "blocking", "zh": zh, "en": en, "cite": "jinjiang art. 8"}


def opinion_request(project, subject, sign, cite):
    return {
        "request_id": uuid.uuid4().hex,
        "project": ref(project),
        "application": project["application"],
        "stage": {"pre_review": "pre_review", "plan": "yearly_plan"}[subject],
        "stage_name": {"pre_review": "领导小组办公室预审", "plan": "纳入年度计划"}[subject],
        "agency": "data_bureau",
        "agency_name": "智慧锦江建设领导小组办公室",
        "subject": subject,
        "sign": sign,
        "due_on": "2026-12-03",
        "cite": cite,
        "context": {"declared_on": project["declared_on"], "revision": project["revision"]},
    }


# ---- declaring ---------------------------------------------------------------------------

def test_a_declared_project_gets_its_code_enters_the_reserve_pool_and_review_hears_it(suite, rpc):
    project = declare(rpc)
    assert re.match(PROJECT_CODE_PATTERN, project["code"])
    assert project["code"].startswith("2026-510104-00001-")
    assert (project["state"], project["state_name"]) == ("in_approval", "审批中")
    assert (project["pool"], project["pool_name"]) == ("reserve", "储备库")
    assert (project["batch"], project["revision"], project["declared_on"]) == ("batch_1", 0, TODAY)
    assert project["intake_findings"] == [] and project["approval"] is None
    assert project["application"]["facts"]["materials_complete"] is True  # defaults filled in

    heard = wait_for(lambda: SUBMITTED.get((project["code"], 0)), message="project_submitted at review")
    assert heard["project"] == ref(project)
    assert heard["declared_on"] == TODAY
    assert heard["application"]["name"] == "智慧锦江城运平台"

    second = declare(rpc, name="第二个项目")
    assert second["code"].startswith("2026-510104-00002-")
    history = rpc.get_history(code=project["code"])
    assert [(h["kind"], h["to_value"]) for h in history] == [
        ("declared", project["code"]), ("intake", "accepted"), ("state", "in_approval"), ("pool", "reserve")]
    assert history[3]["cite"] == "jinjiang art. 7"


def test_declarations_arriving_together_get_unique_consecutive_codes(suite, rpc):
    import eventlet
    pool = eventlet.GreenPool(12)

    def one(n):
        with ClusterRpcClient(uri=suite.amqp_uri, timeout=30) as client:
            return declare(client.registry, unit_id=f"unit-{n}", name=f"项目{n}")["code"]

    codes = list(pool.imap(one, range(12)))
    assert len(set(codes)) == 12
    assert sorted(int(code.split("-")[2]) for code in codes) == list(range(1, 13))


def test_intake_refusal_stores_the_project_with_its_findings_and_emits_nothing(suite, rpc):
    refused = declare(rpc, funding=None)
    assert refused["state"] == "intake_refused" and refused["state_name"] == "不予受理"
    assert refused["pool"] is None
    (finding,) = refused["intake_findings"]
    assert finding == {"rule": "no_funding_guarantee", "severity": "blocking",
                       "zh": "需求方案应包括经费保障（含多渠道保障或分级保障）",
                       "en": "The requirements plan must state how the project is funded.", "cite": "jinjiang art. 6"}
    assert rpc.get_project(code=refused["code"])["state"] == "intake_refused"

    accepted = declare(rpc)  # emitted after the refusal: once it is heard, the refusal had its chance
    wait_for(lambda: SUBMITTED.get((accepted["code"], 0)), message="the accepted project at review")
    assert not any(code == refused["code"] for code, _ in SUBMITTED)
    outbox = core_of(suite.containers["registry"]).outbox
    with core_of(suite.containers["registry"]).read() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)
                            .where(outbox.c.correlation_id == refused["code"])).scalar() == 0


def test_a_late_declaration_is_accepted_with_a_warning_and_no_batch(suite, rpc):
    late = declare(rpc, year=2026)
    assert late["state"] == "in_approval" and late["batch"] is None
    assert [(f["rule"], f["severity"], f["cite"]) for f in late["intake_findings"]] == [
        ("late_declaration", "warning", "jinjiang art. 7")]


# ---- what review announces ------------------------------------------------------------

def test_a_returned_project_revised_by_its_unit_is_submitted_again_as_revision_1(suite, rpc):
    project = declare(rpc)
    announce(suite, "project_returned", {"project": ref(project), "stage": "expert_review",
                                         "reasons": [reason()], "returns": 1, "cite": "jinjiang art. 8"},
             project["code"])
    returned = wait_for(lambda: (lambda p: p if p["state"] == "returned" else None)(rpc.get_project(code=project["code"])),
                        message="project returned")
    assert returned["returns"] == 1 and returned["reasons"][0]["zh"] == "建设方案未说明数据共享"
    last = rpc.get_history(code=project["code"])[-1]
    assert (last["kind"], last["from_value"], last["to_value"], last["cite"]) == (
        "state", "in_approval", "returned", "jinjiang art. 8")
    assert "建设方案未说明数据共享" in last["note_zh"] and "data is shared" in last["note_en"]

    with pytest.raises(Forbidden):
        rpc.revise_project(code=project["code"], unit_id="someone-else", application=application())
    with pytest.raises(PolicyRefusal) as refused:  # intake runs again; the project stays returned
        rpc.revise_project(code=project["code"], unit_id="unit-cyy", application=application(funding=None))
    assert refused.value.data["findings"][0]["rule"] == "no_funding_guarantee"
    assert rpc.get_project(code=project["code"])["state"] == "returned"

    revised = rpc.revise_project(code=project["code"], unit_id="unit-cyy",
                                 application=application(amount=1_100_000, summary="补充数据共享方案",
                                                         funding={"source": "budget", "amount": 1_100_000}))
    assert (revised["state"], revised["revision"], revised["amount"]) == ("in_approval", 1, 1_100_000)
    heard = wait_for(lambda: SUBMITTED.get((project["code"], 1)), message="revision 1 at review")
    assert heard["project"]["amount"] == 1_100_000 and heard["declared_on"] == TODAY

    with pytest.raises(Conflict) as conflict:
        rpc.revise_project(code=project["code"], unit_id="unit-cyy", application=application())
    assert "审批中" in conflict.value.message_zh and "in_approval" in conflict.value.message_en
    kinds = [h["kind"] for h in rpc.get_history(code=project["code"])]
    assert kinds[-3:] == ["revision", "intake", "state"]


def test_an_approval_moves_the_pool_stores_the_approval_and_a_duplicate_changes_nothing(suite, rpc):
    project = declare(rpc)
    announce(suite, "stage_advanced", {"project": ref(project), "stage": "expert_review",
                                       "stage_name": "专家评审", "cite": "jinjiang art. 8"}, project["code"])
    wait_for(lambda: rpc.get_project(code=project["code"])["stage"] == "expert_review", message="stage recorded")
    announce(suite, "project_approved", {
        "project": ref(project), "approved_amount": 1_150_000, "document_no": "锦发改审〔2027〕12号",
        "decision_body": "按政府采购程序实施", "pool": "library", "approved_on": "2027-03-01",
        "conditions": ["按批复内容实施"], "cite": "jinjiang art. 8",
    }, project["code"])
    approved = wait_for(lambda: (lambda p: p if p["state"] == "approved" else None)(rpc.get_project(code=project["code"])),
                        message="project approved")
    assert (approved["pool"], approved["pool_name"]) == ("library", "项目库")
    assert approved["approval"] == {"document_no": "锦发改审〔2027〕12号", "amount": 1_150_000,
                                    "decision_body": "按政府采购程序实施", "approved_on": "2027-03-01",
                                    "conditions": ["按批复内容实施"]}
    history = rpc.get_history(code=project["code"])
    assert [(h["kind"], h["from_value"], h["to_value"]) for h in history[-3:]] == [
        ("stage", None, "expert_review"), ("state", "in_approval", "approved"), ("pool", "reserve", "library")]
    assert history[-1]["cite"] == "jinjiang art. 8"
    (system,) = rpc.list_systems(unit_id="unit-cyy")
    assert (system["name"], system["project_code"], system["status"]) == ("智慧锦江城运平台", project["code"], "planned")

    # the broker delivers the very same envelope again
    duplicates = Duplicates()
    messaging_log = logging.getLogger("runtime.messaging")
    level = messaging_log.level
    messaging_log.addHandler(duplicates)
    messaging_log.setLevel(logging.INFO)
    try:
        review_core = core_of(suite.containers["fake_review"])
        with review_core.read() as conn:
            body = conn.execute(select(review_core.outbox.c.body)
                                .where(review_core.outbox.c.event_type == "project_approved")).scalar_one()
        with Connection(suite.amqp_uri) as conn:
            Producer(conn).publish(json.loads(body), exchange=Exchange("review.events", type="topic", durable=True),
                                   routing_key="project_approved", serializer="json")
        wait_for(lambda: "project_approved" in duplicates.seen, message="the duplicate ignored")
    finally:
        messaging_log.removeHandler(duplicates)
        messaging_log.setLevel(level)
    assert rpc.get_history(code=project["code"]) == history
    assert len(rpc.list_systems(unit_id="unit-cyy")) == 1


def test_a_refusal_records_the_bar_date(suite, rpc):
    project = declare(rpc)
    announce(suite, "project_refused", {"project": ref(project), "stage": "expert_review", "reasons": [reason()],
                                        "barred_until": "2027-11-24", "cite": "jinjiang art. 8"}, project["code"])
    refused = wait_for(lambda: (lambda p: p if p["state"] == "refused" else None)(rpc.get_project(code=project["code"])),
                       message="project refused")
    assert refused["barred_until"] == "2027-11-24" and refused["state_name"] == "不予批准"
    assert "2027-11-24" in rpc.get_history(code=project["code"])[-1]["note_zh"]


# ---- the opinion desk ----------------------------------------------------------------

def test_an_officer_of_the_data_bureau_signs_a_pre_review_and_an_officer_of_another_agency_may_not(suite, rpc):
    project = declare(rpc)
    request = opinion_request(project, "pre_review", "officer", "jinjiang art. 6")
    announce(suite, "opinion_requested", request, project["code"], routing_key="opinion_requested.registry")
    (pending,) = wait_for(lambda: rpc.list_inbox(agency="data_bureau"), message="pre-review in the inbox")
    assert (pending["request_id"], pending["status"], pending["verdict"]) == (request["request_id"], "pending_signature", "approve")
    assert request["request_id"] not in ISSUED

    with pytest.raises(Forbidden):
        rpc.sign_opinion(request_id=request["request_id"], officer_id="officer-cac", officer_agency="cac")
    signed = rpc.sign_opinion(request_id=request["request_id"], officer_id="officer-db-1", officer_agency="data_bureau")
    assert (signed["status"], signed["signed_by"], signed["verdict"]) == ("issued", "officer-db-1", "approve")
    heard = wait_for(lambda: ISSUED.get(request["request_id"]), message="opinion_issued at review")
    assert (heard["subject"], heard["verdict"], heard["signed_by"]) == ("pre_review", "approve", "officer-db-1")
    with pytest.raises(Conflict):
        rpc.sign_opinion(request_id=request["request_id"], officer_id="officer-db-1", officer_agency="data_bureau")
    last = rpc.get_history(code=project["code"])[-1]
    assert (last["kind"], last["from_value"], last["to_value"], last["cite"]) == (
        "opinion", "pre_review", "approve", "jinjiang art. 6")


def test_an_automatic_plan_opinion_puts_the_project_in_the_yearly_plan(suite, rpc):
    project = declare(rpc)
    request = opinion_request(project, "plan", "auto", "jinjiang art. 7")
    announce(suite, "opinion_requested", request, project["code"], routing_key="opinion_requested.registry")
    heard = wait_for(lambda: ISSUED.get(request["request_id"]), message="plan opinion at review")
    assert heard["verdict"] == "approve" and heard["signed_by"] == "auto"
    assert heard["data"]["batch"] == "batch_1"
    assert rpc.get_project(code=project["code"])["pool"] == "yearly_plan"
    pool_moves = [h for h in rpc.get_history(code=project["code"]) if h["kind"] == "pool"]
    assert [(h["from_value"], h["to_value"], h["cite"]) for h in pool_moves] == [
        (None, "reserve", "jinjiang art. 7"), ("reserve", "yearly_plan", "jinjiang art. 7")]


# ---- reading and input errors -----------------------------------------------------------

def test_bad_input_is_refused_with_the_field_names(suite, rpc):
    with pytest.raises(ValidationFailed) as bad:
        rpc.declare_project(unit_id="unit-cyy", unit_name="区城运中心",
                            application={"kind": "palace", "amount": -1, "year": 2027, "summary": "s"})
    fields = {e["field"]: e for e in bad.value.errors}
    assert {"application.name", "application.kind", "application.amount"} <= set(fields)
    assert fields["application.name"]["rule"] == "required" and fields["application.name"]["zh"] == "必填字段缺失"
    with pytest.raises(ValidationFailed) as missing:
        rpc.declare_project(application=application())
    assert {e["field"] for e in missing.value.errors} == {"unit_id", "unit_name"}
    with pytest.raises(ValidationFailed) as state:
        rpc.list_projects(state="bogus")
    assert [e["field"] for e in state.value.errors] == ["state"]
    with pytest.raises(PolicyRefusal) as elsewhere:
        rpc.declare_project(jurisdiction="sichuan", unit_id="u", unit_name="U", application=application())
    assert elsewhere.value.data["field"] == "jurisdiction" and "sichuan" in elsewhere.value.message_zh
    with pytest.raises(NotFound) as nowhere:
        rpc.get_project(code="2026-510104-99999-0")
    assert "不存在" in nowhere.value.message_zh and "not found" in nowhere.value.message_en
    with pytest.raises(NotFound):
        rpc.get_history(code="2026-510104-99999-0")


def test_list_projects_filters_by_unit_state_and_pool_newest_first(suite, rpc):
    a = declare(rpc, unit_id="unit-a")
    b = declare(rpc, unit_id="unit-b")
    c = declare(rpc, unit_id="unit-a", funding=None)  # refused at intake
    page = rpc.list_projects()
    assert page["total"] == 3 and [p["code"] for p in page["items"]] == [c["code"], b["code"], a["code"]]
    assert "application" not in page["items"][0]
    assert [p["code"] for p in rpc.list_projects(unit_id="unit-a")["items"]] == [c["code"], a["code"]]
    assert [p["code"] for p in rpc.list_projects(unit_id="unit-a", state="in_approval")["items"]] == [a["code"]]
    assert rpc.list_projects(pool="reserve")["total"] == 2
    second = rpc.list_projects(limit=1, offset=1)
    assert (second["total"], [p["code"] for p in second["items"]]) == (3, [b["code"]])


def test_a_unit_registers_its_systems_in_the_catalog(suite, rpc):
    project = declare(rpc)
    system = rpc.register_system(unit_id="unit-cyy", name="网格化管理系统")
    assert (system["status"], system["status_name"], system["project_code"]) == ("operating", "运行中", None)
    linked = rpc.register_system(unit_id="unit-cyy", name="城运大屏", project_code=project["code"], status="planned")
    assert linked["project_code"] == project["code"]
    with pytest.raises(Conflict):
        rpc.register_system(unit_id="unit-cyy", name="网格化管理系统")
    with pytest.raises(Forbidden):
        rpc.register_system(unit_id="unit-other", name="x", project_code=project["code"])
    with pytest.raises(NotFound):
        rpc.register_system(unit_id="unit-cyy", name="y", project_code="2026-510104-99999-0")
    assert [s["name"] for s in rpc.list_systems(unit_id="unit-cyy")] == ["网格化管理系统", "城运大屏"]
    assert rpc.list_systems(unit_id="unit-other") == []


def test_another_jurisdiction_runs_the_same_code_from_its_own_profile(vhost_uri, make_db_url):
    # Guangyuan: admin code 510800, declared projects enter the three-year rolling pool, no windows
    with Suite(vhost_uri, "guangyuan", {"registry": make_db_url("registry")}, extra_config={"TODAY": TODAY}) as s:
        s.start("registry")
        with ClusterRpcClient(uri=vhost_uri, timeout=30) as client:
            project = declare(client.registry, year=2026)
            assert project["code"].startswith("2026-510800-00001-")
            assert (project["jurisdiction"], project["pool"], project["pool_name"]) == ("guangyuan", "rolling", "三年滚动库")
            assert project["batch"] is None
            assert [(f["rule"], f["severity"], f["cite"]) for f in project["intake_findings"]] == [
                ("not_in_rolling_pool", "warning", "guangyuan art. 10")]
            with pytest.raises(PolicyRefusal):
                client.registry.declare_project(jurisdiction="jinjiang", unit_id="u", unit_name="U",
                                                application=application())
            refused = declare(client.registry, facts={"goals_clear": False})
            assert refused["state"] == "intake_refused"
            assert refused["intake_findings"][0]["cite"] == "guangyuan art. 10"
