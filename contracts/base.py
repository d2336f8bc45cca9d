"""Schema base class and bilingual validation errors.

marshmallow reports errors as English strings. ``bilingual_errors`` turns them into a
flat list of ``{field, rule, zh, en}`` so that a caller learns which field broke
which rule in both languages.
"""
import re

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .errors import ValidationFailed
from .fastpath import NotPlain, checker, dumper, loader, passthrough


class ContractSchema(Schema):
    """Every contract schema refuses unknown fields and carries a version."""

    #: bump when a field is added/removed/changed; receivers check the major part
    VERSION = "1.0"

    class Meta:
        unknown = RAISE
        ordered = True


# (regex over marshmallow's English message, rule code, Chinese template)
_PATTERNS = [
    (r"^Missing data for required field\.$", "required", "必填字段缺失"),
    (r"^Field may not be null\.$", "not_null", "不能为空值"),
    (r"^Unknown field\.$", "unknown_field", "未定义的字段"),
    (r"^Not a valid integer\.$", "type_integer", "应为整数"),
    (r"^Not a valid number\.$", "type_number", "应为数字"),
    (r"^Not a valid string\.$", "type_string", "应为字符串"),
    (r"^Not a valid boolean\.$", "type_boolean", "应为布尔值"),
    (r"^Not a valid date\.$", "type_date", "应为日期（YYYY-MM-DD）"),
    (r"^Not a valid datetime\.$", "type_datetime", "应为日期时间（ISO 8601）"),
    (r"^Not a valid list\.$", "type_list", "应为列表"),
    (r"^Not a valid mapping type\.$", "type_mapping", "应为对象"),
    (r"^Invalid input type\.$", "type", "类型不正确"),
    (r"^Not a valid UUID\.$", "type_uuid", "应为 UUID"),
    (r"^Not a valid email address\.$", "email", "邮箱格式不正确"),
    (r"^Must be one of: (?P<choices>.*)\.$", "one_of", "取值必须是以下之一：{choices}"),
    (r"^Must be greater than or equal to (?P<min>\S+) and less than or equal to (?P<max>\S+)\.$",
     "range", "取值必须在 {min} 与 {max} 之间"),
    (r"^Must be greater than or equal to (?P<min>\S+)\.$", "min", "取值不能小于 {min}"),
    (r"^Must be greater than (?P<min>\S+)\.$", "min_exclusive", "取值必须大于 {min}"),
    (r"^Must be less than or equal to (?P<max>\S+)\.$", "max", "取值不能大于 {max}"),
    (r"^Length must be between (?P<min>\d+) and (?P<max>\d+)\.$", "length", "长度必须在 {min} 到 {max} 之间"),
    (r"^Shorter than minimum length (?P<min>\d+)\.$", "min_length", "长度不能少于 {min}"),
    (r"^Longer than maximum length (?P<max>\d+)\.$", "max_length", "长度不能超过 {max}"),
    (r"^Length must be (?P<equal>\d+)\.$", "exact_length", "长度必须为 {equal}"),
    (r"^String does not match expected pattern\.$", "pattern", "格式不正确"),
    (r"^Invalid value\.$", "invalid", "取值无效"),
]

# custom validators raise "rule:<code>|<zh>|<en>" so that the rule code travels too
_CUSTOM = re.compile(r"^rule:(?P<rule>[a-z0-9_]+)\|(?P<zh>[^|]*)\|(?P<en>.*)$")


def rule_message(rule, zh, en):
    """A ValidationError message that keeps its rule code and both languages."""
    return f"rule:{rule}|{zh}|{en}"


def _translate(message):
    m = _CUSTOM.match(message)
    if m:
        return m.group("rule"), m.group("zh"), m.group("en")
    for pattern, rule, zh in _PATTERNS:
        m = re.match(pattern, message)
        if m:
            return rule, zh.format(**m.groupdict()), message
    return "invalid", "取值无效", message


