"""The registry's rules (数据主管部门), in plain Python.

Nothing here talks to a database or a broker, and no jurisdiction's article or date is
written here: each rule takes what it needs from the jurisdiction's profile (or from
arguments) and each finding cites its source.

* the lifelong project code and its check character (ISO 7064 MOD 11-2, as in GB 11643);
* intake (受理): the profile's negative list and the declaration windows (申报批次);
* the automatic checks behind the data bureau's opinions (pre-review, plan,
  technical review, data sharing);
* the history entries (项目历程) that every state change and pool move writes.
"""
import datetime as dt
import re
from dataclasses import dataclass, field

from contracts.enums import POOLS, PROJECT_STATES, VERDICTS, SUBJECTS

# ---- the project code ----------------------------------------------------------------

CODE_RE = re.compile(r"^(?P<year>\d{4})-(?P<admin>\d{6})-(?P<seq>\d{5})-(?P<check>[0-9X])$")
MAX_SEQUENCE = 99999
CODE_CITE = "suite rule: every project keeps one lifelong code, checked by ISO 7064 MOD 11-2 (GB 11643)"


def check_char(digits):
    """ISO 7064 MOD 11-2 check character over a string of digits ('0'-'9' or 'X')."""
    if not digits or not digits.isdigit():
        raise ValueError(f"check_char needs digits, got {digits!r}")
    p = 0
    for ch in digits:
        p = ((p + int(ch)) * 2) % 11
    value = (12 - p) % 11
    return "X" if value == 10 else str(value)


def project_code(year, admin_code, sequence):
    """``<year>-<admin code>-<sequence>-<check>``; the check covers the 15 digits."""
    if not (1000 <= int(year) <= 9999):
        raise ValueError(f"year {year!r} must have four digits")
    if not re.fullmatch(r"\d{6}", str(admin_code)):
        raise ValueError(f"admin code {admin_code!r} must have six digits")
    if not (1 <= int(sequence) <= MAX_SEQUENCE):
        raise ValueError(f"sequence {sequence!r} must be between 1 and {MAX_SEQUENCE}")
    digits = f"{int(year):04d}{admin_code}{int(sequence):05d}"
    return f"{int(year):04d}-{admin_code}-{int(sequence):05d}-{check_char(digits)}"


def is_valid_code(code):
    """True when ``code`` has the code's shape and its check character is right."""
    m = CODE_RE.match(code or "")
    if not m:
        return False
    return check_char(m["year"] + m["admin"] + m["seq"]) == m["check"]


# ---- findings ------------------------------------------------------------------------

def finding(rule, severity, zh, en, cite):
    return {"rule": rule, "severity": severity, "zh": zh, "en": en, "cite": cite}


EFFECT_SEVERITY = {"refuse": "blocking", "warn": "warning"}


def finding_from_intake_rule(rule):
    """A profile intake rule that fired → a finding (refuse → blocking, warn → warning)."""
    return finding(rule["key"], EFFECT_SEVERITY[rule["effect"]], rule["zh"], rule["en"], rule["cite"])


def is_blocking(findings):
    return any(f["severity"] == "blocking" for f in findings)


# ---- declaration windows (申报批次) ---------------------------------------------------

@dataclass(frozen=True)
class Window:
    key: str
    name: str
    deadline: dt.date
    cite: str


def _cutoff_date(year, cutoff):
    month, day = (int(part) for part in cutoff.split("-"))
    while True:
        try:
            return dt.date(year, month, day)
        except ValueError:  # 02-29 in a common year: the last day of the month
            day -= 1


def windows_for(declaration, project_year):
    """The profile's windows for a plan year, earliest deadline first.

    A window marked ``for_next_year`` closes in the year before the plan year (e.g.
    Jinjiang's first batch: 12-31 of the previous year)."""
    out = []
    for w in declaration.get("windows") or []:
        year = project_year - 1 if w.get("for_next_year") else project_year
        out.append(Window(w["key"], w["name"], _cutoff_date(year, w["cutoff"]), w["cite"]))
    return sorted(out, key=lambda w: w.deadline)


