"""Walk-through over the HTTP API, against a suite started by ``make up``.

For each running jurisdiction: create a unit and the officers, declare a project, and
drive it from declaration to approval — submitting the documents the profile's document
path asks for, signing the opinions that wait for an officer, recording the expert
votes and signing the decision — printing each stage, opinion and article on the way.
Then one refusal at intake (Sichuan art. 8) and one return for revision (Jinjiang).
"""
import json
import os
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = os.path.join(ROOT, "var", "suite.json")
PASSWORD = "demo-password-2026"
TIMEOUT = float(os.environ.get("DEMO_STAGE_TIMEOUT", "60"))

AMOUNTS = {  # chosen to exercise each jurisdiction's thresholds
    "sichuan": 15_000_000,    # ≤ 2000万: FSR and design merged into an implementation plan (sichuan art. 18)
    "bazhong": 2_800_000,     # < 300万: proposal, FSR and design may merge (bazhong art. 12)
    "jinjiang": 5_000_000,    # ≥ 30万: yearly plan first (art. 6); 400万–3000万: executive meeting (art. 10)
    "guangyuan": 1_200_000,   # > 100万: supervision and testing (guangyuan art. 14)
    "dalate": 800_000,        # planned: the proposal is skipped (dalate art. 5)
}


class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.session = requests.Session()

    def req(self, method, path, token=None, expect=(200, 201), **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = self.session.request(method, self.base + path, headers=headers, timeout=30, **kwargs)
        if expect and resp.status_code not in expect:
            raise DemoError(f"{method} {path} → {resp.status_code}: {resp.text[:500]}")
        return resp.json() if resp.content else None

    def login(self, username, password):
        return self.req("POST", "/api/v1/auth/token", json={"username": username, "password": password})["token"]


class DemoError(Exception):
    pass


def application(jurisdiction, amount, **overrides):
    hw, dev = amount // 4, amount - amount // 4
    app = {
        "name": f"{jurisdiction} 一网通办政务服务平台升级",
        "kind": "build",
        "amount": amount,
        "year": 2027,
        "summary": "整合部门政务服务事项，接入一体化政务服务平台和数据共享交换平台，实现一网通办。",
        "basis": "数字政府建设规划",
        "flags": {"planned": jurisdiction == "dalate"},
        "facts": {},
        "funding": {"source": "budget", "amount": amount},
        "security_plan": {"present": True, "level_claimed": 3, "measures": ["边界防护", "入侵检测", "日志审计"],
                          "yearly_test_planned": True},
        "crypto_plan": {"present": True, "algorithms": ["SM2", "SM3", "SM4"], "evaluation_planned": True},
        "xinchuang": {"statement": True, "products": [{"name": "国产数据库", "category": "database", "secure_reliable": True}]},
        "grading": {"business_object": "public", "business_degree": "serious",
                    "service_object": "citizens", "service_degree": "serious"},
        "estimate": [
            {"item": "政务云资源租用", "category": "service", "quantity": 1, "unit_price": hw, "basis": "政务云目录价"},
            {"item": "应用开发", "category": "development", "quantity": 1, "unit_price": dev, "basis": "三家询价"},
        ],
        "catalog": [{"name": "政务服务事项目录", "shared": True}, {"name": "办件信息", "shared": True}],
    }
    app.update(overrides)
    return app


def show_findings(items, indent="      "):
    for f in items or []:
        print(f"{indent}· [{f.get('severity')}] {f.get('zh')} / {f.get('en')} （{f.get('cite')}）")


class Walker:
    def __init__(self, jurisdiction, base, admin_password):
        self.j = jurisdiction
        self.api = Api(base)
        self.admin = self.api.login("admin", admin_password)
        info = self.api.req("GET", "/api/v1/jurisdiction")
        self.info = info
        self.unit_id = f"{jurisdiction.upper()}-U001"
        self.unit = self.user(f"{jurisdiction}-unit", "unit", unit_id=self.unit_id, unit_name=f"{info['name']}卫生健康委员会")
        self.officers = {agency: self.user(f"{jurisdiction}-{agency}", "officer", agency=agency) for agency in info["agencies"]}

    def user(self, username, role, **extra):
        body = {"username": username, "display_name": username, "password": PASSWORD, "role": role, **extra}
        resp = self.api.session.post(self.api.base + "/api/v1/users", json=body,
                                     headers={"Authorization": f"Bearer {self.admin}"}, timeout=30)
        if resp.status_code not in (201, 409):
            raise DemoError(f"create user {username}: {resp.status_code} {resp.text[:300]}")
        return self.api.login(username, PASSWORD)

    def declare(self, app):
        project = self.api.req("POST", "/api/v1/projects", self.unit, json={"application": app})
        print(f"  申报 / declared {project['code']}  {project['name']}  {project['amount']:,} 元  "
              f"→ {project['state_name']} ({project['state']}), 库 {project.get('pool_name') or project.get('pool')}")
        show_findings(project.get("intake_findings"))
        return project

    def drive(self, code, stop_on_return=False):
        """Act as unit, officers and DRC until the case is approved (or returned/refused)."""
        seen_stages, seen_opinions, deadline = [], set(), time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            # the case exists once review has taken the project_submitted event
            case = self.api.req("GET", f"/api/v1/projects/{code}/case", self.unit, expect=(200, 404))
            if case.get("error"):
                time.sleep(0.2)
                continue
            if case["state"] == "returned" and not stop_on_return:
                time.sleep(0.2)  # a revision not taken yet: the case still shows the last round
                continue
            stage = next((s for s in case["stages"] if s["key"] == case.get("current_stage")), None)
            for s in case["stages"]:  # stages passed since the last look, in order
                if s["key"] not in seen_stages and (s["status"] in ("passed", "returned") or s is stage):
                    seen_stages.append(s["key"])
                    deadline = time.monotonic() + TIMEOUT
                    print(f"    ▶ 阶段 / stage {s['key']}  {s['name']}  （{s['cite']}）")
            for s in case["stages"]:
                for op in s.get("opinions") or []:
                    if op.get("status") == "issued" and op["request_id"] not in seen_opinions:
                        seen_opinions.add(op["request_id"])
                        print(f"      意见 / opinion  {op['agency_name']}（{op['subject']}）: {op.get('verdict')}"
                              f"{'  [签发 / signed by officer]' if op.get('sign') == 'officer' else ''}")
                        show_findings(op.get("findings"), indent="        ")
                        for c in op.get("conditions") or []:
                            print(f"        条件 / condition: {c}")
            if case["state"] == "approved":
                a = case["approval"]
                print(f"  ✔ 批复 / approved  {a['document_no']}  {a['approved_amount']:,} 元  决策 / by {a['decision_body']}"
                      f"  （{a.get('cite', '')}）")
                return case
            if case["state"] in ("returned", "refused") and (stop_on_return or case["state"] == "refused"):
                print(f"  ✖ {'退回修改 / returned for revision' if case['state'] == 'returned' else '不予批准 / refused'}"
                      f" at {case.get('current_stage')}")
                return case
            if stage:
                self.act(code, case, stage)
            time.sleep(0.3)
        raise DemoError(f"{self.j} {code}: no progress within {TIMEOUT}s after stage {seen_stages[-1:]}")

    def act(self, code, case, stage):
        if stage["type"] == "opinions":
            for op in stage.get("opinions") or []:
                if op.get("status") != "issued" and op.get("sign") == "officer":
                    officer = self.officers.get(op["agency"])
                    inbox = self.api.req("GET", "/api/v1/inbox", officer)["items"]
                    for item in inbox:
                        if item["request_id"] == op["request_id"]:
                            self.api.req("POST", f"/api/v1/inbox/{item['request_id']}/sign", officer, json={})
        elif stage["type"] == "documents":
            have = {d["doc_type"] for d in stage.get("documents") or []}
            for doc in stage.get("documents_required") or []:
                if doc not in have:
                    self.api.req("POST", f"/api/v1/projects/{code}/documents", self.unit,
                                 json={"doc_type": doc, "title": f"{doc} v1", "summary": "按模板编制 / per template"})
                    print(f"      提交文件 / submitted {doc}")
        elif stage["type"] == "experts":
            panel = stage.get("panel") or {}
            voted = {v["expert_id"] for v in panel.get("votes") or []}
            for expert in panel.get("experts") or []:
                if expert["expert_id"] not in voted:
                    self.api.req("POST", f"/api/v1/projects/{code}/votes", self.officers["drc"],
                                 json={"expert_id": expert["expert_id"], "vote": "approve", "comment": "方案可行"})
            if panel.get("experts") and not voted:
                names = ", ".join(f"{e['name']}{'（定向）' if e.get('directed') else ''}" for e in panel["experts"])
                print(f"      专家组 / panel: {names}")
        elif stage["type"] == "decision":
            self.api.req("POST", f"/api/v1/projects/{code}/decision", self.officers["drc"],
                         json={"verdict": "approve", "comment": "同意批复"})


def main():
    if not os.path.exists(STATE):
        print("套件未运行，请先 make up / the suite is not running: run `make up` first")
        return 1
    state = json.load(open(STATE))
    password = open(os.path.join(ROOT, state["admin_password_file"])).read().strip()
    approved = []
    try:
        for j, entry in state["jurisdictions"].items():
            walker = Walker(j, entry["gateway"], password)
            print(f"\n══ {walker.info['name']} [{j}] — {walker.info['document']}")
            project = walker.declare(application(j, AMOUNTS[j]))
            case = walker.drive(project["code"])
            if case["state"] == "approved":
                history = walker.api.req("GET", f"/api/v1/projects/{project['code']}/history", walker.unit)["items"]
                final = walker.api.req("GET", f"/api/v1/projects/{project['code']}", walker.unit)
                print(f"  库 / pool: {final.get('pool_name') or final['pool']}; 记录 / history: {len(history)} entries")
                approved.append(j)
        if "sichuan" in state["jurisdictions"]:
            walker = Walker("sichuan", state["jurisdictions"]["sichuan"]["gateway"], password)
            print("\n══ 不予受理示例 / a refusal at intake (sichuan)")
            app = application("sichuan", 3_000_000, name="新建部门私有云机房", facts={"new_datacenter": True, "new_servers": True})
            refused = walker.declare(app)
            if refused["state"] != "intake_refused":
                raise DemoError("expected an intake refusal")
        if "jinjiang" in state["jurisdictions"]:
            walker = Walker("jinjiang", state["jurisdictions"]["jinjiang"]["gateway"], password)
            print("\n══ 退回修改示例 / a return for revision (jinjiang): crypto plan without 国密 algorithms")
            app = application("jinjiang", 600_000, name="社区网格巡查系统",
                              crypto_plan={"present": True, "algorithms": ["RSA"], "evaluation_planned": False})
            project = walker.declare(app)
            case = walker.drive(project["code"], stop_on_return=True)
            if case["state"] != "returned":
                raise DemoError("expected a return for revision")
            print("  修改后重新提交 / revised with SM2/SM3/SM4 and resubmitted")
            app["crypto_plan"] = {"present": True, "algorithms": ["SM2", "SM3", "SM4"], "evaluation_planned": True}
            walker.api.req("PUT", f"/api/v1/projects/{project['code']}/application", walker.unit, json={"application": app})
            walker.drive(project["code"])
    except (DemoError, requests.RequestException) as exc:
        print(f"\n演示失败 / demo failed: {exc}")
        return 1
    print(f"\n完成 / done: {len(approved)} projects approved under {len(approved)} rule sets: {', '.join(approved)}")
    return 0 if len(approved) == len(state["jurisdictions"]) else 1


if __name__ == "__main__":
    sys.exit(main())
