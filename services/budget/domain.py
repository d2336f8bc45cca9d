"""Finance rules (财政局) and the investment review centre's cost review (投资评审中心).

Plain Python: no nameko, SQLAlchemy or marshmallow. Every number comes from the
jurisdiction's profile (``parameters``) or from the stored envelopes, never from here.
``cite(check_key)`` is the profile's article behind a check (or the request's article).
"""
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from contracts.enums import FUNDING_SOURCES
from runtime.opinions import Draft, finding

# profile parameter names (policy/profiles/<jurisdiction>.yaml ``parameters``)
COST_UNBASED_CUT_RATIO = "cost_unbased_cut_ratio"  # a line with no price basis (价格依据) is cut by this share
COST_PRICE_CEILINGS = "cost_price_ceilings"  # {category: ceiling unit price in yuan}

CATEGORY_ZH = {
    "hardware": "硬件", "software": "软件", "development": "软件开发", "integration": "系统集成",
    "service": "服务", "other": "其他",
}


# ---- funding (资金审核) ----------------------------------------------------------------

@dataclass(frozen=True)
class Envelope:
    """The yearly envelope (年度预算额度) of one funding source."""

    year: int
    source: str
    total: int
    committed: int

    @property
    def remaining(self):
        return self.total - self.committed


def check_funding(application, envelope, cite):
    """The funding opinion: a source exists, it covers the amount, and its envelope has room.

    ``envelope`` is the :class:`Envelope` of ``(application.year, funding.source)`` or None.
    """
    funding = application.get("funding")
    if not funding:
        return Draft(
            findings=[finding(
                "funding_source_missing", "blocking",
                "未落实资金来源（经费保障）",
                "No funding source is stated for the project.",
                cite("funding_source"),
            )],
            data={"source": None, "remaining_before": None},
        )
    source, amount, year = funding["source"], application["amount"], application["year"]
    source_zh = FUNDING_SOURCES.get(source, source)
    findings = []
    if funding["amount"] < amount:
        findings.append(finding(
            "funding_amount_short", "blocking",
            f"落实资金 {funding['amount']} 元少于估算总投资 {amount} 元",
            f"Funding of {funding['amount']} yuan is less than the project amount of {amount} yuan.",
            cite("funding_amount"),
        ))
    remaining = envelope.remaining if envelope is not None else 0
    if envelope is None:
        findings.append(finding(
            "funding_envelope_missing", "blocking",
            f"{year} 年度{source_zh}未安排预算额度",
            f"There is no {year} envelope for funding source {source}.",
            cite("funding_amount"),
        ))
    elif remaining < amount:
        findings.append(finding(
            "funding_envelope_exhausted", "blocking",
            f"{year} 年度{source_zh}剩余额度 {remaining} 元，不足以安排 {amount} 元",
            f"The {year} envelope of {source} has {remaining} yuan left, short of {amount} yuan.",
            cite("funding_amount"),
        ))
    return Draft(findings=findings, data={"source": source, "remaining_before": remaining})


# ---- cost review (造价评审) ------------------------------------------------------------

class CostParameterError(ValueError):
    """A profile's cost-review parameter does not have the expected shape."""


@dataclass(frozen=True)
class CostRules:
    """The cost-review rules a profile states; a rule whose parameter is absent is off."""

    unbased_cut_ratio: Decimal = None
    unbased_cite: str = None
    price_ceilings: dict = None
    ceilings_cite: str = None


def cost_rules(unbased_cut_ratio=None, unbased_cite=None, price_ceilings=None, ceilings_cite=None):
    """Build :class:`CostRules` from profile parameter values, checking their shape."""
    ratio = None
    if unbased_cut_ratio is not None:
        if isinstance(unbased_cut_ratio, bool):
            raise CostParameterError(f"{COST_UNBASED_CUT_RATIO} must be a number between 0 and 1")
        try:
            ratio = Decimal(str(unbased_cut_ratio))
        except InvalidOperation:
            raise CostParameterError(f"{COST_UNBASED_CUT_RATIO} must be a number between 0 and 1") from None
        if not Decimal(0) <= ratio <= Decimal(1):
            raise CostParameterError(f"{COST_UNBASED_CUT_RATIO} must be between 0 and 1, not {unbased_cut_ratio}")
    ceilings = None
    if price_ceilings is not None:
        if not isinstance(price_ceilings, dict):
            raise CostParameterError(f"{COST_PRICE_CEILINGS} must map a category to a ceiling in yuan")
        for category, ceiling in price_ceilings.items():
            if category not in CATEGORY_ZH:
                raise CostParameterError(f"{COST_PRICE_CEILINGS}: unknown category {category!r}")
            if isinstance(ceiling, bool) or not isinstance(ceiling, int) or ceiling < 0:
                raise CostParameterError(f"{COST_PRICE_CEILINGS}.{category} must be whole yuan >= 0")
        ceilings = dict(price_ceilings)
    return CostRules(ratio, unbased_cite, ceilings, ceilings_cite)