@dataclass
class WindowCheck:
    batch: Window = None  # the window the declaration falls in, None when late or no windows
    late: bool = False
    last: Window = None  # the last window of the plan year
    findings: list = field(default_factory=list)


def check_declaration_window(declaration, project_year, declared_on, cite=None):
    """Which batch a declaration made on ``declared_on`` for ``project_year`` joins.

    Late (after every window of the plan year) → one finding whose severity follows the
    profile's ``late_effect``. ``cite`` overrides the windows' own article."""
    windows = windows_for(declaration, project_year)
    if not windows:
        return WindowCheck()
    last = windows[-1]
    for window in windows:
        if declared_on <= window.deadline:
            return WindowCheck(batch=window, last=last)
    effect = declaration.get("late_effect", "warn")
    late = finding(
        "late_declaration", EFFECT_SEVERITY[effect],
        f"申报日期 {declared_on.isoformat()} 已过 {project_year} 年度最后一批（{last.name}）截止日 "
        f"{last.deadline.isoformat()}",
        f"Declared on {declared_on.isoformat()}, after the last window for {project_year} "
        f"({last.key}, closed {last.deadline.isoformat()}).",
        cite or last.cite,
    )
    return WindowCheck(late=True, last=last, findings=[late])


# ---- intake (受理) --------------------------------------------------------------------

@dataclass
class IntakeResult:
    findings: list
    batch: Window = None

    @property
    def refused(self):
        return is_blocking(self.findings)


def run_intake(profile, application, declared_on):
    """The profile's intake rules plus the declaration window, for one application."""
    findings = [finding_from_intake_rule(r) for r in profile.intake_findings(application)]
    window = check_declaration_window(
        profile.data["declaration"], application["year"], declared_on, profile.cite("declaration_window"),
    )
    return IntakeResult(findings=findings + window.findings, batch=window.batch)


# ---- the data bureau's opinions (意见) ------------------------------------------------

class Cites:
    """The article behind each check: the profile's, else the opinion request's."""

    def __init__(self, profile, fallback):
        self.profile = profile
        self.fallback = fallback

    def __call__(self, *keys):
        for key in keys:
            found = self.profile.cite(key)
            if found:
                return found
        return self.fallback


def check_pre_review(application, cite):
    """预审: clear goals, complete materials, a stated basis."""
    facts = application.get("facts") or {}
    art = cite("pre_review")
    out = []
    if not facts.get("goals_clear", True):
        out.append(finding("goals_unclear", "blocking", "项目需求和绩效目标不明确",
                           "The project's needs and performance goals are not clear.", art))
    if not facts.get("materials_complete", True):
        out.append(finding("materials_incomplete", "blocking", "申报资料不齐全",
                           "The application materials are incomplete.", art))
    if not (application.get("basis") or "").strip():
        out.append(finding("basis_missing", "warning", "未说明建设依据（立项依据）",
                           "The application states no basis for the project.", art))
    return out


def check_plan(application, declaration, declared_on, cite):
    """纳入年度计划: declared within a window of the plan year.

    Returns (findings, data) where data names the batch."""
    window = check_declaration_window(declaration, application["year"], declared_on, cite("declaration_window"))
    out = list(window.findings)
    if window.batch is not None:
        out.append(finding("declaration_batch", "info",
                           f"按期申报，列入{window.batch.name}（截止 {window.batch.deadline.isoformat()}）",
                           f"Declared in time for {window.batch.key} (closes {window.batch.deadline.isoformat()}).",
                           cite("declaration_window", "yearly_plan")))
    elif window.late:
        flags = application.get("flags") or {}
        if flags.get("urgent") or flags.get("mandated") or flags.get("emergency"):
            out.append(finding("late_but_urgent", "info",
                               "逾期申报，但属紧急或上级明确要求的项目，可依会议纪要申请追加纳入年度计划",
                               "Declared late, but urgent or mandated: it may be added to the plan on meeting minutes.",
                               cite("yearly_plan", "declaration_window")))
    data = {"batch": window.batch.key if window.batch else None, "declared_on": declared_on.isoformat()}
    return out, data


