"""A fast path for loading well-formed data through a contract.

marshmallow spends 2–3 µs on every field it loads (a 1.9 KB application, 86 fields:
~230 µs), and every event a service receives, every event it emits (the check) and every
RPC argument goes through it. Almost all of that data is already in its canonical form —
another service dumped it through the same contract — so most of marshmallow's work is
proving what is already true.

``loader(schema)`` builds, once per schema instance, a plain function that loads data
*only when it is plainly valid*: exact JSON types (``str``, ``int``, ``bool``, ``list``,
``dict``), every field's own validators passed, no unknown key, every required field
present, the schema's ``@validates_schema`` hooks passed. Its source is written for the
schema's fields and compiled, so a load runs no loop over fields and calls no function
for a scalar field's type test, nor for marshmallow's own ``OneOf``, ``Range``,
``Regexp`` and ``Length`` validators, whose tests are written inline as comparisons; a
list of nested objects is loaded by a comprehension written into the loader. It returns
exactly what ``schema.load`` would (the same keys, defaults and types). For anything
else — a value marshmallow would coerce (``"5"`` for an integer), a missing required
field, a validator that refuses, an unknown key — it raises :class:`NotPlain` and the
caller hands the data to marshmallow, which decides and words the errors. The fast path
can therefore never accept what marshmallow refuses, nor refuse what it accepts; it can
only skip work. ``tests/unit/test_contract_fastpath.py`` checks that on every contract
against random valid and broken inputs, and at the bounds of every validator written
inline.

A schema that uses anything this module does not model (another field type, a field with
its own pre/post-load functions, ``@pre_load``/``@post_load``/``@validates`` hooks,
``unknown=INCLUDE``, dotted attributes) gets no fast path: ``loader`` returns ``None`` and
marshmallow does all the work, as before.

It reads a schema's hook table (``_hooks``), which marshmallow keeps private, and calls
its ``@validates_schema`` rules as marshmallow's private ``_invoke_schema_validators``
does for one object (the same arguments, in the same order). That is one reason
marshmallow is pinned (requirements.txt); the differential test fails if either changes
meaning.
"""
from marshmallow import EXCLUDE, RAISE, ValidationError, fields, validate
from marshmallow.decorators import POST_DUMP, POST_LOAD, PRE_DUMP, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import missing


class NotPlain(Exception):
    """The data is not plainly valid: let marshmallow load it."""


_UNSUPPORTED = object()


def loader(schema):
    """The fast loader of a schema *instance* (built once, kept on the instance), or
    ``None`` when it has none."""
    try:
        return schema._contract_fast_loader
    except AttributeError:
        schema._contract_fast_loader = found = _compile_schema(schema, schema.unknown, {})
        return found


def _memo(building, key, build):
    """``build()`` once per key; a schema nested in itself meets a forward reference to the
    function being built. ``None`` (no fast path) is remembered too."""
    if key in building:
        found = building[key]
        return None if found is _UNSUPPORTED else found
    cell = []
    building[key] = lambda data: cell[0](data)
    built = build()
    building[key] = _UNSUPPORTED if built is None else built
    # a function built meanwhile that holds the forward reference sends such data to marshmallow
    cell.append(built if built is not None else _not_plain)
    return built


def _not_plain(data):
    raise NotPlain


def _converters(fields_by_name, compile_field, building):
    """``[(name, field, convert)]`` for every field, or ``None`` when one has no fast path
    (or a dotted ``attribute``, which marshmallow reads and writes as a path)."""
    out = []
    for name, field in fields_by_name.items():
        if "." in (field.attribute or name):
            return None
        convert = compile_field(field, building)
        if convert is None:
            return None
        out.append((name, field, convert))
    return out


def _same_kind(schema, fields_by_name):
    """What identifies a schema's behaviour here: its class and the fields it uses. A
    schema nested in itself through a callable (``Nested(lambda: Node())``) is a new
    instance at every level, so the class, not the instance, ends the recursion."""
    return type(schema), tuple(fields_by_name)


def _compile_schema(schema, unknown, building):
    if schema.only is not None or schema.exclude:
        return None  # nested only/exclude options reach deeper levels: left to marshmallow
    return _memo(building, ("load", _same_kind(schema, schema.load_fields), unknown),
                 lambda: _build_loader(schema, unknown, building))