def bilingual_errors(messages, prefix=""):
    """Flatten marshmallow's nested error dict into ``[{field, rule, zh, en}]``."""
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                name = prefix or "_schema"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(bilingual_errors(value, name))
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            if isinstance(item, (dict, list, tuple)):
                out.extend(bilingual_errors(item, prefix))
            else:
                rule, zh, en = _translate(str(item))
                out.append({"field": prefix or "_schema", "rule": rule, "zh": zh, "en": en})
    else:
        rule, zh, en = _translate(str(messages))
        out.append({"field": prefix or "_schema", "rule": rule, "zh": zh, "en": en})
    return out


_INSTANCES = {}


def schema_instance(schema):
    """One instance per schema class, reused: building a schema (and, through its Nested
    fields, every schema below it) costs far more than a load or dump with it, and a
    marshmallow schema keeps no state between calls."""
    if isinstance(schema, type):
        found = _INSTANCES.get(schema)
        if found is None:
            found = _INSTANCES[schema] = schema()
        return found
    return schema


NOT_PLAIN = object()


def _fast_or(fast, data):
    """``fast(data)``, or NOT_PLAIN when there is no fast path or the data is not plain."""
    if fast is None:
        return NOT_PLAIN
    try:
        return fast(data)
    except NotPlain:
        return NOT_PLAIN


def load(schema, data, *, partial=False, in_place=False):
    """Load ``data`` through ``schema`` or raise :class:`ValidationFailed`. Plainly valid
    data takes the schema's fast path (``contracts.fastpath``); anything else, and every
    error, is marshmallow's.

    ``in_place``: ``data`` is the caller's to give away (decoded from a message for this
    load). When it already is what the load would give, it is returned itself, checked
    and not copied (``contracts.fastpath.checker``)."""
    schema = schema_instance(schema)
    if not partial:
        if in_place and _fast_or(checker(schema), data) is not NOT_PLAIN:
            return data
        loaded = _fast_or(loader(schema), data)
        if loaded is not NOT_PLAIN:
            return loaded
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationFailed.from_errors(
            [{"field": "_schema", "rule": "type_mapping", "zh": "应为对象", "en": "Not a valid mapping type."}],
            type(schema).__name__,
        )
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise ValidationFailed.from_errors(
            bilingual_errors(exc.messages), type(schema).__name__
        ) from None


def dump(schema, obj, *, check=True):
    """Dump ``obj`` through ``schema`` and, with ``check``, make sure the result itself
    loads (the sender's guarantee). marshmallow's dump only serialises: the check loads
    the output again, which costs more than the dump.

    With ``check``, data that is already its own dump (``contracts.fastpath.passthrough``)
    and plainly valid is returned as it is, checked in one pass: the result may be ``obj``
    itself, so serialise it before changing ``obj``."""
    schema = schema_instance(schema)
    if check and passthrough(schema) and (_fast_or(checker(schema), obj) is not NOT_PLAIN
                                          or _fast_or(loader(schema), obj) is not NOT_PLAIN):
        return obj
    data = _fast_or(dumper(schema), obj)
    if data is NOT_PLAIN:
        data = schema.dump(obj)
    if not check or _fast_or(loader(schema), data) is not NOT_PLAIN:
        return data
    errors = schema.validate(data)
    if errors:
        raise ValidationFailed.from_errors(bilingual_errors(errors), type(schema).__name__)
    return data


# ---- small reusable field helpers -------------------------------------------------

def one_of(choices, zh_name=""):
    choices = list(choices)
    return validate.OneOf(
        choices,
        error=rule_message(
            "one_of",
            f"{zh_name}取值必须是以下之一：{', '.join(map(str, choices))}",
            f"Must be one of: {', '.join(map(str, choices))}.",
        ),
    )


def yuan(**kwargs):
    """Money in whole yuan (integer, never float)."""
    return fields.Integer(
        strict=True,
        validate=validate.Range(
            min=0, error=rule_message("min", "金额不能为负数（单位：元）", "Amount must be >= 0 (yuan).")
        ),
        **kwargs,
    )


def text(max_len=2000, required=True, **kwargs):
    return fields.String(
        required=required,
        validate=validate.Length(
            min=1 if required else 0,
            max=max_len,
            error=rule_message("length", f"长度必须在 1 到 {max_len} 之间", f"Length must be between 1 and {max_len}."),
        ),
        **kwargs,
    )