def check_technical(application, cite):
    """技术审核: on the government cloud, connected to the sharing platform, catalog present."""
    facts = application.get("facts") or {}
    out = []
    if not facts.get("on_gov_cloud", True):
        out.append(finding("not_on_gov_cloud", "blocking", "项目未部署到政务云",
                           "The project is not deployed on the government cloud.",
                           cite("gov_cloud", "technical_review")))
    if not facts.get("connected_to_sharing_platform", True):
        out.append(finding("not_on_sharing_platform", "blocking", "项目未接入数据共享交换平台",
                           "The project is not connected to the data sharing platform.",
                           cite("data_sharing", "technical_review")))
    if not application.get("catalog"):
        out.append(finding("catalog_missing", "blocking", "未编制信息资源目录",
                           "The application has no information-resource catalog.",
                           cite("catalog", "technical_review")))
    return out


def check_data_sharing(application, cite):
    """数据共享: every catalog entry is shared, and the unit's data already is."""
    facts = application.get("facts") or {}
    art = cite("data_sharing")
    out = []
    catalog = application.get("catalog") or []
    if not catalog:
        out.append(finding("catalog_missing", "warning", "未编制信息资源目录，无法评估共享情况",
                           "There is no information-resource catalog to assess sharing.",
                           cite("catalog", "data_sharing")))
    unshared = [entry["name"] for entry in catalog if not entry.get("shared")]
    if unshared:
        out.append(finding("catalog_not_shared", "blocking",
                           f"以下信息资源未共享：{'、'.join(unshared)}",
                           f"These catalog entries are not shared: {', '.join(unshared)}.", art))
    if not facts.get("data_shared", True):
        out.append(finding("unit_data_not_shared", "blocking", "单位现有系统数据未按要求共享",
                           "The unit's existing systems do not share their data as required.", art))
    return out


REGISTRY_SUBJECTS = ("pre_review", "plan", "technical", "data_sharing")


def check_opinion(subject, application, cite, declaration=None, declared_on=None):
    """(findings, data) of the data bureau's automatic checks for one subject."""
    if subject == "pre_review":
        return check_pre_review(application, cite), {}
    if subject == "plan":
        return check_plan(application, declaration, declared_on, cite)
    if subject == "technical":
        return check_technical(application, cite), {}
    if subject == "data_sharing":
        return check_data_sharing(application, cite), {}
    raise ValueError(f"the data bureau does not answer opinions on {subject!r}")


def plan_admitted(subject, verdict):
    """A plan opinion that approves (with or without conditions) puts the project in the yearly plan."""
    return subject == "plan" and verdict in ("approve", "approve_with_conditions")


# ---- history (项目历程) ---------------------------------------------------------------

def _entry(kind, from_value, to_value, note_zh, note_en, cite):
    return {"kind": kind, "from_value": from_value, "to_value": to_value,
            "note_zh": note_zh, "note_en": note_en, "cite": cite}


def _state_zh(state):
    return PROJECT_STATES.get(state, state) if state else "（无）"


def _pool_zh(pool):
    return POOLS.get(pool, pool) if pool else "（无）"


def _joined(findings, lang):
    return ("；" if lang == "zh" else "; ").join(f[lang] for f in findings)


def declared_entry(code, declared_on, batch=None):
    zh = f"申报并赋码 {code}（{declared_on}）" + (f"，{batch.name}" if batch else "")
    en = f"Declared and given code {code} on {declared_on}" + (f", {batch.key}" if batch else "")
    return _entry("declared", None, code, zh, en + ".", CODE_CITE)


def intake_entry(findings, refused):
    blocking = [f for f in findings if f["severity"] == "blocking"]
    if refused:
        zh = "不予受理：" + _joined(blocking, "zh")
        en = "Intake refused: " + _joined(blocking, "en")
        cite = blocking[0]["cite"]
    elif findings:
        zh = "予以受理，提示：" + _joined(findings, "zh")
        en = "Accepted, with notes: " + _joined(findings, "en")
        cite = findings[0]["cite"]
    else:
        zh, en, cite = "予以受理", "Accepted.", None
    return _entry("intake", None, "refused" if refused else "accepted", zh, en, cite)