def _percent(ratio):
    text = format((ratio * 100).normalize(), "f")
    return text


def review_line(line, rules):
    """One estimate line → reviewed unit price and amount, with the reasons for each cut.

    The price ceiling applies first (the unit price is cut to the ceiling); a line with
    no price basis is then cut by the ratio, rounded to whole yuan (half up).
    """
    quantity, unit_price = line["quantity"], line["unit_price"]
    category = line["category"]
    price = unit_price
    reasons = []
    ceiling = (rules.price_ceilings or {}).get(category)
    if ceiling is not None and price > ceiling:
        reasons.append({
            "rule": "price_ceiling",
            "zh": f"单价 {price} 元超过{CATEGORY_ZH.get(category, category)}类单价上限 {ceiling} 元，按上限核定",
            "en": f"Unit price {price} yuan exceeds the {category} ceiling of {ceiling} yuan; cut to the ceiling.",
            "cite": rules.ceilings_cite,
        })
        price = ceiling
    if rules.unbased_cut_ratio is not None and not (line.get("basis") or "").strip():
        cut = rules.unbased_cut_ratio
        reviewed_price = int((Decimal(price) * (1 - cut)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        reasons.append({
            "rule": "unbased_cut",
            "zh": f"无价格依据，单价核减 {_percent(cut)}%（{price} 元核定为 {reviewed_price} 元）",
            "en": f"No price basis; unit price cut by {_percent(cut)}% ({price} to {reviewed_price} yuan).",
            "cite": rules.unbased_cite,
        })
        price = reviewed_price
    return {
        "item": line["item"],
        "category": category,
        "quantity": quantity,
        "unit_price": unit_price,
        "basis": line.get("basis") or "",
        "requested": quantity * unit_price,
        "reviewed_unit_price": price,
        "reviewed": quantity * price,
        "reasons": reasons,
    }


def review_estimate(lines, rules):
    """Review every line; totals in whole yuan."""
    reviewed_lines = []
    for number, line in enumerate(lines, start=1):
        reviewed = review_line(line, rules)
        reviewed["line_no"] = number
        reviewed_lines.append(reviewed)
    requested = sum(line["requested"] for line in reviewed_lines)
    reviewed = sum(line["reviewed"] for line in reviewed_lines)
    return {
        "requested_amount": requested,
        "reviewed_amount": reviewed,
        "reduction": requested - reviewed,
        "lines": reviewed_lines,
    }


def check_cost(application, rules, cite):
    """The cost opinion (造价审核): approve at the reviewed amount; a reduction is a condition."""
    lines = application.get("estimate") or []
    if not lines:
        return Draft(
            findings=[finding(
                "cost_estimate_missing", "blocking",
                "申报材料无估算明细，无法开展造价评审",
                "The application has no estimate lines; there is nothing to review.",
                cite("cost_review"),
            )],
            data={"requested_amount": application["amount"], "reviewed_amount": None, "reduction": None, "lines": []},
        )
    review = review_estimate(lines, rules)
    findings, conditions = [], []
    if review["reduction"] > 0:
        cut_lines = sum(1 for line in review["lines"] if line["reasons"])
        findings.append(finding(
            "cost_reduced", "info",
            f"造价评审核减 {review['reduction']} 元（{cut_lines} 项），审定金额 {review['reviewed_amount']} 元",
            f"The cost review cut {review['reduction']} yuan over {cut_lines} line(s); "
            f"reviewed amount {review['reviewed_amount']} yuan.",
            cite("cost_review"),
        ))
        conditions.append(
            f"按审定金额 {review['reviewed_amount']} 元安排预算（核减 {review['reduction']} 元） / "
            f"Budget at the reviewed amount of {review['reviewed_amount']} yuan "
            f"(cut by {review['reduction']} yuan)."
        )
    return Draft(findings=findings, conditions=conditions, data=review)