def _build_loader(schema, unknown, building):
    hooks = schema._hooks
    if schema.many or unknown not in (RAISE, EXCLUDE) or hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]:
        return None
    converters = _converters(schema.load_fields, _compile_field, building)
    if converters is None:
        return None
    return _generate_loader(schema, unknown, converters)


def _generate_loader(schema, unknown, converters, in_place=False):
    """The loader as the source of one function, compiled: each field's steps written out in
    order (a scalar's type test and validators inline, any other field through its
    converter), so a load is one call per schema rather than a loop over specs and a call
    per field.

    ``in_place`` writes the checker instead (:func:`checker`): the same tests on the data
    itself, nothing stored (``out`` is ``data``, which it returns), an unknown key not
    plain whatever the schema's ``unknown``, and a missing field that has a default not
    plain either (the load would add it)."""
    names = {"NotPlain": NotPlain, "missing": missing, "dict_class": schema.dict_class,
             "known": frozenset(field.data_key if field.data_key is not None else name
                                for name, field, _ in converters)}
    lines = ["def load(data):"]
    if unknown == RAISE or in_place:  # in place, an unknown key is never dropped: not plain
        lines.append("    if type(data) is not dict or not known.issuperset(data): raise NotPlain")
    else:
        lines.append("    if type(data) is not dict: raise NotPlain")
    lines.append("    out = data" if in_place else "    out = dict_class()")
    for i, (name, field, convert) in enumerate(converters):
        in_key = field.data_key if field.data_key is not None else name
        out_key = field.attribute or name
        refuse = field.required or (in_place and field.load_default is not missing)
        lines += _read_field(i, in_key, out_key, refuse, field.load_default, names)
        expected = _scalar_type(field)
        if expected is not None:
            names[f"type_{i}"] = expected
            lines.append(f"    elif type(value) is type_{i}:")
            called = []
            for j, check in enumerate(field.validators):
                test = _inline_test(check, expected, f"{i}_{j}", names)
                if test is None:
                    called.append((j, check))
                else:
                    lines.append(f"        if {test}: raise NotPlain")
            if called:  # as _with_validators: anything a validator raises, or False, is not plain
                lines.append("        try:")
                for j, check in called:
                    names[f"check_{i}_{j}"] = check
                    lines.append(f"            if check_{i}_{j}(value) is False: raise NotPlain")
                lines.append("        except Exception: raise NotPlain from None")
            lines.append("        pass" if in_place else f"        out[{out_key!r}] = value")
            if field.allow_none:
                lines.append("    elif value is None:")
                lines.append("        pass" if in_place else f"        out[{out_key!r}] = None")
            lines.append("    else:")
            lines.append("        raise NotPlain")
        elif hasattr(convert, "each"):  # a list, as _each converts it, without the call
            names[f"each_{i}"] = convert.each
            lines.append("    elif type(value) is list:")
            if in_place:
                lines.append(f"        for item in value: each_{i}(item)")
            else:
                lines.append(f"        out[{out_key!r}] = [each_{i}(item) for item in value]")
            lines.append("    else:")
            lines.append("        raise NotPlain")
        else:
            names[f"convert_{i}"] = convert
            lines.append("    else:")
            lines.append(f"        convert_{i}(value)" if in_place else f"        out[{out_key!r}] = convert_{i}(value)")
    hooks = schema._hooks[VALIDATES_SCHEMA]
    if hooks:
        # each @validates_schema rule called as marshmallow's _invoke_schema_validators calls
        # it for one object — the collection's rules first, then the others — without its
        # error store: the first refusal sends the data to marshmallow, which runs them all
        names.update(ValidationError=ValidationError, unknown=unknown)
        lines.append("    try:")
        ordered = [hook for hook in hooks if hook[1]] + [hook for hook in hooks if not hook[1]]
        for j, (attr_name, _, kwargs) in enumerate(ordered):
            names[f"rule_{j}"] = getattr(schema, attr_name)
            original = "data, " if kwargs.get("pass_original", False) else ""
            lines.append(f"        rule_{j}(out, {original}partial=None, many=False, unknown=unknown)")
        lines.append("    except ValidationError: raise NotPlain from None")
    lines.append("    return out")
    source = "\n".join(lines)
    exec(compile(source, f"<contract loader {type(schema).__name__}>", "exec"), names)  # noqa: S102 - our own source
    return names["load"]


