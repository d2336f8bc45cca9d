"""Rules of the cyberspace office, the secrecy and cryptography bureaus and the MIIT
(网信办、保密局/保密机要局、密码管理局、经信厅).

Plain Python: no nameko, SQLAlchemy or marshmallow. Each rule reads the application a
unit declared and returns findings; each finding cites the article the jurisdiction's
profile names for its check (``profile.cite(check_key)``), or the opinion request's own
article when the profile names none.

Two subjects (意见事项) are answered here, whatever agency the profile asks:

* ``security`` (网络安全审核): network-security plan, protection level, measures,
  isolated systems, government cloud, classified systems (分级保护);
* ``crypto`` (密码应用与信创审核): crypto application plan (密码应用方案), domestic
  commercial algorithms (国密), 密评, and the 信创 statement on secure and reliable
  products.

The application arrives as loaded by ``contracts.application.ApplicationSchema``; a
section the unit left out may be an empty dict (marshmallow does not load defaults of
nested sections), so every read here gives the schema's default.
"""
from runtime.opinions import Draft, finding

SUBJECTS = ("security", "crypto")

# Domestic commercial cryptographic algorithms (国产商用密码算法, GM/T and GB/T standards:
# SM2 public key, SM3 hash, SM4 block cipher, SM9 identity-based, ZUC stream cipher; SM1
# and SM7 exist only inside certified hardware). A national list, the same everywhere.
DOMESTIC_ALGORITHMS = ("SM1", "SM2", "SM3", "SM4", "SM7", "SM9", "ZUC")

# What an opinion says when the isolated-system rule fires (profile parameter
# ``isolated_system_effect``): ``warn`` = strictly controlled (严格控制), ``refuse`` = not
# approved (原则上不予批准).
ISOLATED_EFFECTS = ("warn", "refuse")


class UnsupportedSubject(ValueError):
    """The security service gives no opinion on this subject."""


# ---- helpers ---------------------------------------------------------------------------

def _section(application, name):
    return application.get(name) or {}


def condition(zh, en, cite):
    """A condition of a conditional approval, Chinese first, with its article."""
    return f"{zh}（{cite}） / {en} ({cite})"


class _Checks:
    """Collects findings, conditions and data for one draft opinion."""

    def __init__(self, profile, fallback_cite):
        self.profile = profile
        self.fallback_cite = fallback_cite
        self.findings = []
        self.conditions = []
        self.data = {}

    def cite(self, check_key, fallback=None):
        return self.profile.cite(check_key, fallback=fallback or self.fallback_cite)

    def add(self, check_key, rule, severity, zh, en, cond=None, fallback=None):
        cite = self.cite(check_key, fallback)
        self.findings.append(finding(rule, severity, zh, en, cite))
        if cond is not None:
            self.conditions.append(condition(cond[0], cond[1], cite))

    def draft(self):
        return Draft(findings=self.findings, conditions=self.conditions, data=self.data)


def normalize_algorithm(name):
    """``"sm-2"``, ``" SM2 "`` and ``"sm_2"`` are all ``"SM2"``."""
    return "".join(ch for ch in str(name).upper() if ch not in " -_")


def split_algorithms(algorithms):
    """(domestic, foreign) algorithm names, normalized, each in the order given."""
    domestic, foreign = [], []
    for raw in algorithms or []:
        name = normalize_algorithm(raw)
        if not name:
            continue
        bucket = domestic if name in DOMESTIC_ALGORITHMS else foreign
        if name not in bucket:
            bucket.append(name)
    return domestic, foreign


# ---- subject: security (网络安全审核) ----------------------------------------------------

def check_security_plan(checks, application):
    """A network-security plan with a stated protection level and its measures
    (同步规划、同步建设、同步运行网络安全保障系统)."""
    plan = _section(application, "security_plan")
    checks.data["security_plan_present"] = bool(plan.get("present", False))
    checks.data["level_claimed"] = plan.get("level_claimed")
    if not plan.get("present", False):
        checks.add("security_plan", "security_plan_missing", "blocking",
                   "未提供网络安全方案（等级保护或分级保护方案）",
                   "No network-security plan (graded or classified protection plan) is provided.")
        return
    if plan.get("level_claimed") is None:
        checks.add("security_plan", "security_level_missing", "blocking",
                   "网络安全方案未明确拟定的安全保护等级",
                   "The network-security plan does not state the protection level it claims.")
    if not [m for m in plan.get("measures") or [] if str(m).strip()]:
        checks.add("security_plan", "security_measures_missing", "warning",
                   "网络安全方案未列出安全保护措施",
                   "The network-security plan lists no protection measures.",
                   cond=("补充网络安全技术和管理措施，做到同步规划、同步建设、同步运行",
                         "Add the technical and management security measures, planned, built and run with the system."))