def state_entry(from_state, to_state, cite, reason_zh="", reason_en=""):
    zh = f"状态由「{_state_zh(from_state)}」变为「{_state_zh(to_state)}」" + (f"：{reason_zh}" if reason_zh else "")
    en = f"State {from_state or '(none)'} → {to_state}" + (f": {reason_en}" if reason_en else "")
    return _entry("state", from_state, to_state, zh, en, cite)


def pool_entry(from_pool, to_pool, cite, reason_zh="", reason_en=""):
    zh = f"由「{_pool_zh(from_pool)}」调入「{_pool_zh(to_pool)}」" + (f"：{reason_zh}" if reason_zh else "")
    en = f"Pool {from_pool or '(none)'} → {to_pool}" + (f": {reason_en}" if reason_en else "")
    return _entry("pool", from_pool, to_pool, zh, en, cite)


def revision_entry(from_revision, to_revision):
    return _entry("revision", str(from_revision), str(to_revision),
                  f"建设单位修改后重新报送（第 {to_revision} 次修改）",
                  f"Revised and resubmitted by the unit (revision {to_revision}).", None)


def stage_entry(from_stage, to_stage, stage_name, cite):
    return _entry("stage", from_stage, to_stage, f"进入审批环节「{stage_name}」",
                  f"Approval moved to stage {to_stage}.", cite)


def opinion_entry(agency_name, subject, verdict, signed_by, cite):
    who = "自动签发" if signed_by == "auto" else f"经办人 {signed_by} 签发"
    return _entry(
        "opinion", subject, verdict,
        f"{agency_name}出具「{SUBJECTS.get(subject, subject)}」意见：{VERDICTS.get(verdict, verdict)}（{who}）",
        f"The data bureau issued its {subject} opinion: {verdict} (signed by {signed_by}).",
        cite,
    )


def returned_entries(from_state, returns, reasons, stage, cite):
    """State → returned, noting the reasons and how many times it came back."""
    zh = f"第 {returns} 次退回修改（环节 {stage}）" + (f"：{_joined(reasons, 'zh')}" if reasons else "")
    en = f"returned for revision, time {returns} (stage {stage})" + (f": {_joined(reasons, 'en')}" if reasons else "")
    return [state_entry(from_state, "returned", cite, zh, en)]


def refused_entries(from_state, reasons, barred_until, stage, cite):
    zh = f"不予批准（环节 {stage}）" + (f"：{_joined(reasons, 'zh')}" if reasons else "")
    en = f"refused (stage {stage})" + (f": {_joined(reasons, 'en')}" if reasons else "")
    if barred_until:
        zh += f"；{barred_until} 前不再组织评审"
        en += f"; no new review before {barred_until}"
    return [state_entry(from_state, "refused", cite, zh, en)]


def approved_entries(from_state, from_pool, to_pool, document_no, decision_body, approved_amount, cite):
    out = [state_entry(from_state, "approved", cite,
                       f"批复文号 {document_no}，{decision_body}，批复金额 {approved_amount} 元",
                       f"approved as {document_no} by {decision_body}, {approved_amount} yuan")]
    if from_pool != to_pool:
        out.append(pool_entry(from_pool, to_pool, cite, f"批复后纳入{_pool_zh(to_pool)}", "after approval"))
    return out


def declaration_entries(code, declared_on, intake, state, pool, pool_cite):
    """What a declaration writes: the code, the intake result, the first state and pool."""
    out = [declared_entry(code, declared_on, intake.batch), intake_entry(intake.findings, intake.refused)]
    refusal = [f for f in intake.findings if f["severity"] == "blocking"]
    out.append(state_entry(None, state, refusal[0]["cite"] if refusal else None))
    if pool:
        out.append(pool_entry(None, pool, pool_cite, "受理后纳入" + _pool_zh(pool), "accepted at intake"))
    return out
