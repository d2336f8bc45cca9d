"""Enumerations shared by every service. Chinese term beside each English key."""

JURISDICTIONS = {
    "sichuan": "四川省（省级）",
    "bazhong": "巴中市（智慧巴中）",
    "jinjiang": "成都市锦江区（智慧锦江）",
    "guangyuan": "广元市",
    "dalate": "达拉特旗（数字达拉特）",
}

PROJECT_KINDS = {
    "build": "建设类",
    "service": "购买服务类",
    "om": "运维类",
}

# Agencies that issue opinions. The local name of each comes from the profile.
AGENCIES = {
    "data_bureau": "数据主管部门（大数据中心/数据局/领导小组办公室/信息化办）",
    "drc": "发展改革委",
    "finance": "财政局",
    "cost_review": "投资评审中心",
    "cac": "网信办",
    "secrecy": "保密局（保密机要局）",
    "crypto": "密码管理局",
    "miit": "经济和信息化厅",
    "public_security": "公安机关",
}

# Which agency service answers for which agency.
AGENCY_SERVICE = {
    "data_bureau": "registry",
    "drc": "review",
    "finance": "budget",
    "cost_review": "budget",
    "cac": "security",
    "secrecy": "security",
    "crypto": "security",
    "miit": "security",
    "public_security": "filing",
}

SERVICES = ("registry", "review", "budget", "security", "filing")

# What an opinion is about (意见事项)
SUBJECTS = {
    "pre_review": "预审",
    "plan": "纳入年度计划",
    "technical": "技术审核",
    "data_sharing": "数据共享",
    "security": "网络安全审核",
    "crypto": "密码应用与信创审核",
    "grading": "等级保护定级审核",
    "funding": "资金审核",
    "cost": "造价审核",
}

SUBJECT_SERVICE = {
    "pre_review": "registry",
    "plan": "registry",
    "technical": "registry",
    "data_sharing": "registry",
    "security": "security",
    "crypto": "security",
    "grading": "filing",
    "funding": "budget",
    "cost": "budget",
}

VERDICTS = {
    "approve": "同意",
    "approve_with_conditions": "有条件同意",
    "reject": "不同意",
}

POOLS = {
    "reserve": "储备库",
    "yearly_plan": "年度计划",
    "rolling": "三年滚动库",
    "to_build": "待建库",
    "library": "项目库",
    "finance_alternate": "财政备选库",
    "operation": "运行库",
}

# Project states as the registry ledger records them (项目状态)
PROJECT_STATES = {
    "declared": "已申报",
    "intake_refused": "不予受理",
    "in_approval": "审批中",
    "returned": "退回修改",
    "refused": "不予批准",
    "approved": "已批复",
}

DOCUMENT_TYPES = {
    "proposal": "项目建议书",
    "fsr": "可行性研究报告",
    "preliminary_design": "初步设计方案（含投资概算）",
    "implementation_plan": "项目实施方案",
    "service_requirements": "服务需求方案",
    "requirements_plan": "项目需求方案",
    "construction_plan": "项目建设方案",
    "technical_plan": "技术（设计）方案",
    "om_plan": "运维方案",
}

FUNDING_SOURCES = {
    "budget": "本级财政预算",
    "capital_budget": "预算内基本建设资金",
    "special_fund": "专项资金",
    "superior": "上级专项资金",
    "bond": "专项债券",
    "self": "单位自筹",
    "social": "社会资本",
}

ROLES = {
    "unit": "项目建设单位",
    "officer": "审核部门经办人员",
    "admin": "系统管理员",
}
