"""A fast path for loading well-formed data through a contract.

marshmallow spends 2–3 µs on every field it loads (a 1.9 KB application, 86 fields:
~230 µs), and every event a service receives, every event it emits (the check) and every
RPC argument goes through it. Almost all of that data is already in its canonical form —
another service dumped it through the same contract — so most of marshmallow's work is
proving what is already true.

``loader(schema)`` builds, once per schema instance, a plain function that loads data
*only when it is plainly valid*: exact JSON types (``str``, ``int``, ``bool``, ``list``,
``dict``), every field's own validators passed, no unknown key, every required field
present, the schema's ``@validates_schema`` hooks passed. It returns exactly what
``schema.load`` would (the same keys, defaults and types). For anything else — a value
marshmallow would coerce (``"5"`` for an integer), a missing required field, a validator
that refuses, an unknown key — it raises :class:`NotPlain` and the caller hands the data
to marshmallow, which decides and words the errors. The fast path can therefore never
accept what marshmallow refuses, nor refuse what it accepts; it can only skip work.
``tests/unit/test_contract_fastpath.py`` checks that on every contract against random
valid and broken inputs.

A schema that uses anything this module does not model (another field type, a field with
its own pre/post-load functions, ``@pre_load``/``@post_load``/``@validates`` hooks,
``unknown=INCLUDE``, dotted attributes) gets no fast path: ``loader`` returns ``None`` and
marshmallow does all the work, as before.
"""
from marshmallow import EXCLUDE, RAISE, fields
from marshmallow.decorators import POST_DUMP, POST_LOAD, PRE_DUMP, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.error_store import ErrorStore
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


def _compile_schema(schema, unknown, building):
    key = (id(schema), unknown)
    if key in building:  # a schema nested in itself
        return building[key] if building[key] is not _UNSUPPORTED else None
    if schema.many or unknown not in (RAISE, EXCLUDE):
        return None
    hooks = schema._hooks
    if hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]:
        return None
    cell = []

    def forward(data):
        return cell[0](data)

    building[key] = forward
    specs = []
    for attr_name, field in schema.load_fields.items():
        out_key = field.attribute or attr_name
        if "." in out_key:
            return _give_up(building, key)
        convert = _compile_field(field, building)
        if convert is None:
            return _give_up(building, key)
        default = field.load_default
        specs.append((field.data_key if field.data_key is not None else attr_name, out_key,
                      convert, field.required, default, callable(default)))
    specs = tuple(specs)
    known = frozenset(spec[0] for spec in specs)
    raise_unknown = unknown == RAISE
    dict_class = schema.dict_class
    schema_validators = bool(hooks[VALIDATES_SCHEMA])

    def load(data):
        if type(data) is not dict or (raise_unknown and not known.issuperset(data)):
            raise NotPlain
        out = dict_class()
        for in_key, out_key, convert, required, default, default_is_callable in specs:
            value = data.get(in_key, missing)
            if value is missing:
                if required:
                    raise NotPlain
                if default is missing:
                    continue
                out[out_key] = default() if default_is_callable else default
            else:
                out[out_key] = convert(value)
        if schema_validators:
            store = ErrorStore()
            for pass_collection in (True, False):
                schema._invoke_schema_validators(
                    error_store=store, pass_collection=pass_collection, data=out,
                    original_data=data, many=False, partial=None, unknown=unknown,
                    field_errors=False)
            if store.errors:
                raise NotPlain
        return out

    cell.append(load)
    building[key] = load
    return load


def _give_up(building, key):
    building[key] = _UNSUPPORTED
    return None


def _plain(expected):
    def convert(value):
        if type(value) is not expected:
            raise NotPlain
        return value
    return convert


