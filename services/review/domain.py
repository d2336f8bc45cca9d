"""The approval saga (审批流程) of the development and reform commission, as plain rules.

A case (审批案卷) is a JSON-ready dict. :class:`Saga` takes a case and one fact (a
submission, an opinion, a document, a vote, a signature) and returns an
:class:`Outcome`: the new case and the commands the service turns into events
(:class:`RequestOpinion`, :class:`AdvanceTo`, :class:`ReturnProject`,
:class:`RefuseProject`, :class:`ApproveProject`).

The stages, who gives an opinion, the panel rules, the decision levels and every
article cited come from the jurisdiction's profile; nothing here is specific to one
jurisdiction. Every decision the saga takes is written to the case's history with the
article it applies.

Imports nothing from nameko, SQLAlchemy or marshmallow: it is tested without fixtures.
"""
import copy
import datetime as dt
import math
import random
import uuid
from dataclasses import dataclass, field
from fractions import Fraction

from runtime.workdays import add_months, add_workdays

CASE_STATES = {
    "in_progress": "审批中",
    "returned": "退回修改",
    "refused": "不予批准",
    "approved": "已批复",
}

STAGE_STATUSES = {
    "pending": "未开始",
    "active": "办理中",
    "passed": "已通过",
    "returned": "未通过",
    "skipped": "不适用",
}

VOTES = {"approve": "同意", "reject": "不同意"}

#: the agency that signs approval decisions, panels and votes
APPROVING_AGENCY = "drc"  # 发展改革委


# ---- errors --------------------------------------------------------------------------

class RuleBroken(Exception):
    """A request breaks a rule. ``kind`` tells the service which contract error to raise:
    validation, forbidden, conflict, refusal or not_found."""

    def __init__(self, kind, rule, zh, en, *, field=None, cite=None):
        self.kind = kind
        self.rule = rule
        self.zh = zh
        self.en = en
        self.field = field
        self.cite = cite
        super().__init__(f"{rule}: {zh} / {en}" + (f" ({cite})" if cite else ""))


def finding(rule, severity, zh, en, cite):
    """A reason given to the unit (same shape as contracts.events.FindingSchema)."""
    return {"rule": rule, "severity": severity, "zh": zh, "en": en, "cite": cite}


# ---- commands ------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestOpinion:
    """Ask an agency for its written opinion (书面意见)."""

    request_id: str
    stage: str
    stage_name: str
    agency: str
    agency_name: str
    subject: str
    sign: str
    due_on: str
    cite: str


@dataclass(frozen=True)
class AdvanceTo:
    """The case entered a stage (history for the registry)."""

    stage: str
    stage_name: str
    cite: str


@dataclass(frozen=True)
class ReturnProject:
    """Returned for revision (退回修改)."""

    stage: str
    reasons: list
    returns: int
    cite: str


@dataclass(frozen=True)
class RefuseProject:
    """Refused (不予批准 / 不再组织评审), possibly barred until a date."""

    stage: str
    reasons: list
    barred_until: str
    cite: str


@dataclass(frozen=True)
class ApproveProject:
    """Approved (批复): the project enters ``pool``."""

    approved_amount: int
    document_no: str
    decision_body: str
    pool: str
    approved_on: str
    conditions: list
    cite: str


@dataclass
class Outcome:
    case: dict
    commands: list = field(default_factory=list)
    ignored: str = None  # why the fact changed nothing (duplicates, stale answers)


# ---- small pure rules ----------------------------------------------------------------

def document_number(prefix, year, n):
    """批复文号: ``<prefix>〔<year>〕<n>号``."""
    return f"{prefix}〔{year}〕{n}号"


def max_directed(size, directed_max_fraction):
    """How many panel members may be picked by name (定向选取): floor(size × fraction)."""
    return math.floor(size * Fraction(directed_max_fraction))


def panel_passes(approvals, size, pass_fraction):
    """Strictly more than ``pass_fraction`` of the panel approve ("more than half" for 1/2)."""
    return Fraction(approvals, size) > Fraction(pass_fraction)