def _read_field(i, in_key, out_key, refuse, default, names, through=""):
    """A field's first lines in generated code: its value read from ``data``, and what a
    missing one does: refuse (``NotPlain``), leave the key out (no default), or put the
    default, called if it is callable and passed through ``through`` if given."""
    lines = [f"    value = data.get({in_key!r}, missing)", "    if value is missing:"]
    if refuse:
        lines.append("        raise NotPlain")
    elif default is missing:
        lines.append("        pass")
    else:
        names[f"default_{i}"] = default
        value = f"default_{i}{'()' if callable(default) else ''}"
        lines.append(f"        out[{out_key!r}] = {f'{through}({value})' if through else value}")
    return lines


def _inline_test(check, expected, key, names):
    """The source of a test that is true exactly when marshmallow's ``check`` (one of its
    own ``OneOf``, ``Range``, ``Regexp`` or ``Length``, not a subclass) refuses a value of
    exactly type ``expected``, with the names it uses added to ``names``; ``None`` for any
    other validator, or for one whose test could raise on such a value. Written inline, a
    test costs a comparison instead of a call into marshmallow's validator."""
    kind = type(check)
    if kind is validate.OneOf:
        choices = check.choices
        if not isinstance(choices, (list, tuple, set, frozenset)):
            return None
        try:
            # a set finds what ``in`` finds in the list: for a str, int or bool value, an
            # equal choice has the same hash
            names[f"choices_{key}"] = frozenset(choices)
        except TypeError:  # an unhashable choice
            return None
        return f"value not in choices_{key}"
    if kind is validate.Range:
        # an int compared with a number never raises; other values keep the validator
        bounds = [b for b in (check.min, check.max) if b is not None]
        if expected is not int or not all(type(b) in (int, float) for b in bounds):
            return None
        return _bound_tests("value", key, names, (check.min, "<" if check.min_inclusive else "<="),
                            (check.max, ">" if check.max_inclusive else ">="))
    if kind is validate.Regexp:
        # a bytes pattern raises on a str value: that validator keeps its call
        if expected is not str or not isinstance(check.regex.pattern, str):
            return None
        names[f"regex_{key}"] = check.regex
        return f"regex_{key}.match(value) is None"
    if kind is validate.Length:
        if expected is not str:
            return None
        if check.equal is not None:
            names[f"equal_{key}"] = check.equal
            return f"len(value) != equal_{key}"
        return _bound_tests("len(value)", key, names, (check.min, "<"), (check.max, ">"))
    return None


def _bound_tests(subject, key, names, low, high):
    """``subject`` tested against a lower and an upper bound, each ``(bound or None, the
    comparison that refuses)``: true when either refuses (``False`` with no bound)."""
    tests = []
    for name, (bound, refuses) in (("min", low), ("max", high)):
        if bound is not None:
            names[f"{name}_{key}"] = bound
            tests.append(f"{subject} {refuses} {name}_{key}")
    return " or ".join(tests) or "False"


# ---- fields ------------------------------------------------------------------------
#
# Loading and dumping keep a plain value as it is: a field's shape (which exact JSON type,
# which container, which nested schema) is shared; each side adds its own None handling,
# and loading its validators.


def _scalar_type(field):
    """The exact JSON type a scalar field keeps unchanged both ways, or ``None``."""
    kind = type(field)
    if kind is fields.String:
        return str
    if kind is fields.Integer:  # exactly int: a bool, a float or a numeric string is not plain
        return None if field.as_string else int
    if kind is fields.Boolean and (not field.truthy or (True in field.truthy and False in field.falsy)):
        return bool
    return None


def _exact(expected):
    def convert(value):
        if type(value) is not expected:
            raise NotPlain
        return value
    convert.exact = expected  # a generated dumper writes the test out itself
    return convert


def _dict_copy(value):
    if type(value) is not dict:
        raise NotPlain
    return dict(value)


def _each(convert):
    def convert_list(value):
        if type(value) is not list:
            raise NotPlain
        return [convert(item) for item in value]
    convert_list.each = convert  # a generated loader writes the list out itself
    return convert_list


def _none_passes(convert):
    def convert_or_none(value):
        return None if value is None else convert(value)
    convert_or_none.inner = convert  # a generated dumper writes the None test out itself
    return convert_or_none


