"""Cross-agency flows: every service running, driven through the HTTP API as people would."""
import pytest

from scripts.demo import AMOUNTS, Walker, application
from tests.flows.conftest import ADMIN_PASSWORD
from tests.support.broker import wait_for

pytestmark = pytest.mark.flow


@pytest.mark.parametrize("jurisdiction", ["sichuan", "bazhong", "jinjiang", "guangyuan", "dalate"])
def test_a_project_goes_from_declaration_to_approval(start_suite, jurisdiction):
    suite = start_suite(jurisdiction)
    walker = Walker(jurisdiction, suite.base_url, ADMIN_PASSWORD)
    project = walker.declare(application(jurisdiction, AMOUNTS[jurisdiction]))
    assert project["state"] == "in_approval"
    case = walker.drive(project["code"])
    assert case["state"] == "approved"
    assert case["approval"]["document_no"]
    final = walker.api.req("GET", f"/api/v1/projects/{project['code']}", walker.unit)
    assert final["state"] == "approved"
    assert final["pool"] == case["approval"].get("pool", final["pool"])
    history = walker.api.req("GET", f"/api/v1/projects/{project['code']}/history", walker.unit)["items"]
    kinds = {h["kind"] for h in history}
    assert {"declared", "stage", "state"} <= kinds
    # every opinion was signed, verified and chained: the agencies' audit logs are intact and
    # hold exactly the opinions the case received
    issued = sum(1 for s in case["stages"] for op in s.get("opinions") or [] if op["status"] == "issued")
    reports = [suite.rpc(service, "verify_audit") for service in ("registry", "budget", "security", "filing")]
    assert all(r["ok"] for r in reports), reports
    assert sum(r["entries"] for r in reports) == issued
    # every stage of this jurisdiction's pipeline was passed or skipped, each with its article
    for stage in case["stages"]:
        assert stage["status"] in ("passed", "skipped"), stage
        assert stage["cite"].startswith(jurisdiction) or stage["cite"].startswith("our reading")


def test_a_refused_declaration_cites_its_article_and_starts_nothing(start_suite):
    suite = start_suite("sichuan")
    walker = Walker("sichuan", suite.base_url, ADMIN_PASSWORD)
    app = application("sichuan", 3_000_000, facts={"new_datacenter": True})
    project = walker.declare(app)
    assert project["state"] == "intake_refused"
    assert any(f["cite"].startswith("sichuan art. 8") for f in project["intake_findings"])
    resp = walker.api.session.get(f"{suite.base_url}/api/v1/projects/{project['code']}/case",
                                  headers={"Authorization": f"Bearer {walker.unit}"})
    assert resp.status_code == 404


def test_a_rejected_opinion_returns_the_project_and_a_revision_resumes_it(start_suite):
    suite = start_suite("jinjiang")
    walker = Walker("jinjiang", suite.base_url, ADMIN_PASSWORD)
    app = application("jinjiang", 600_000, crypto_plan={"present": True, "algorithms": ["RSA"]})
    project = walker.declare(app)
    case = walker.drive(project["code"], stop_on_return=True)
    assert case["state"] == "returned"
    registry_view = walker.api.req("GET", f"/api/v1/projects/{project['code']}", walker.unit)
    assert registry_view["state"] == "returned"
    app["crypto_plan"] = {"present": True, "algorithms": ["SM2", "SM3", "SM4"], "evaluation_planned": True}
    revised = walker.api.req("PUT", f"/api/v1/projects/{project['code']}/application", walker.unit,
                             json={"application": app})
    assert revised["revision"] == 1
    case = walker.drive(project["code"])
    assert case["state"] == "approved"
    assert case["returns"] == 1


def test_a_unit_sees_only_its_own_projects_and_an_officer_signs_only_for_their_agency(start_suite):
    suite = start_suite("jinjiang")
    walker = Walker("jinjiang", suite.base_url, ADMIN_PASSWORD)
    project = walker.declare(application("jinjiang", AMOUNTS["jinjiang"]))
    other = walker.user("jinjiang-unit-b", "unit", unit_id="JINJIANG-U002", unit_name="乙单位")
    resp = walker.api.session.get(f"{suite.base_url}/api/v1/projects/{project['code']}",
                                  headers={"Authorization": f"Bearer {other}"})
    assert resp.status_code == 403
    # the reads about a project go out beside the project's own read; only its owner gets them
    for path in ("history", "case", "opinions"):
        resp = walker.api.session.get(f"{suite.base_url}/api/v1/projects/{project['code']}/{path}",
                                      headers={"Authorization": f"Bearer {other}"})
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["error"]["code"] == "forbidden", path
    history = walker.api.req("GET", f"/api/v1/projects/{project['code']}/history", walker.unit)["items"]
    assert history and all(entry["at"] for entry in history)
    missing = walker.api.session.get(f"{suite.base_url}/api/v1/projects/2026-000000-99999-9/history",
                                     headers={"Authorization": f"Bearer {walker.unit}"})
    assert missing.status_code == 404
    listed = walker.api.req("GET", "/api/v1/projects", other)
    assert listed["total"] == 0
    # the pre-review waits for the data bureau's officer; the cyberspace officer cannot sign it
    pending = wait_for(lambda: walker.api.req("GET", "/api/v1/inbox", walker.officers["data_bureau"])["items"],
                       message="pre-review in the data bureau's inbox")
    resp = walker.api.session.post(f"{suite.base_url}/api/v1/inbox/{pending[0]['request_id']}/sign",
                                   headers={"Authorization": f"Bearer {walker.officers['cac']}"}, json={})
    assert resp.status_code in (403, 404)