def draw_panel(pool, *, size, directed_max_fraction, applying_unit, directed=(), rng=None,
               panel_cite, own_unit_cite):
    """Draw an expert panel (专家组): the directed picks first, the rest at random.

    ``pool`` is a list of expert dicts (expert_id, name, unit_id, field, directed, active).
    No expert of the applying unit sits on the panel. Raises :class:`RuleBroken`.
    """
    rng = rng or random.SystemRandom()
    directed = list(directed or [])
    limit = max_directed(size, directed_max_fraction)
    if len(set(directed)) != len(directed):
        raise RuleBroken("validation", "directed_duplicate", "定向选取的专家重复",
                         "an expert is picked twice", field="directed", cite=panel_cite)
    if len(directed) > limit:
        raise RuleBroken(
            "validation", "directed_max",
            f"定向选取专家 {len(directed)} 人，超过专家组 {size} 人的 {directed_max_fraction}（最多 {limit} 人）",
            f"{len(directed)} directed picks exceed {directed_max_fraction} of a panel of {size} (at most {limit})",
            field="directed", cite=panel_cite,
        )
    active = {e["expert_id"]: e for e in pool if e.get("active", True)}
    members = []
    for expert_id in directed:
        expert = active.get(expert_id)
        if expert is None:
            raise RuleBroken("validation", "expert_unknown", f"专家库中没有在册专家 {expert_id}",
                             f"no active expert {expert_id} in the pool", field="directed")
        if not expert.get("directed"):
            raise RuleBroken("validation", "expert_not_directed",
                             f"专家 {expert['name']}（{expert_id}）不在可定向选取的专家范围内",
                             f"expert {expert_id} may not be picked by name (not directed-eligible)",
                             field="directed", cite=panel_cite)
        if expert["unit_id"] == applying_unit:
            raise RuleBroken("validation", "expert_own_unit",
                             f"专家 {expert['name']}（{expert_id}）来自项目建设单位，应当回避",
                             f"expert {expert_id} works for the applying unit and is excluded",
                             field="directed", cite=own_unit_cite)
        members.append(_member(expert, True))
    eligible = sorted(
        (e for e in active.values() if e["unit_id"] != applying_unit and e["expert_id"] not in directed),
        key=lambda e: e["expert_id"],
    )
    need = size - len(members)
    if len(eligible) < need:
        raise RuleBroken(
            "conflict", "expert_pool_insufficient",
            f"专家库中可抽取的专家不足：需随机抽取 {need} 人，符合条件（在册且非项目建设单位）的仅 {len(eligible)} 人；请先补充专家",
            f"not enough eligible experts: {need} needed at random, only {len(eligible)} active experts "
            "outside the applying unit; add experts first",
            field="experts", cite=panel_cite,
        )
    members.extend(_member(e, False) for e in rng.sample(eligible, need))
    return members


def _member(expert, directed):
    return {"expert_id": expert["expert_id"], "name": expert["name"], "unit_id": expert["unit_id"],
            "field": expert.get("field", ""), "directed": bool(directed)}


def _dedupe(items):
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


# ---- the saga --------------------------------------------------------------------------

#: parts of a case the saga replaces but never changes in place: a copy may share them
_SHARED_PARTS = ("project", "application")


def _copy(value):
    """A deep copy of JSON-shaped data (what a case is: it is stored as JSON), about five
    times quicker than ``copy.deepcopy``, which keeps a memo of every object it visits.
    Anything that is not a dict, list, tuple or an immutable scalar goes to deepcopy."""
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind is str or kind is int or kind is bool or value is None or kind is float:
        return value
    if kind is tuple:
        return tuple(_copy(item) for item in value)
    return copy.deepcopy(value)


def _own(case):
    """A copy of ``case`` the saga may change without touching the caller's: deep, except
    for the project and its application, which the saga only replaces whole (copying
    the application was the largest part of a step's cost)."""
    return {key: value if key in _SHARED_PARTS else _copy(value) for key, value in case.items()}


def _taken(case):
    """``case`` itself, for a saga that takes the cases it is given (``takes_cases``)."""
    return case