def _shape(field, building, compile_field, compile_nested):
    """The conversion of a field's value by its type, or ``None`` for a type not modelled.
    ``compile_field`` compiles a list's items, ``compile_nested(field, building)`` a nested
    schema (loading or dumping)."""
    expected = _scalar_type(field)
    if expected is not None:
        return _exact(expected)
    kind = type(field)
    if kind is fields.Dict:
        return _dict_copy if field.key_field is None and field.value_field is None else None
    if kind is fields.List:
        inner = compile_field(field.inner, building)
        return None if inner is None else _each(inner)
    if kind is fields.Nested:
        if field.schema.many:
            return None
        one = compile_nested(field, building)
        if one is None:
            return None
        return _each(one) if field.many else one
    return None


def _compile_field(field, building):
    if field.pre_load or field.post_load:
        return None
    base = _shape(field, building, _compile_field, _compile_nested_loader)
    return None if base is None else _with_validators(base, tuple(field.validators), field.allow_none)


def _compile_nested_loader(field, building):
    nested = field.schema
    return _compile_schema(nested, field.unknown if field.unknown is not None else nested.unknown, building)


def _with_validators(base, validators, allow_none):
    if not validators:
        return _none_passes(base) if allow_none else base

    def convert(value):
        if value is None:
            if allow_none:
                return None
            raise NotPlain
        out = base(value)
        for check in validators:
            try:
                if check(out) is False:
                    raise NotPlain
            except Exception:
                raise NotPlain from None
        return out
    return convert


# ---- checking in place ----------------------------------------------------------------
#
# Data that another service dumped through the same contract is, most of the time, already
# what loading it would give: every field present, nothing to convert. Then the load's
# copy is all it adds — a new dict for every object, a new list for every list — and the
# receiver could take the data itself. ``checker(schema)`` tests exactly what the loader
# tests, copies nothing and returns the data itself; data the loader would change (a
# field missing whose default the load would add) is not plain to it, and goes to the
# loader.


def checker(schema):
    """The in-place check of a schema instance (built once, kept on the instance), or
    ``None`` when its load can change plainly valid data other than by adding defaults (a
    renamed field, another dict class) or it has no fast loader."""
    try:
        return schema._contract_fast_checker
    except AttributeError:
        schema._contract_fast_checker = found = (
            _compile_checker(schema, schema.unknown, {}) if loader(schema) is not None else None)
        return found


def _compile_checker(schema, unknown, building):
    if schema.only is not None or schema.exclude:
        return None
    return _memo(building, ("check", _same_kind(schema, schema.load_fields), unknown),
                 lambda: _build_checker(schema, unknown, building))


def _build_checker(schema, unknown, building):
    hooks = schema._hooks
    if (schema.many or unknown not in (RAISE, EXCLUDE) or hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]
            or schema.dict_class is not dict):
        return None
    if any(field.data_key is not None or field.attribute is not None for field in schema.load_fields.values()):
        return None
    converters = _converters(schema.load_fields, _compile_check_field, building)
    if converters is None:
        return None
    return _generate_loader(schema, unknown, converters, in_place=True)


def _is_dict(value):
    if type(value) is not dict:
        raise NotPlain
    return value


def _compile_check_field(field, building):
    if field.pre_load or field.post_load:
        return None
    base = _shape(field, building, _compile_check_field, _compile_nested_checker)
    if base is _dict_copy:
        base = _is_dict
    return None if base is None else _with_validators(base, tuple(field.validators), field.allow_none)


def _compile_nested_checker(field, building):
    nested = field.schema
    return _compile_checker(nested, field.unknown if field.unknown is not None else nested.unknown, building)


# ---- dumping ------------------------------------------------------------------------
#
# ``schema.dump`` of a dict whose values already have their JSON types (what every use
# case hands to a contract) is a copy of the declared keys: ``dumper(schema)`` makes that
# copy directly and raises NotPlain for anything marshmallow would convert (an object
# instead of a dict, a number as a string, …), leaving it to ``schema.dump``.


def dumper(schema):
    """The fast dumper of a schema instance, or ``None`` when it has none."""
    try:
        return schema._contract_fast_dumper
    except AttributeError:
        schema._contract_fast_dumper = found = _compile_dump_schema(schema, {})
        return found