def check_isolated_system(checks, application, effect="warn", effect_cite=None):
    """An isolated, closed system that cannot share (孤立、封闭、不能共享的系统).

    How hard the jurisdiction is on it comes from the profile parameter
    ``isolated_system_effect``: ``warn`` (严格控制, a warning with a condition; the default)
    or ``refuse`` (原则上不予批准, blocking). The finding cites the profile's
    ``isolated_system`` article, else the parameter's, else the request's."""
    facts = _section(application, "facts")
    isolated = bool(facts.get("isolated_system", False))
    checks.data["isolated_system"] = isolated
    if not isolated:
        return
    if effect not in ISOLATED_EFFECTS:
        raise ValueError(f"isolated_system_effect must be one of {ISOLATED_EFFECTS}, not {effect!r}")
    if effect == "refuse":
        checks.add("isolated_system", "isolated_system", "blocking",
                   "项目属于孤立、封闭、不能共享的信息系统，原则上不予批准",
                   "The project is an isolated, closed system that cannot share data; in principle it is not approved.",
                   fallback=effect_cite)
        return
    checks.add("isolated_system", "isolated_system", "warning",
               "项目属于孤立、封闭、不能共享的信息系统，应严格控制",
               "The project is an isolated, closed system that cannot share data; such systems are strictly controlled.",
               cond=("说明必须独立封闭建设的理由，并在具备条件时接入数据共享交换平台",
                     "State why the system must be closed and connect it to the data-sharing platform once it can."),
               fallback=effect_cite)


def check_gov_cloud(checks, application):
    """Deployed on the government cloud (依托政务云集约建设)."""
    facts = _section(application, "facts")
    on_cloud = bool(facts.get("on_gov_cloud", True))
    checks.data["on_gov_cloud"] = on_cloud
    if on_cloud:
        return
    checks.add("gov_cloud", "not_on_gov_cloud", "warning",
               "项目未部署到政务云",
               "The project is not deployed on the government cloud.",
               cond=("原则上依托政务云部署；确需自建的，说明理由并落实同等安全防护",
                     "Deploy on the government cloud; if the unit must host it itself, state why and give it equal protection."))


def check_classified(checks, application):
    """A classified system (涉密) follows classified protection (分级保护) under the
    secrecy rules, not the graded protection of ordinary systems."""
    flags = _section(application, "flags")
    classified = bool(flags.get("classified", False))
    checks.data["classified"] = classified
    if not classified:
        return
    checks.add("security_plan", "classified_system", "info",
               "项目涉密，适用涉密信息系统分级保护",
               "The project is classified; classified protection (分级保护) applies.",
               cond=("按国家保密规定落实分级保护：分级保护方案经保密行政管理部门审查，投入使用前通过分级保护测评",
                     "Apply classified protection under the secrecy rules: the plan is reviewed by the secrecy "
                     "authority and the system passes its classified-protection test before use."))


def check_security(application, profile, fallback_cite):
    """The network-security review (网络安全审核) of one application."""
    checks = _Checks(profile, fallback_cite)
    check_security_plan(checks, application)
    check_isolated_system(checks, application, profile.parameter("isolated_system_effect", "warn"),
                          profile.parameter_cite("isolated_system_effect"))
    check_gov_cloud(checks, application)
    check_classified(checks, application)
    return checks.draft()


# ---- subject: crypto (密码应用与信创审核) ---------------------------------------------------

