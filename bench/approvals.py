"""Approval throughput: N projects from declaration to approval.

The suite runs a bench copy of a jurisdiction's profile in which every ``sign: officer``
(opinions and the decision) reads ``sign: auto`` (``PROFILE_DIR``; the real profiles are
untouched). The bench plays the applying unit: it declares each project by RPC (as the
gateway does) and hands in the documents the profile asks for when the case enters its
documents stage, seen on a tap of review's events. A project counts as approved when
review's ``project_approved`` event reaches the tap; at the end the registry's ledger
must show every one of them approved.
"""
import os
import re
import time

from policy import load_profile

JURISDICTION = "dalate"
#: planned (规划内: no proposal, dalate art. 5) and simple (简易评审: no expert panel, art. 5)
FLAGS = {"planned": True, "simple": True}
#: the pipeline's critical path: declare (RPC) → project_submitted → opinion_requested (plan)
#: → opinion_issued → stage_advanced (documents, to the unit) → submit_document (RPC) →
#: opinion_requested ×3 (technical review, at once) → opinion_issued (the last of them) →
#: project_approved (decision automatic, to the unit)
HOPS_DELIVERY = 7
HOPS_RTT = 2


def write_auto_profile(directory, key=JURISDICTION):
    """Copy ``policy/profiles/<key>.yaml`` to ``directory`` with every signature automatic."""
    from policy.profile import PROFILE_DIR
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(PROFILE_DIR, f"{key}.yaml"), encoding="utf-8") as fh:
        text = fh.read()
    text = re.sub(r"\bsign: officer\b", "sign: auto", text)
    path = os.path.join(directory, f"{key}.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    load_profile.cache_clear()
    return path


def application(i, key=JURISDICTION):
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from scripts.demo import application as demo_application
    return demo_application(key, 800_000 + (i % 50) * 1000, name=f"数字城市基层治理平台 {i:05d}",
                            flags=dict(FLAGS))


class ApprovalRun:
    """Drive ``n`` projects with at most ``window`` in the pipeline at once."""

    def __init__(self, client, profile_dir, n, window=64, unit_prefix="BENCH-U", timeout=600):
        self.client = client
        self.profile = load_profile(JURISDICTION, profile_dir)
        self.n = n
        self.window = window
        self.unit_prefix = unit_prefix
        self.timeout = timeout
        self.sent_at = {}        # declare correlation id -> send time
        self.declared_at = {}    # code -> declare send time
        self.approved_at = {}    # code -> time the approval event arrived
        self.problems = []
        self.required = None
        self.early = {}          # code -> documents stage seen before the declare reply

    # ---- events ----------------------------------------------------------------------------
    def on_event(self, envelope):
        kind = envelope["event_type"]
        payload = envelope["payload"]
        code = payload["project"]["code"]
        if kind == "stage_advanced" and payload["stage"] == "documents":
            self.submit_documents(code, payload["project"]["unit_id"])
        elif kind == "project_approved":
            self.approved_at[code] = time.time()
        elif kind in ("project_returned", "project_refused"):
            self.problems.append((code, kind, payload.get("reasons")))

    def submit_documents(self, code, unit_id):
        for doc in self.required:
            self.client.send("review", "submit_document", _callback=self.on_reply, code=code, unit_id=unit_id,
                             doc_type=doc, title=f"{doc} v1", summary="按模板编制 / per template")

    def on_reply(self, result, error):
        if error:
            self.problems.append(("rpc", error.get("exc_type"), error.get("value")))

    # ---- the run ------------------------------------------------------------------------------
    def run(self):
        sample = application(0)
        self.required = list(self.profile.required_documents(sample)[0])
        self.client.tap("review", ["stage_advanced", "project_approved", "project_returned", "project_refused"],
                        self.on_event)
        started = time.time()
        deadline = time.monotonic() + self.timeout
        next_i = 0
        in_flight = 0
        while len(self.approved_at) + len(self.problems) < self.n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"approvals: {len(self.approved_at)}/{self.n} approved after {self.timeout}s; "
                                   f"problems: {self.problems[:3]}")
            in_flight = (len(self.sent_at) + len(self.declared_at)) - len(self.approved_at)
            while next_i < self.n and in_flight < self.window:
                self.declare(next_i)
                next_i += 1
                in_flight += 1
            self.client.poll(0.05)
            if self.problems:
                raise RuntimeError(f"approvals: a project did not pass: {self.problems[:3]}")
        finished = time.time()
        latencies = [self.approved_at[c] - self.declared_at[c] for c in self.approved_at if c in self.declared_at]
        return {"started": started, "finished": finished, "approved": len(self.approved_at),
                "rate": len(self.approved_at) / (finished - started), "latencies": latencies}

    def declare(self, i):
        unit = f"{self.unit_prefix}{i % 200:04d}"
        sent = time.time()

        def on_declared(result, error, sent=sent):
            if error:
                self.problems.append(("declare", error.get("exc_type"), error.get("value")))
                return
            if result["state"] != "in_approval":
                self.problems.append((result["code"], result["state"], result.get("intake_findings")))
                return
            self.declared_at[result["code"]] = sent

        cid = self.client.send("registry", "declare_project", _callback=lambda r, e: (self.sent_at.pop(cid, None),
                                                                                       on_declared(r, e)),
                               unit_id=unit, unit_name=f"基准测试单位 {unit}", application=application(i))
        self.sent_at[cid] = sent