def _compile_dump_schema(schema, building):
    if schema.only is not None or schema.exclude:
        return None
    return _memo(building, ("dump", _same_kind(schema, schema.dump_fields)), lambda: _build_dumper(schema, building))


def _build_dumper(schema, building):
    hooks = schema._hooks
    if schema.many or hooks[PRE_DUMP] or hooks[POST_DUMP]:
        return None
    converters = _converters(schema.dump_fields, _compile_dump_field, building)
    if converters is None:
        return None
    return _generate_dumper(schema, converters)


def _generate_dumper(schema, converters):
    """The dumper as the source of one function, compiled, as :func:`_generate_loader`
    writes a loader: for each field, ``out[key] = convert(value)`` with the steps of
    ``convert`` written out where they are a test (``None`` passes, an exact type, a list
    whose items are converted), so a plain value costs no call."""
    names = {"NotPlain": NotPlain, "missing": missing, "dict_class": schema.dict_class}
    lines = ["def dump(data):", "    if type(data) is not dict: raise NotPlain", "    out = dict_class()"]
    for i, (name, field, convert) in enumerate(converters):
        get_key = field.attribute or name
        out_key = field.data_key if field.data_key is not None else name
        names[f"convert_{i}"] = convert
        # a missing key that is an attribute of dict: marshmallow would take getattr(dict, key)
        lines += _read_field(i, get_key, out_key, hasattr(dict, get_key), field.dump_default, names,
                             through=f"convert_{i}")
        step = convert
        if hasattr(step, "inner"):  # _none_passes
            lines.append("    elif value is None:")
            lines.append(f"        out[{out_key!r}] = None")
            step = step.inner
        if hasattr(step, "exact"):
            names[f"type_{i}"] = step.exact
            lines += [f"    elif type(value) is type_{i}:", f"        out[{out_key!r}] = value",
                      "    else:", "        raise NotPlain"]
        elif hasattr(step, "each"):
            names[f"each_{i}"] = step.each
            lines += ["    elif type(value) is list:",
                      f"        out[{out_key!r}] = [each_{i}(item) for item in value]",
                      "    else:", "        raise NotPlain"]
        else:
            names[f"step_{i}"] = step
            lines += ["    else:", f"        out[{out_key!r}] = step_{i}(value)"]
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<contract dumper {type(schema).__name__}>", "exec"), names)  # noqa: S102
    return names["dump"]


def _compile_dump_field(field, building):
    # marshmallow dumps None as None whatever the field
    base = _shape(field, building, _compile_dump_field, lambda f, b: _compile_dump_schema(f.schema, b))
    return None if base is None else _none_passes(base)


# ---- dumping and checking in one pass -------------------------------------------------
#
# An event's payload is dumped and then checked: the dump copies the declared keys, the
# check loads the copy. When a schema's dump cannot change plainly valid data — every
# level refuses unknown keys, no field is renamed, has a dump default or is only loaded or
# only dumped, and no hook runs around the dump — data the fast loader accepts is already
# its own dump, so the check of the data itself is the whole work.


def passthrough(schema):
    """Whether ``schema.dump(data)`` equals ``data`` (the same keys, values and types)
    for all data its fast loader accepts. Built once, kept on the instance."""
    try:
        return schema._contract_passthrough
    except AttributeError:
        schema._contract_passthrough = found = _passes_through(schema, schema.unknown, set())
        return found


def _passes_through(schema, unknown, seen):
    key = (_same_kind(schema, schema.dump_fields), unknown)
    if key in seen:
        return True  # a schema nested in itself: decided where it first appears
    seen.add(key)
    hooks = schema._hooks
    if (schema.many or unknown != RAISE or schema.only is not None or schema.exclude
            or hooks[PRE_DUMP] or hooks[POST_DUMP] or set(schema.load_fields) != set(schema.dump_fields)):
        return False
    return all(field.data_key is None and field.attribute is None and field.dump_default is missing
               and _field_passes(field, seen) for field in schema.dump_fields.values())


def _field_passes(field, seen):
    if _scalar_type(field) is not None:
        return True
    kind = type(field)
    if kind is fields.Dict:
        return field.key_field is None and field.value_field is None
    if kind is fields.List:
        return _field_passes(field.inner, seen)
    if kind is fields.Nested:
        nested = field.schema
        return not nested.many and _passes_through(
            nested, field.unknown if field.unknown is not None else nested.unknown, seen)
    return False