class Saga:
    """The approval pipeline of one jurisdiction.

    ``profile`` is a :class:`policy.Profile`; ``today`` a date; ``experts`` the expert
    pool; ``next_number(year)`` gives the next number of the year's approval documents;
    ``own_agencies`` are agencies whose opinions this service records itself (no event
    is sent: an officer signs them here).

    A step leaves the case it is given untouched and returns a changed copy. A caller that
    hands over cases it will not use again (each just decoded from its row) passes
    ``takes_cases=True``: a step then changes the case it is given, and the copy — 4% of
    review's CPU in the approval run — is saved (bench/README.md, step 18).
    """

    def __init__(self, profile, today, *, experts=(), rng=None, new_id=None, next_number=None,
                 own_agencies=(), document_names=None, takes_cases=False):
        self.profile = profile
        self.today = today
        self._experts = experts  # the pool, or a function that reads it when a panel is drawn
        self.rng = rng or random.SystemRandom()
        self.new_id = new_id or (lambda: uuid.uuid4().hex)
        self.next_number = next_number
        self.own_agencies = set(own_agencies)
        self.document_names = document_names or {}
        self._own = _taken if takes_cases else _own

    @property
    def experts(self):
        if callable(self._experts):
            self._experts = self._experts()
        return list(self._experts)

    @experts.setter
    def experts(self, pool):
        self._experts = pool

    # -- profile shortcuts ---------------------------------------------------------------
    @property
    def _experts_rules(self):
        return self.profile.data["experts"]

    @property
    def _decision_rules(self):
        return self.profile.data["decision"]

    def _pipeline_spec(self, kind, key):
        return next((s for s in self.profile.pipeline(kind) if s["key"] == key), None)

    def _doc_name(self, doc_type):
        return self.document_names.get(doc_type, doc_type)

    # -- facts ---------------------------------------------------------------------------
    def submit(self, case, *, project, application, revision, declared_on):
        """registry accepted the application (受理): open the case, or resume a returned one."""
        if case is None:
            case = self._new_case(project, application, revision, declared_on)
            cmds = []
            first = next((s for s in case["stages"] if s["status"] == "pending"), None)
            self._log(case, "case_opened", "受理审批申请，按本辖区审批流程办理",
                      "approval case opened; the jurisdiction's pipeline applies",
                      first["cite"] if first else self._decision_rules["cite"])
            self._advance(case, cmds)
            return Outcome(case, cmds)

        case = self._own(case)
        state = case["state"]
        if state in ("in_progress", "approved"):
            return Outcome(case, [], ignored=f"case {case['code']} is {state}; submission ignored")
        if revision <= case["revision"]:
            return Outcome(case, [], ignored=f"revision {revision} already seen")
        barred = case.get("barred_until")
        if state == "refused" and barred and self.today < dt.date.fromisoformat(barred):
            case["revision"] = revision
            rules = self._experts_rules
            reason = finding(
                "barred", "blocking",
                f"该项目已 {case['expert_failures']} 次未通过专家评审，{barred} 前不再组织评审",
                f"the project failed expert review {case['expert_failures']} times; no review before {barred}",
                rules["bar_cite"],
            )
            self._log(case, "resubmission_refused", reason["zh"], reason["en"], rules["bar_cite"],
                      stage=case.get("halted_stage"))
            return Outcome(case, [RefuseProject(case.get("halted_stage") or "", [reason], barred, rules["bar_cite"])])
        cmds = []
        self._resume(case, project, application, revision, declared_on, cmds)
        return Outcome(case, cmds)

    def opinion_issued(self, case, opinion):
        """An agency answered (opinion_issued). Stale or repeated answers change nothing."""
        case = self._own(case)
        if case["state"] != "in_progress":
            return Outcome(case, [], ignored=f"case is {case['state']}")
        stage = self._current(case)
        if stage is None or stage["type"] != "opinions":
            return Outcome(case, [], ignored="no opinion stage is active")
        record = next((o for o in stage["opinions"] if o["request_id"] == opinion["request_id"]), None)
        if record is None:
            return Outcome(case, [], ignored=f"request {opinion['request_id']} is not part of the active stage")
        if record["status"] == "issued":
            return Outcome(case, [], ignored=f"request {opinion['request_id']} already answered")
        if record["agency"] != opinion["agency"]:
            return Outcome(case, [], ignored=f"request {opinion['request_id']} was sent to {record['agency']}")
        record.update(
            status="issued",
            verdict=opinion["verdict"],
            findings=list(opinion.get("findings") or []),
            conditions=list(opinion.get("conditions") or []),
            data=dict(opinion.get("data") or {}),
            signed_by=opinion.get("signed_by"),
            issued_on=self.today.isoformat(),
        )
        self._log(case, "opinion_issued",
                  f"{record['agency_name']}出具意见：{opinion['verdict']}",
                  f"{record['agency']} issued its opinion: {opinion['verdict']}",
                  record["cite"], stage=stage["key"])
        cmds = []
        if all(o["status"] == "issued" for o in stage["opinions"]):
            self._conclude_opinions(case, stage, cmds)
        return Outcome(case, cmds)

    def sign_own_opinion(self, case, *, request_id, officer_id, officer_agency, verdict, conditions=(), comment=""):
        """An officer of this service's own agency gives an opinion the pipeline asked of it."""
        if case["state"] != "in_progress":
            raise RuleBroken("conflict", "case_not_in_progress", "审批案卷不在办理中", "the case is not in progress",
                             field="request_id")
        stage = self._current(case)
        record = None
        if stage is not None and stage["type"] == "opinions":
            record = next((o for o in stage["opinions"] if o["request_id"] == request_id), None)
        if record is None or record["agency"] not in self.own_agencies:
            raise RuleBroken("not_found", "request_unknown", f"当前环节没有待本机构出具的意见请求 {request_id}",
                             f"no request {request_id} awaiting this service's agency in the active stage",
                             field="request_id")
        if officer_agency != record["agency"]:
            raise RuleBroken("forbidden", "own_agency_only", "只能签发本机构的意见",
                             "an officer signs only for their own agency", field="officer_agency")
        if record["status"] == "issued":
            raise RuleBroken("conflict", "already_issued", "该意见已签发", "this opinion has already been issued",
                             field="request_id")
        findings = []
        if verdict == "reject":
            if not (comment or "").strip():
                raise RuleBroken("validation", "reason_required", "不同意时必须说明理由",
                                 "a reason is required to reject", field="comment", cite=record["cite"])
            findings.append(finding("officer_opinion", "blocking", comment, comment, record["cite"]))
        return self.opinion_issued(case, {
            "request_id": request_id, "agency": record["agency"], "verdict": verdict,
            "findings": findings, "conditions": list(conditions or []), "data": {}, "signed_by": officer_id,
        })

    def submit_document(self, case, *, unit_id, doc_type, title, summary=""):
        """The unit hands in a document (or a new version of it)."""
        case = self._own(case)
        if unit_id != case["unit_id"]:
            raise RuleBroken("forbidden", "own_project_only", "只有项目建设单位可以提交本项目的材料",
                             "only the applying unit may submit documents for its project", field="unit_id")
        if case["state"] in ("approved",):
            raise RuleBroken("conflict", "case_closed", "项目已批复，不再接收审批材料",
                             "the project is approved; no more approval documents are taken", field="code")
        required, rule = self.profile.required_documents(case["application"])
        if doc_type not in required:
            names = "、".join(self._doc_name(d) for d in required)
            raise RuleBroken(
                "validation", "document_not_required",
                f"本项目应提交的材料为：{names}（{rule['zh']}）；“{self._doc_name(doc_type)}”不在其中",
                f"this project requires {', '.join(required)}; {doc_type} is not one of them",
                field="doc_type", cite=rule["cite"],
            )
        versions = case["documents"].setdefault(doc_type, [])
        document = {
            "doc_type": doc_type, "version": len(versions) + 1, "title": title, "summary": summary or "",
            "submitted_on": self.today.isoformat(), "submitted_by": unit_id,
        }
        versions.append(document)
        stage = self._current(case)
        self._log(case, "document_submitted",
                  f"提交{self._doc_name(doc_type)}（第 {document['version']} 版）",
                  f"{doc_type} submitted (version {document['version']})", rule["cite"],
                  stage=stage["key"] if stage else None)
        cmds = []
        if case["state"] == "in_progress" and stage is not None and stage["type"] == "documents":
            if self._documents_complete(case, stage):
                self._pass(case, stage, cmds)
        return Outcome(case, cmds), document

    def redraw_panel(self, case, *, directed=(), officer_id, officer_agency):
        """A DRC officer draws the panel again, with directed picks (定向选取), before any vote."""
        self._check_officer(officer_agency, self._experts_rules["panel"]["cite"])
        case = self._own(case)
        stage = self._active_of_type(case, "experts")
        panel = stage.get("panel")
        if panel and panel["votes"]:
            raise RuleBroken("conflict", "votes_recorded", "已有专家投票，不能重新抽取专家",
                             "votes have been recorded; the panel can no longer be redrawn", field="directed")
        stage["panel"] = self._draw(case, directed)
        stage["note"] = None
        self._log(case, "panel_drawn",
                  f"{officer_id} 重新抽取专家组（定向选取 {len(directed or [])} 人）",
                  f"{officer_id} redrew the panel ({len(directed or [])} directed picks)",
                  stage["panel"]["cite"], stage=stage["key"])
        return Outcome(case, [])

    def record_vote(self, case, *, expert_id, vote, comment="", officer_id, officer_agency):
        """Record one panel member's signed vote; the last vote decides the stage."""
        rules = self._experts_rules
        self._check_officer(officer_agency, rules["panel"]["cite"])
        case = self._own(case)
        stage = self._active_of_type(case, "experts")
        panel = stage.get("panel")
        if not panel:
            raise RuleBroken("conflict", "panel_not_drawn", "专家组尚未抽取", "the panel has not been drawn",
                             field="code", cite=rules["panel"]["cite"])
        member = next((m for m in panel["experts"] if m["expert_id"] == expert_id), None)
        if member is None:
            raise RuleBroken("validation", "expert_not_on_panel", f"专家 {expert_id} 不是本项目专家组成员",
                             f"expert {expert_id} is not on this project's panel", field="expert_id",
                             cite=rules["panel"]["cite"])
        if any(v["expert_id"] == expert_id for v in panel["votes"]):
            raise RuleBroken("conflict", "already_voted", f"专家 {member['name']} 已投票", f"expert {expert_id} has already voted",
                             field="expert_id")
        if vote not in VOTES:
            raise RuleBroken("validation", "one_of", "投票取值必须是 approve 或 reject",
                             "vote must be approve or reject", field="vote")
        panel["votes"].append({
            "expert_id": expert_id, "name": member["name"], "vote": vote, "comment": comment or "",
            "recorded_by": officer_id, "recorded_on": self.today.isoformat(),
        })
        self._log(case, "vote_recorded", f"专家 {member['name']} 投票：{VOTES[vote]}",
                  f"expert {expert_id} voted {vote}", rules["panel"]["cite"], stage=stage["key"])
        cmds = []
        if len(panel["votes"]) == len(panel["experts"]):
            self._conclude_panel(case, stage, cmds)
        return Outcome(case, cmds)

    def sign_decision(self, case, *, officer_id, officer_agency, verdict, comment=""):
        """A DRC officer signs the approval decision (审批决定)."""
        rules = self._decision_rules
        self._check_officer(officer_agency, rules["cite"])
        case = self._own(case)
        stage = self._active_of_type(case, "decision")
        if verdict not in ("approve", "reject"):
            raise RuleBroken("validation", "one_of", "审批决定必须是 approve 或 reject",
                             "verdict must be approve or reject", field="verdict")
        decision = stage["decision"]
        cmds = []
        if verdict == "reject":
            if not (comment or "").strip():
                raise RuleBroken("validation", "reason_required", "不予批准时必须说明理由",
                                 "a reason is required to refuse", field="comment", cite=rules["cite"])
            decision.update(verdict="reject", signed_by=officer_id, comment=comment)
            reason = finding("decision_refused", "blocking", comment, comment, rules["cite"])
            self._refuse(case, stage, [reason], rules["cite"], None, cmds)
        else:
            decision.update(verdict="approve", signed_by=officer_id, comment=comment or None)
            self._approve(case, stage, officer_id, cmds)
        return Outcome(case, cmds)

    # -- case construction ---------------------------------------------------------------
    def _new_case(self, project, application, revision, declared_on):
        case = {
            "code": project["code"],
            "jurisdiction": project["jurisdiction"],
            "unit_id": project["unit_id"],
            "unit_name": project["unit_name"],
            "name": project["name"],
            "kind": project["kind"],
            "amount": project["amount"],
            "project": dict(project),
            "application": application,
            "revision": revision,
            "declared_on": declared_on,
            "state": "in_progress",
            "current_stage": None,
            "halted_stage": None,
            "stages": self._stage_records(application),
            "documents": {},
            "returns": 0,
            "expert_failures": 0,
            "barred_until": None,
            "bar_cite": None,
            "conditions": [],
            "opinion_data": {},
            "approval": None,
            "opened_on": self.today.isoformat(),
            "history": [],
        }
        return case

    def _stage_records(self, application):
        applicable = {s["key"] for s in self.profile.stages_for(application)}
        return [{
            "key": spec["key"],
            "name": spec["name"],
            "type": spec["type"],
            "cite": spec["cite"],
            "requires_stages": list(spec.get("requires_stages") or []),
            "status": "pending" if spec["key"] in applicable else "skipped",
            "entered_on": None,
            "closed_on": None,
            "opinions": [],
            "documents_required": [],
            "documents_cite": None,
            "panel": None,
            "decision": None,
            "note": None,
            "attempts": [],
        } for spec in self.profile.pipeline(application["kind"])]

    def _resume(self, case, project, application, revision, declared_on, cmds):
        """A revised application resumes the case at the stage that returned it; the
        stages passed before that one stay passed (if they still apply)."""
        halted = case.get("halted_stage")
        old = case["stages"]
        order = [s["key"] for s in old]
        halted_index = order.index(halted) if halted in order else len(order)
        kept = {s["key"]: s for i, s in enumerate(old) if s["status"] == "passed" and i < halted_index}
        previous = {s["key"]: s for s in old}
        was_barred = case["state"] == "refused" and case.get("barred_until")
        case.update(
            project=dict(project), application=application, revision=revision, declared_on=declared_on,
            name=project["name"], kind=project["kind"], amount=project["amount"], unit_name=project["unit_name"],
            state="in_progress", halted_stage=None,
        )
        stages = self._stage_records(application)
        for i, stage in enumerate(stages):
            if stage["status"] == "pending" and stage["key"] in kept:
                stages[i] = kept[stage["key"]]
            elif stage["key"] in previous:
                stage["attempts"] = previous[stage["key"]].get("attempts", [])
        case["stages"] = stages
        if was_barred:
            rules = self._experts_rules
            self._log(case, "bar_expired",
                      f"不再组织评审的期限（{case['barred_until']}）已过，重新受理",
                      f"the bar ended on {case['barred_until']}; the case is taken up again", rules["bar_cite"])
            case["barred_until"] = None
            case["expert_failures"] = 0
        self._collect(case)
        resume_at = next((s for s in stages if s["status"] == "pending"), None)
        self._log(case, "case_resumed",
                  f"项目修改后重新报送（第 {revision} 次修改），自“{resume_at['name'] if resume_at else ''}”环节继续办理",
                  f"revision {revision} received; the case resumes at {resume_at['key'] if resume_at else '-'}",
                  resume_at["cite"] if resume_at else self._decision_rules["cite"],
                  stage=resume_at["key"] if resume_at else None)
        self._advance(case, cmds)

    # -- moving through the stages -----------------------------------------------------
    def _current(self, case):
        key = case.get("current_stage")
        return next((s for s in case["stages"] if s["key"] == key), None) if key else None

    def _active_of_type(self, case, stage_type):
        stage = self._current(case)
        if case["state"] != "in_progress" or stage is None or stage["type"] != stage_type or stage["status"] != "active":
            names = {"experts": "专家评审", "decision": "审批决定"}
            raise RuleBroken(
                "conflict", "wrong_stage",
                f"项目当前不在{names.get(stage_type, stage_type)}环节（当前：{stage['name'] if stage else '无'}，状态：{CASE_STATES[case['state']]}）",
                f"the case is not at a {stage_type} stage (now: {stage['key'] if stage else 'none'}, {case['state']})",
                field="code",
            )
        return stage

    def _check_officer(self, officer_agency, cite):
        if officer_agency != APPROVING_AGENCY:
            name = self.profile.agency_name(APPROVING_AGENCY)
            raise RuleBroken("forbidden", "drc_officer_only", f"只有{name}的经办人员可以办理此事项",
                             "only an officer of the development and reform commission may do this",
                             field="officer_agency", cite=cite)

    def _advance(self, case, cmds):
        """Enter the next pending stage; keep going while stages complete on entry."""
        while case["state"] == "in_progress":
            nxt = next((s for s in case["stages"] if s["status"] == "pending"), None)
            if nxt is None:
                return
            if not self._enter(case, nxt, cmds):
                return

    def _enter(self, case, stage, cmds):
        """Open a stage. Returns True when the stage was completed at once."""
        stage["status"] = "active"
        stage["entered_on"] = self.today.isoformat()
        stage["note"] = None
        case["current_stage"] = stage["key"]
        cmds.append(AdvanceTo(stage["key"], stage["name"], stage["cite"]))
        self._log(case, "stage_entered", f"进入“{stage['name']}”环节", f"entered stage {stage['key']}",
                  stage["cite"], stage=stage["key"])
        kind = stage["type"]
        if kind == "opinions":
            self._request_opinions(case, stage, cmds)
            return False
        if kind == "documents":
            if self._documents_complete(case, stage):
                self._close(stage, "passed")
                self._log(case, "stage_passed", f"“{stage['name']}”：材料已齐全", f"{stage['key']}: documents complete",
                          stage["documents_cite"], stage=stage["key"])
                return True
            return False
        if kind == "experts":
            self._auto_draw(case, stage)
            return False
        if kind == "decision":
            self._open_decision(case, stage, cmds)
            return False
        raise ValueError(f"unknown stage type {kind!r}")

    def _close(self, stage, status):
        stage["status"] = status
        stage["closed_on"] = self.today.isoformat()

    def _pass(self, case, stage, cmds):
        self._close(stage, "passed")
        self._log(case, "stage_passed", f"“{stage['name']}”环节通过", f"stage {stage['key']} passed",
                  stage["cite"], stage=stage["key"])
        self._collect(case)
        self._advance(case, cmds)

    def _archive(self, stage, outcome):
        stage["attempts"].append({
            "outcome": outcome,
            "closed_on": self.today.isoformat(),
            "opinions": _copy(stage["opinions"]),
            "panel": _copy(stage["panel"]),
            "decision": _copy(stage["decision"]),
        })

    def _return(self, case, stage, reasons, cite, cmds):
        case["returns"] += 1
        self._archive(stage, "returned")
        self._close(stage, "returned")
        case["state"] = "returned"
        case["halted_stage"] = stage["key"]
        cmds.append(ReturnProject(stage["key"], reasons, case["returns"], cite))
        self._log(case, "project_returned",
                  f"“{stage['name']}”未通过，退回项目建设单位修改（第 {case['returns']} 次退回）",
                  f"stage {stage['key']} not passed; returned for revision (return {case['returns']})",
                  cite, stage=stage["key"])

    def _refuse(self, case, stage, reasons, cite, barred_until, cmds):
        self._archive(stage, "refused")
        self._close(stage, "returned")
        case["state"] = "refused"
        case["halted_stage"] = stage["key"]
        if barred_until:
            case["barred_until"] = barred_until
            case["bar_cite"] = cite
        cmds.append(RefuseProject(stage["key"], reasons, barred_until, cite))
        self._log(case, "project_refused",
                  f"“{stage['name']}”：不予批准" + (f"，{barred_until} 前不再组织评审" if barred_until else ""),
                  f"refused at {stage['key']}" + (f"; barred until {barred_until}" if barred_until else ""),
                  cite, stage=stage["key"])

    def _collect(self, case):
        """Conditions and opinion data of every passed opinion stage."""
        conditions, data = [], {}
        for stage in case["stages"]:
            if stage["type"] != "opinions" or stage["status"] != "passed":
                continue
            for opinion in stage["opinions"]:
                conditions.extend(opinion.get("conditions") or [])
                if opinion.get("data"):
                    data.setdefault(opinion["subject"], {}).update(opinion["data"])
        case["conditions"] = _dedupe(conditions)
        case["opinion_data"] = data

    # -- opinions ------------------------------------------------------------------------
    def _request_opinions(self, case, stage, cmds):
        spec = self._pipeline_spec(case["kind"], stage["key"])
        due_rule = self.profile.data["opinion_due_workdays"]
        due_on, _estimated = add_workdays(self.today, int(due_rule["value"]))
        stage["opinions"] = []
        for item in spec["opinions"]:
            own = item["agency"] in self.own_agencies
            opinion = {
                "request_id": self.new_id(),
                "agency": item["agency"],
                "agency_name": self.profile.agency_name(item["agency"]),
                "subject": item["subject"],
                "sign": "officer" if own else item.get("sign", "auto"),
                "status": "requested",
                "verdict": None,
                "requested_on": self.today.isoformat(),
                "due_on": due_on.isoformat(),
                "due_cite": due_rule["cite"],
                "findings": [],
                "conditions": [],
                "data": {},
                "signed_by": None,
                "issued_on": None,
                "cite": item["cite"],
            }
            stage["opinions"].append(opinion)
            if not own:
                cmds.append(RequestOpinion(
                    opinion["request_id"], stage["key"], stage["name"], opinion["agency"], opinion["agency_name"],
                    opinion["subject"], opinion["sign"], opinion["due_on"], opinion["cite"],
                ))
            self._log(case, "opinion_requested",
                      f"征求{opinion['agency_name']}书面意见，{opinion['due_on']} 前出具",
                      f"written opinion requested from {opinion['agency']}, due {opinion['due_on']}",
                      opinion["cite"], stage=stage["key"])

    def _conclude_opinions(self, case, stage, cmds):
        rejects = [o for o in stage["opinions"] if o["verdict"] == "reject"]
        if not rejects:
            self._pass(case, stage, cmds)
            return
        reasons = []
        for opinion in rejects:
            found = list(opinion["findings"])
            if not found:
                found = [finding("opinion_rejected", "blocking", f"{opinion['agency_name']}不同意",
                                 f"{opinion['agency']} does not agree", opinion["cite"])]
            reasons.extend(found)
        self._return(case, stage, reasons, stage["cite"], cmds)

    # -- documents -----------------------------------------------------------------------
    def _documents_complete(self, case, stage):
        required, rule = self.profile.required_documents(case["application"])
        stage["documents_required"] = list(required)
        stage["documents_cite"] = rule["cite"]
        missing = [d for d in required if not case["documents"].get(d)]
        if missing:
            stage["note"] = {
                "zh": "待提交：" + "、".join(self._doc_name(d) for d in missing),
                "en": "awaiting: " + ", ".join(missing),
                "cite": rule["cite"],
            }
            return False
        stage["note"] = None
        return True

    # -- experts -------------------------------------------------------------------------
    def _draw(self, case, directed):
        rules = self._experts_rules
        panel_rules = rules["panel"]
        members = draw_panel(
            self.experts, size=panel_rules["size"], directed_max_fraction=panel_rules["directed_max_fraction"],
            applying_unit=case["unit_id"], directed=directed, rng=self.rng,
            panel_cite=panel_rules["cite"], own_unit_cite=rules["exclude_own_unit_cite"],
        )
        return {
            "size": panel_rules["size"],
            "pass_fraction": panel_rules["pass_fraction"],
            "directed_max_fraction": panel_rules["directed_max_fraction"],
            "organizer": panel_rules["organizer"],
            "drawn_on": self.today.isoformat(),
            "cite": panel_rules["cite"],
            "own_unit_cite": rules["exclude_own_unit_cite"],
            "experts": members,
            "votes": [],
        }

    def _auto_draw(self, case, stage):
        try:
            stage["panel"] = self._draw(case, [])
        except RuleBroken as exc:
            # an event cannot be refused: the stage waits until an officer redraws
            stage["panel"] = None
            stage["note"] = {"zh": exc.zh, "en": exc.en, "cite": exc.cite}
            self._log(case, "panel_not_drawn", exc.zh, exc.en, exc.cite or stage["cite"], stage=stage["key"])
            return
        self._log(case, "panel_drawn", f"从专家库随机抽取专家组 {stage['panel']['size']} 人",
                  f"a panel of {stage['panel']['size']} drawn at random from the pool",
                  stage["panel"]["cite"], stage=stage["key"])

    def _conclude_panel(self, case, stage, cmds):
        rules = self._experts_rules
        panel = stage["panel"]
        size = len(panel["experts"])
        approvals = sum(1 for v in panel["votes"] if v["vote"] == "approve")
        cite = panel["cite"]
        if panel_passes(approvals, size, panel["pass_fraction"]):
            self._log(case, "panel_passed",
                      f"专家评审通过：同意 {approvals} 票，共 {size} 人（须超过 {panel['pass_fraction']}）",
                      f"expert review passed: {approvals} of {size} approve (more than {panel['pass_fraction']} needed)",
                      cite, stage=stage["key"])
            self._pass(case, stage, cmds)
            return
        case["expert_failures"] += 1
        reasons = [finding(
            "expert_review_failed", "blocking",
            f"专家评审未通过：同意 {approvals} 票，共 {size} 人（须超过 {panel['pass_fraction']}）；"
            f"第 {case['expert_failures']} 次未通过",
            f"expert review failed: {approvals} of {size} approve (more than {panel['pass_fraction']} needed); "
            f"failure {case['expert_failures']}",
            cite,
        )]
        for vote in panel["votes"]:
            if vote["vote"] == "reject" and vote["comment"]:
                reasons.append(finding("expert_comment", "warning", vote["comment"], vote["comment"], cite))
        limit = rules.get("failures_before_bar")
        if limit and case["expert_failures"] >= limit:
            barred_until = add_months(self.today, int(rules["bar_months"])).isoformat()
            reasons.insert(0, finding(
                "barred", "blocking",
                f"{limit} 次未能通过专家评审，{rules['bar_months']} 个月内（{barred_until} 前）不再组织评审",
                f"failed expert review {limit} times; no review for {rules['bar_months']} months (until {barred_until})",
                rules["bar_cite"],
            ))
            self._refuse(case, stage, reasons, rules["bar_cite"], barred_until, cmds)
            return
        self._return(case, stage, reasons, cite, cmds)

    # -- decision ------------------------------------------------------------------------
    def _open_decision(self, case, stage, cmds):
        rules = self._decision_rules
        for key in stage["requires_stages"]:
            required = next((s for s in case["stages"] if s["key"] == key), None)
            if required is None or required["status"] != "passed":
                name = required["name"] if required else key
                cite = required["cite"] if required else stage["cite"]
                reason = finding(
                    "required_stage_not_passed", "blocking",
                    f"未经“{name}”的项目不得审批", f"the project has not passed {key}, which approval requires", cite,
                )
                self._refuse(case, stage, [reason], cite, None, cmds)
                return
        level = self.profile.decision_level(case["application"])
        stage["decision"] = {
            "body": level["body"], "cite": level["cite"], "sign": rules["sign"],
            "verdict": None, "signed_by": None, "comment": None,
        }
        self._log(case, "decision_level", f"决策机构：{level['body']}", f"decision body: {level['body']}",
                  level["cite"], stage=stage["key"])
        if rules["sign"] == "auto":
            stage["decision"].update(verdict="approve", signed_by="auto")
            self._approve(case, stage, "auto", cmds)
        else:
            name = self.profile.agency_name(APPROVING_AGENCY)
            stage["note"] = {"zh": f"待{name}签发审批决定", "en": "awaiting the signature of a DRC officer",
                             "cite": rules["cite"]}

    def _approve(self, case, stage, signed_by, cmds):
        rules = self._decision_rules
        year = self.today.year
        if self.next_number is None:
            raise RuntimeError("Saga needs next_number to number approval documents")
        document_no = document_number(rules["document_prefix"], year, self.next_number(year))
        reviewed = (case["opinion_data"].get("cost") or {}).get("reviewed_amount")
        approved_amount = int(reviewed) if reviewed is not None else int(case["amount"])
        decision = stage["decision"]
        # the pool may depend on the kind (e.g. bazhong art. 25: O&M goes to 运行库)
        pool, pool_cite = self.profile.approval_pool({"kind": case["kind"]})
        case["approval"] = {
            "document_no": document_no,
            "decision_body": decision["body"],
            "approved_amount": approved_amount,
            "amount_basis": "cost_review" if reviewed is not None else "application",
            "approved_on": self.today.isoformat(),
            "cite": decision["cite"],
            "pool": pool,
            "pool_cite": pool_cite,
            "signed_by": signed_by,
        }
        stage["note"] = None
        self._close(stage, "passed")
        case["state"] = "approved"
        cmds.append(ApproveProject(approved_amount, document_no, decision["body"], pool,
                                   self.today.isoformat(), list(case["conditions"]), pool_cite))
        self._log(case, "project_approved", f"批复（{document_no}），核定投资 {approved_amount} 元",
                  f"approved ({document_no}), {approved_amount} yuan", rules["cite"], stage=stage["key"])

    # -- history ---------------------------------------------------------------------------
    def _log(self, case, event, zh, en, cite, stage=None):
        case["history"].append({"on": self.today.isoformat(), "event": event, "stage": stage,
                                "zh": zh, "en": en, "cite": cite})