def test_an_agency_killed_mid_pipeline_answers_when_it_comes_back(start_suite):
    suite = start_suite("jinjiang")
    walker = Walker("jinjiang", suite.base_url, ADMIN_PASSWORD)
    project = walker.declare(application("jinjiang", AMOUNTS["jinjiang"]))
    code = project["code"]

    def step(until):
        """Act as everyone on the current stage; true once ``until(case, stage)`` holds."""
        case = walker.api.req("GET", f"/api/v1/projects/{code}/case", walker.unit, expect=(200, 404))
        if case.get("error"):
            return False
        stage = next((s for s in case["stages"] if s["key"] == case["current_stage"]), None)
        if stage is None:
            return False
        if until(case, stage):
            return True
        walker.act(code, case, stage)
        return False

    # the pipeline is under way (past the pre-review) when public security goes down
    wait_for(lambda: step(lambda case, stage: stage["key"] != "pre_review"), timeout=60, interval=0.3,
             message="past the pre-review")
    suite.kill("filing")
    waiting = wait_for(lambda: step(lambda case, stage: stage["key"] == "joint_review" and any(
        op["agency"] == "public_security" and op["status"] != "issued" for op in stage["opinions"])
        and all(op["status"] == "issued" for op in stage["opinions"] if op["agency"] != "public_security")),
        timeout=60, interval=0.3, message="joint review waiting only for public security")
    assert waiting
    # the request waits in filing's queue while filing is down ...
    from tests.support import broker
    queue = "evt-review-opinion_requested--filing.handle_opinion_requested"
    wait_for(lambda: (broker.queue(broker.vhost_of(suite.amqp_uri), queue) or {}).get("messages", 0) >= 1,
             timeout=30, message="the opinion request waiting in filing's queue")
    # ... and is answered when filing comes back; the project goes on to approval
    suite.start("filing")
    case = walker.drive(code)
    assert case["state"] == "approved"


def _wait_stage(walker, code, key):
    def at():
        case = walker.api.req("GET", f"/api/v1/projects/{code}/case", walker.unit, expect=(200, 404))
        if case.get("error"):
            return None
        stage = next((s for s in case["stages"] if s["key"] == case["current_stage"]), None)
        if case["state"] != "in_progress":
            return None  # e.g. still showing the last round until the revision is taken
        if stage and stage["key"] == key and (stage["type"] != "experts" or (stage.get("panel") or {}).get("experts")):
            return case
        if stage:
            walker.act(code, case, stage)
        return None
    return wait_for(at, timeout=60, interval=0.3, message=f"stage {key}")


def test_expert_panels_follow_the_rules_and_three_failures_bar_the_project_for_a_year(start_suite):
    suite = start_suite("jinjiang")
    walker = Walker("jinjiang", suite.base_url, ADMIN_PASSWORD)
    # the applying unit employs experts of the pool: none of them may sit on its panel
    walker.unit = walker.user("jinjiang-bigdata", "unit", unit_id="cd-bigdata-center", unit_name="成都市大数据中心")
    app = application("jinjiang", AMOUNTS["jinjiang"])
    project = walker.declare(app)
    code = project["code"]
    drc = walker.officers["drc"]
    for attempt in range(1, 4):
        case = _wait_stage(walker, code, "expert_review")
        stage = next(s for s in case["stages"] if s["key"] == "expert_review")
        experts = stage["panel"]["experts"]
        assert len(experts) == 5
        assert not {e["expert_id"] for e in experts} & {"EXP-013", "EXP-014"}  # cd-bigdata-center
        if attempt == 1:
            # directed picks: at most 1/3 of a panel of 5, i.e. one
            resp = walker.api.session.post(f"{suite.base_url}/api/v1/projects/{code}/panel", json={
                "directed": ["EXP-011", "EXP-012"]}, headers={"Authorization": f"Bearer {drc}"})
            assert resp.status_code == 422, resp.text
            assert "1/3" in resp.text or "directed" in resp.text
            case = walker.api.req("POST", f"/api/v1/projects/{code}/panel", drc, json={"directed": ["EXP-011"]})
            stage = next(s for s in case["stages"] if s["key"] == "expert_review")
            experts = stage["panel"]["experts"]
            assert [e["expert_id"] for e in experts if e.get("directed")] == ["EXP-011"]
        for expert in experts:
            walker.api.req("POST", f"/api/v1/projects/{code}/votes", drc,
                           json={"expert_id": expert["expert_id"], "vote": "reject", "comment": "方案不可行"})
        def settled():
            c = walker.api.req("GET", f"/api/v1/projects/{code}/case", walker.unit)
            return c if c["state"] in ("returned", "refused") else None
        case = wait_for(settled, timeout=30, message="panel result")
        assert case["expert_failures"] == attempt
        if attempt < 3:
            assert case["state"] == "returned"
            wait_for(lambda: walker.api.req("GET", f"/api/v1/projects/{code}", walker.unit)["state"] == "returned",
                     message="registry shows the return")
            walker.api.req("PUT", f"/api/v1/projects/{code}/application", walker.unit, json={"application": app})
    assert case["state"] == "refused"
    assert case["barred_until"] == "2027-11-24"  # one year (jinjiang art. 8)
    final = wait_for(lambda: (lambda p: p if p["state"] == "refused" else None)(
        walker.api.req("GET", f"/api/v1/projects/{code}", walker.unit)), message="registry shows the refusal")
    assert final["barred_until"] == "2027-11-24"
