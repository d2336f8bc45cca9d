"""Conditions a profile can state, evaluated against a project (plain Python, no I/O).

A condition is a small mapping:

* ``{threshold: NAME}``: the amount meets the profile's named threshold;
* ``{flag: NAME}`` / ``{not_flag: NAME}``: an application flag (urgent, emergency, ...);
* ``{kind: [build, service]}``: the project kind is one of these;
* ``{fact: NAME}`` / ``{not_fact: NAME}``: an intake fact stated by the unit;
* ``{gt: {field: "facts.unit_system_count_delta", value: 0}}``: a numeric field
  (dotted path into the application) is greater than a value;
* ``{missing: "funding"}``: a field is absent, null, false or empty;
* ``{in: {field: "funding.source", values: [budget, bond]}}``: a field (dotted path)
  equals one of the values (absent → false);
* ``{all: [..]}``, ``{any: [..]}``, ``{not: {..}}``.
"""
from decimal import Decimal

FLAG_NAMES = {"urgent", "mandated", "planned", "emergency", "classified", "in_reserve_pool", "in_rolling_pool", "simple"}
OPERATORS = {"threshold", "flag", "not_flag", "kind", "fact", "not_fact", "gt", "missing", "in", "all", "any", "not"}


def resolve(project, path):
    value = project
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class ConditionError(ValueError):
    pass


def meets_threshold(amount, threshold):
    """Boundary semantics: 以上/含 include the number, 以下/不含 exclude it (bazhong art. 34)."""
    value = Decimal(threshold["amount"])
    amount = Decimal(amount)
    direction = threshold["direction"]
    inclusive = threshold["inclusive"]
    if direction == "at_least":
        return amount >= value if inclusive else amount > value
    if direction == "below":
        return amount <= value if inclusive else amount < value
    raise ConditionError(f"unknown threshold direction {direction!r}")


def check_condition(cond, thresholds, path="when"):
    """Validate a condition's shape against the profile (used by the loader)."""
    if not isinstance(cond, dict) or len(cond) != 1:
        raise ConditionError(f"{path}: a condition is a mapping with exactly one operator")
    (op, arg), = cond.items()
    if op not in OPERATORS:
        raise ConditionError(f"{path}: unknown operator {op!r} (known: {sorted(OPERATORS)})")
    if op == "threshold" and arg not in thresholds:
        raise ConditionError(f"{path}: unknown threshold {arg!r}")
    if op in ("flag", "not_flag") and arg not in FLAG_NAMES:
        raise ConditionError(f"{path}: unknown flag {arg!r}")
    if op in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise ConditionError(f"{path}.{op}: needs a non-empty list")
        for i, sub in enumerate(arg):
            check_condition(sub, thresholds, f"{path}.{op}[{i}]")
    if op == "not":
        check_condition(arg, thresholds, f"{path}.not")
    if op == "gt" and not (isinstance(arg, dict) and set(arg) == {"field", "value"}):
        raise ConditionError(f"{path}.gt: needs {{field, value}}")
    if op == "missing" and not isinstance(arg, str):
        raise ConditionError(f"{path}.missing: needs a field path")
    if op == "in" and not (isinstance(arg, dict) and set(arg) == {"field", "values"}
                           and isinstance(arg["field"], str) and isinstance(arg["values"], list) and arg["values"]):
        raise ConditionError(f"{path}.in: needs {{field, values}} with a non-empty list of values")


def evaluate(cond, project, thresholds):
    """``project`` is a dict with ``amount``, ``kind``, ``flags`` and ``facts``."""
    if cond is None:
        return True
    (op, arg), = cond.items()
    if op == "threshold":
        return meets_threshold(project["amount"], thresholds[arg])
    if op == "flag":
        return bool((project.get("flags") or {}).get(arg))
    if op == "not_flag":
        return not (project.get("flags") or {}).get(arg)
    if op == "kind":
        return project["kind"] in (arg if isinstance(arg, list) else [arg])
    if op == "fact":
        return bool((project.get("facts") or {}).get(arg))
    if op == "not_fact":
        return not (project.get("facts") or {}).get(arg)
    if op == "gt":
        value = resolve(project, arg["field"])
        return value is not None and Decimal(value) > Decimal(arg["value"])
    if op == "missing":
        return not resolve(project, arg)
    if op == "in":
        value = resolve(project, arg["field"])
        return value is not None and value in arg["values"]
    if op == "all":
        return all(evaluate(c, project, thresholds) for c in arg)
    if op == "any":
        return any(evaluate(c, project, thresholds) for c in arg)
    if op == "not":
        return not evaluate(arg, project, thresholds)
    raise ConditionError(f"unknown operator {op!r}")