def _compile_field(field, building):
    if field.pre_load or field.post_load:
        return None
    kind = type(field)
    if kind is fields.String:
        base = _plain(str)
    elif kind is fields.Integer:
        base = _plain(int)  # exactly int: a bool, a float or a numeric string goes to marshmallow
    elif kind is fields.Boolean:
        if field.truthy and not (True in field.truthy and False in field.falsy):
            return None
        base = _plain(bool)
    elif kind is fields.Dict:
        if field.key_field is not None or field.value_field is not None:
            return None

        def base(value):
            if type(value) is not dict:
                raise NotPlain
            return dict(value)
    elif kind is fields.List:
        inner = _compile_field(field.inner, building)
        if inner is None:
            return None

        def base(value):
            if type(value) is not list:
                raise NotPlain
            return [inner(item) for item in value]
    elif kind is fields.Nested:
        nested = field.schema
        many = nested.many or field.many
        if nested.many:
            return None
        one = _compile_schema(nested, field.unknown if field.unknown is not None else nested.unknown,
                              building)
        if one is None:
            return None
        if many:
            def base(value):
                if type(value) is not list:
                    raise NotPlain
                return [one(item) for item in value]
        else:
            base = one
    else:
        return None
    return _with_validators(base, tuple(field.validators), field.allow_none)


def _with_validators(base, validators, allow_none):
    if not validators:
        if not allow_none:
            return base

        def convert(value):
            return None if value is None else base(value)
        return convert

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
    key = id(schema)
    if key in building:
        return building[key] if building[key] is not _UNSUPPORTED else None
    if schema.many:
        return None
    hooks = schema._hooks
    if hooks[PRE_DUMP] or hooks[POST_DUMP]:
        return None
    cell = []

    def forward(obj):
        return cell[0](obj)

    building[key] = forward
    specs = []
    for attr_name, field in schema.dump_fields.items():
        get_key = field.attribute or attr_name
        if "." in get_key:
            return _give_up(building, key)
        convert = _compile_dump_field(field, building)
        if convert is None:
            return _give_up(building, key)
        default = field.dump_default
        specs.append((get_key, field.data_key if field.data_key is not None else attr_name,
                      convert, default, callable(default), hasattr(dict, get_key)))
    specs = tuple(specs)
    dict_class = schema.dict_class

    def dump(obj):
        if type(obj) is not dict:
            raise NotPlain
        out = dict_class()
        for get_key, out_key, convert, default, default_is_callable, shadowed in specs:
            value = obj.get(get_key, missing)
            if value is missing:
                if shadowed:  # marshmallow would fall back to getattr(dict, key)
                    raise NotPlain
                if default is missing:
                    continue
                value = default() if default_is_callable else default
            out[out_key] = convert(value)
        return out

    cell.append(dump)
    building[key] = dump
    return dump


def _plain_or_none(expected):
    def convert(value):
        if value is None:
            return None
        if type(value) is not expected:
            raise NotPlain
        return value
    return convert


def _compile_dump_field(field, building):
    kind = type(field)
    if kind is fields.String:
        return _plain_or_none(str)
    if kind is fields.Integer:
        return None if field.as_string else _plain_or_none(int)
    if kind is fields.Boolean:
        if field.truthy and not (True in field.truthy and False in field.falsy):
            return None
        return _plain_or_none(bool)
    if kind is fields.Dict:
        if field.key_field is not None or field.value_field is not None:
            return None

        def convert(value):
            if value is None:
                return None
            if type(value) is not dict:
                raise NotPlain
            return dict(value)
        return convert
    if kind is fields.List:
        inner = _compile_dump_field(field.inner, building)
        if inner is None:
            return None

        def convert(value):
            if value is None:
                return None
            if type(value) is not list:
                raise NotPlain
            return [inner(item) for item in value]
        return convert
    if kind is fields.Nested:
        nested = field.schema
        if nested.many:
            return None
        one = _compile_dump_schema(nested, building)
        if one is None:
            return None
        if field.many:
            def convert(value):
                if value is None:
                    return None
                if type(value) is not list:
                    raise NotPlain
                return [one(item) for item in value]  # a None item: marshmallow dumps {}
            return convert

        def convert(value):
            return None if value is None else one(value)
        return convert
    return None
