"""Public security's rules (公安机关): graded protection (网络安全等级保护) of a system.

Plain Python: no nameko, SQLAlchemy or marshmallow. Grading follows GB/T 22240-2020
(《信息安全技术 网络安全等级保护定级指南》): the security level of business information
(业务信息安全保护等级) and of system service (系统服务安全保护等级) are each read from
the grid *object harmed × degree of harm*; the system's level is the higher of the two.
"""
from runtime.opinions import Draft, finding

GRADING_STANDARD = "GB/T 22240-2020"

# (object harmed 受侵害的客体, degree of harm 损害程度) -> level; GB/T 22240-2020 tables 2 and 3
HARM_GRID = {
    # 公民、法人和其他组织的合法权益
    ("citizens", "general"): 1,
    ("citizens", "serious"): 2,
    ("citizens", "especially_serious"): 2,
    # 社会秩序、公共利益
    ("public", "general"): 2,
    ("public", "serious"): 3,
    ("public", "especially_serious"): 4,
    # 国家安全
    ("national", "general"): 3,
    ("national", "serious"): 4,
    ("national", "especially_serious"): 5,
}

FILING_FROM_LEVEL = 2  # 第二级及以上: 备案 with public security
YEARLY_TEST_FROM_LEVEL = 3  # 第三级及以上: 每年至少一次等级测评

LEVEL_ZH = {1: "第一级", 2: "第二级", 3: "第三级", 4: "第四级", 5: "第五级"}


def harm_level(harm_object, degree):
    """The level for one aspect (business information or system service)."""
    try:
        return HARM_GRID[(harm_object, degree)]
    except KeyError:
        raise ValueError(f"unknown harm object/degree {harm_object!r}/{degree!r} ({GRADING_STANDARD})") from None


def grade_system(grading):
    """``(level, business_level, service_level)`` per GB/T 22240-2020.

    ``grading`` holds ``business_object``, ``business_degree``, ``service_object`` and
    ``service_degree``; the system's level is the higher of the two aspects.
    """
    business_level = harm_level(grading["business_object"], grading["business_degree"])
    service_level = harm_level(grading["service_object"], grading["service_degree"])
    return max(business_level, service_level), business_level, service_level


def check_grading(application, cite):
    """The grading opinion (定级审核) on an application.

    ``cite(check_key)`` gives the article behind a check in this jurisdiction
    (``grading``, ``dengbao_test``), or the opinion request's article.
    """
    grading = application.get("grading")
    if not grading:
        return Draft(
            findings=[finding(
                "grading_missing", "blocking",
                "申报材料未提供等级保护定级要素（受侵害客体及损害程度），无法定级",
                "The application gives no grading facts (object harmed and degree of harm); the system cannot be graded.",
                cite("grading"),
            )],
            data={"level": None, "business_level": None, "service_level": None},
        )
    level, business_level, service_level = grade_system(grading)
    findings = [finding(
        "grading_result", "info",
        f"定级结果：{LEVEL_ZH[level]}（业务信息{LEVEL_ZH[business_level]}，系统服务{LEVEL_ZH[service_level]}）",
        f"Graded at level {level} (business information {business_level}, system service {service_level}).",
        GRADING_STANDARD,
    )]
    conditions = []
    plan = application.get("security_plan") or {}
    claimed = plan.get("level_claimed")
    if claimed is None or claimed < level:
        stated = "未写明等级" if claimed is None else LEVEL_ZH.get(claimed, str(claimed))
        findings.append(finding(
            "plan_level_below_grade", "blocking",
            f"等保方案级别低于定级结果：方案为{stated}，定级结果为{LEVEL_ZH[level]}",
            f"The security plan's level is below the grading: plan states "
            f"{'no level' if claimed is None else claimed}, grading gives {level}.",
            cite("grading"),
        ))
    if level >= FILING_FROM_LEVEL:
        grading_cite = cite("grading")
        conditions.append(
            f"系统定级为{LEVEL_ZH[level]}，应向公安机关办理等级保护定级备案（{grading_cite}） / "
            f"Level {level}: file the grading (备案) with public security ({grading_cite})."
        )
    if level >= YEARLY_TEST_FROM_LEVEL and not plan.get("yearly_test_planned"):
        test_cite = cite("dengbao_test")
        findings.append(finding(
            "yearly_test_not_planned", "warning",
            f"{LEVEL_ZH[level]}系统应每年至少开展一次等级测评，等保方案未作安排",
            f"A level-{level} system needs a graded-protection test every year; the plan does not provide for it.",
            test_cite,
        ))
        conditions.append(
            f"每年至少开展一次网络安全等级保护测评（{test_cite}） / "
            f"Run a graded-protection test (等保测评) at least once a year ({test_cite})."
        )
    return Draft(
        findings=findings,
        conditions=conditions,
        data={"level": level, "business_level": business_level, "service_level": service_level},
    )