def check_crypto_plan(checks, application):
    """A crypto application plan (密码应用方案) built on domestic commercial algorithms
    (国密), with the commercial-crypto security evaluation (密评) planned."""
    plan = _section(application, "crypto_plan")
    domestic, foreign = split_algorithms(plan.get("algorithms"))
    checks.data.update({
        "crypto_plan_present": bool(plan.get("present", False)),
        "domestic_algorithms": domestic,
        "foreign_algorithms": foreign,
        "evaluation_planned": bool(plan.get("evaluation_planned", False)),
    })
    if not plan.get("present", False):
        checks.add("crypto_plan", "crypto_plan_missing", "blocking",
                   "未提供密码应用方案",
                   "No crypto application plan (密码应用方案) is provided.")
        return
    if not domestic:
        listed = "、".join(foreign) if foreign else "无"
        checks.add("crypto_domestic_algorithms", "crypto_no_domestic_algorithm", "blocking",
                   f"密码应用方案未采用国产商用密码算法（SM2/SM3/SM4 等）；所列算法：{listed}",
                   f"The crypto plan uses no domestic commercial algorithm (SM2/SM3/SM4 ...); listed: "
                   f"{', '.join(foreign) if foreign else 'none'}.")
    elif foreign:
        checks.add("crypto_domestic_algorithms", "crypto_foreign_algorithms", "warning",
                   f"密码应用方案在国产商用密码算法之外还使用了非国产算法：{'、'.join(foreign)}",
                   f"Besides domestic algorithms the crypto plan uses foreign ones: {', '.join(foreign)}.",
                   cond=(f"核心保护功能由国产商用密码算法承担，{'、'.join(foreign)} 仅用于兼容并逐步替换",
                         f"Domestic algorithms carry the core protection; {', '.join(foreign)} only for "
                         "compatibility, to be replaced."))
    if not plan.get("evaluation_planned", False):
        checks.add("crypto_evaluation", "crypto_evaluation_not_planned", "info",
                   "未计划开展商用密码应用安全性评估（密评）",
                   "No commercial-crypto security evaluation (密评) is planned.",
                   cond=("验收前完成商用密码应用安全性评估（密评），评估报告作为验收材料",
                         "Pass the commercial-crypto security evaluation (密评) before acceptance; its report is "
                         "part of the acceptance dossier."))


def check_xinchuang(checks, application):
    """Secure and reliable software and hardware (信创): a statement on every product,
    and products that are not secure and reliable named."""
    xinchuang = _section(application, "xinchuang")
    products = xinchuang.get("products") or []
    unreliable = [p.get("name", "?") for p in products if not p.get("secure_reliable", False)]
    checks.data.update({
        "xinchuang_statement": bool(xinchuang.get("statement", False)),
        "unreliable_products": unreliable,
    })
    if not xinchuang.get("statement", False):
        checks.add("xinchuang_statement", "xinchuang_statement_missing", "blocking",
                   "未对软硬件产品的安全可靠情况进行说明（信创说明）",
                   "The application does not state the security and reliability of its software and hardware (信创).")
    if unreliable:
        names = "、".join(unreliable)
        checks.add("xinchuang_products", "xinchuang_products_unreliable", "warning",
                   f"以下产品不属于安全可靠产品：{names}",
                   f"These products are not secure and reliable: {', '.join(unreliable)}.",
                   cond=(f"以安全可靠产品替换：{names}；确需使用的，说明理由并经审核",
                         f"Replace with secure and reliable products: {', '.join(unreliable)}; if one must stay, "
                         "state why for review."))


def check_crypto(application, profile, fallback_cite):
    """The crypto application and 信创 review (密码应用与信创审核) of one application."""
    checks = _Checks(profile, fallback_cite)
    check_crypto_plan(checks, application)
    check_xinchuang(checks, application)
    return checks.draft()


CHECKS = {"security": check_security, "crypto": check_crypto}


def check(subject, application, profile, fallback_cite):
    """Draft the opinion on ``subject`` for ``application`` (a :class:`Draft`)."""
    try:
        rules = CHECKS[subject]
    except KeyError:
        raise UnsupportedSubject(f"the security service gives no opinion on subject {subject!r}") from None
    return rules(application, profile, fallback_cite)


def subject_cite(profile, subject, kind=None):
    """The article under which this jurisdiction asks for an opinion on ``subject``
    (used by a dry run, which has no opinion request to fall back on)."""
    kinds = [kind] if kind else []
    kinds += [k for k in ("build", "service", "om") if k != kind]
    for k in kinds:
        for stage in profile.data["pipelines"].get(k, []):
            for spec in stage.get("opinions") or []:
                if spec["subject"] == subject:
                    return spec["cite"]
    return f"suite rule: no opinion on {subject} is asked in this jurisdiction's pipelines"


# ---- compliance ledger (合规台账) -----------------------------------------------------------

def compliance_status(entries):
    """The project's standing from its opinions: the latest verdict of each (agency,
    subject) counts; any reject → non_compliant; any conditional → conditional; none →
    unknown (see ``contracts.rpc_security.COMPLIANCE_STATUSES``)."""
    latest = {}
    for entry in sorted(entries, key=lambda e: e["at"]):
        latest[(entry["agency"], entry["subject"])] = entry["verdict"]
    if not latest:
        return "unknown"
    verdicts = set(latest.values())
    if "reject" in verdicts:
        return "non_compliant"
    if "approve_with_conditions" in verdicts:
        return "conditional"
    return "compliant"
