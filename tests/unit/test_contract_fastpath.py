"""The contracts' fast path (contracts/fastpath.py) never decides differently from
marshmallow: on every contract, against random valid and broken inputs,

* what the fast loader accepts, marshmallow accepts with the same result (same keys,
  values and types), and on data in its canonical form (what a dump produces) both agree
  both ways: the fast path accepts whatever marshmallow accepts there;
* what the in-place checker accepts, marshmallow loads to equal data (same keys, values
  and types): the data itself is what the load gives; and it accepts every load's result;
* what the fast dumper returns is what ``schema.dump`` returns;
* a checked dump (``contracts.dump``, what every event payload goes through) returns what
  marshmallow's dump returns, or refuses with marshmallow's errors, including when it
  takes the one-pass way for data that is already its own dump (``passthrough``);
* ``contracts.load`` / ``contracts.dump`` give the same answers and the same bilingual
  errors with the fast path as without it.
"""
import importlib
import pkgutil
import random
import string

import pytest
from marshmallow import ValidationError, fields, validate, validates_schema

import contracts
from contracts import ValidationFailed, dump, load
from contracts.application import ApplicationSchema
from contracts.base import ContractSchema, schema_instance
from contracts.fastpath import NotPlain, checker, dumper, loader, passthrough

for _module in pkgutil.iter_modules(contracts.__path__):
    importlib.import_module(f"contracts.{_module.name}")


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


CONTRACTS = sorted(set(_subclasses(ContractSchema)), key=lambda c: (c.__module__, c.__name__))
SAMPLES = 150


def _same(a, b):
    """Equal, and of the same types all the way down (True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _validator(field, kind):
    return next((v for v in field.validators if isinstance(v, kind)), None)


def _value(field, rng, depth):
    """A value of the field's JSON type, often (not always) one its validators accept."""
    if field.allow_none and rng.random() < 0.1:
        return None
    kind = type(field)
    if kind is fields.String:
        one_of = _validator(field, validate.OneOf)
        if one_of is not None and rng.random() < 0.9:
            return rng.choice(list(one_of.choices))
        if _validator(field, validate.Regexp) is not None and rng.random() < 0.9:
            return f"20{rng.randint(10, 40)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"  # the date pattern
        length = _validator(field, validate.Length)
        low = length.min if length and length.min is not None else 0
        high = min(length.max if length and length.max is not None else 12, low + 12)
        return "".join(rng.choice(string.ascii_letters + "项目审批") for _ in range(rng.randint(low, high)))
    if kind is fields.Integer:
        bounds = _validator(field, validate.Range)
        low = bounds.min if bounds and bounds.min is not None else -5
        high = bounds.max if bounds and bounds.max is not None else low + 10 ** rng.randint(1, 8)
        return rng.randint(low - (1 if rng.random() < 0.05 else 0), high)
    if kind is fields.Boolean:
        return rng.random() < 0.5
    if kind is fields.Dict:
        return rng.choice([{}, {"a": 1}, {"level": 3, "note": "x"}])
    if kind is fields.List:
        return [_value(field.inner, rng, depth + 1) for _ in range(rng.randint(0, 3 if depth < 4 else 0))]
    if kind is fields.Nested:
        if field.many:
            return [_object(field.schema, rng, depth + 1) for _ in range(rng.randint(0, 2))]
        return _object(field.schema, rng, depth + 1)
    raise AssertionError(f"no generator for {kind.__name__}")


def _object(schema, rng, depth=0):
    out = {}
    for name, field in schema.load_fields.items():
        if field.required or rng.random() < 0.7:
            out[field.data_key or name] = _value(field, rng, depth)
    return out


WRONG = ["5", 5.0, 5, True, False, None, [], {}, "", "true", 1, 0, -1, 10 ** 12, ["x"], {"x": 1}, b"x"]


def _break(data, rng):
    """The same data with one thing wrong (or not quite: marshmallow decides)."""
    data = dict(data)
    choice = rng.random()
    if choice < 0.15 or not data:
        data[rng.choice(["extra", "unknown_field", "x"])] = 1
    elif choice < 0.35:
        del data[rng.choice(list(data))]
    else:
        key = rng.choice(list(data))
        value = data[key]
        if isinstance(value, dict) and value and rng.random() < 0.5:
            data[key] = _break(value, rng)
        elif isinstance(value, list) and value and isinstance(value[0], dict) and rng.random() < 0.5:
            data[key] = [_break(value[0], rng)] + value[1:]
        else:
            data[key] = rng.choice(WRONG)
    return data


def _marshmallow(schema, data):
    try:
        return True, schema.load(data)
    except ValidationError as exc:
        return False, exc.messages


def _fast(schema, data):
    try:
        return True, loader(schema)(data)
    except NotPlain:
        return False, None


def test_every_contract_has_a_fast_path():
    # a contract that grows a field type the fast path does not model silently loses it:
    # this says so
    missing = [c.__name__ for c in CONTRACTS if loader(schema_instance(c)) is None
               or dumper(schema_instance(c)) is None]
    assert missing == []
    assert len(CONTRACTS) > 50


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_fast_load_decides_as_marshmallow(contract):
    schema = schema_instance(contract)
    rng = random.Random(contract.__name__)
    agreed = 0
    for _ in range(SAMPLES):
        data = _object(schema, rng)
        ok, expected = _marshmallow(schema, data)
        fast_ok, got = _fast(schema, data)
        # canonical data: both agree both ways
        assert fast_ok == ok, (data, expected)
        if ok:
            assert _same(got, expected), data
            agreed += 1
        broken = _break(data, rng)
        ok, expected = _marshmallow(schema, broken)
        fast_ok, got = _fast(schema, broken)
        if fast_ok:
            assert ok, (broken, expected)
            assert _same(got, expected), broken
    assert agreed > 0, "no generated sample was valid: the generator does not exercise this contract"


def _checked_in_place(schema, data):
    try:
        return True, checker(schema)(data)
    except NotPlain:
        return False, None


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_the_in_place_check_accepts_only_what_loads_to_the_data_itself(contract):
    schema = schema_instance(contract)
    assert checker(schema) is not None
    rng = random.Random("in place:" + contract.__name__)
    accepted = 0
    for _ in range(SAMPLES):
        data = _object(schema, rng)
        ok, loaded = _marshmallow(schema, data)
        objects = [data, _break(data, rng)]
        if ok:
            # a load's result is already its own load: taken as it is
            copy = _marshmallow(schema, data)[1]
            assert _checked_in_place(schema, copy) == (True, copy) and checker(schema)(copy) is copy
            assert _same(copy, loaded)
            accepted += 1
            objects.append(_break(copy, rng))  # complete data, with one thing wrong
        for obj in objects:
            got_ok, got = _checked_in_place(schema, obj)
            if got_ok:
                assert got is obj
                ok, expected = _marshmallow(schema, obj)
                assert ok, (obj, expected)
                assert _same(obj, expected), obj
                accepted += 1
    assert accepted > 0, "no generated sample was taken in place"


@pytest.mark.parametrize("data", [
    {"name": "n", "kind": "build", "amount": 100, "year": 2027, "summary": "s"},  # defaults to add
    {"name": "n", "kind": "build", "amount": 100, "year": 2027, "summary": "s", "extra": 1},
    {"name": "n", "kind": "build", "amount": -1, "year": 2027, "summary": "s"},
])
def test_data_the_load_would_change_or_refuse_is_not_taken_in_place(data):
    assert _checked_in_place(schema_instance(ApplicationSchema), data) == (False, None)


def test_a_load_in_place_returns_the_data_itself_or_what_the_load_gives():
    app = load(ApplicationSchema, {"name": "n", "kind": "build", "amount": 100, "year": 2027, "summary": "s"})
    given = {**app}
    assert load(ApplicationSchema, given, in_place=True) is given
    assert load(ApplicationSchema, given) is not given  # without in_place, always a copy
    short = {"name": "n", "kind": "build", "amount": 100, "year": 2027, "summary": "s"}
    loaded = load(ApplicationSchema, short, in_place=True)
    assert loaded is not short and loaded == app  # the defaults added, by the load
    with pytest.raises(ValidationFailed) as exc:
        load(ApplicationSchema, {**app, "amount": -1}, in_place=True)
    assert [(e["field"], e["rule"]) for e in exc.value.errors] == [("amount", "min")]


def _at_bounds(field):
    """Values of the field's type on both sides of each bound of its Range, Length and
    OneOf validators (the fast loader writes these three inline)."""
    kind = type(field)
    values = []
    for check in field.validators:
        if isinstance(check, validate.Range) and kind is fields.Integer:
            for bound in (check.min, check.max):
                if bound is not None:
                    values += [int(bound) - 1, int(bound), int(bound) + 1]
        elif isinstance(check, validate.Length) and kind is fields.String:
            for bound in (check.min, check.max, check.equal):
                if bound is not None:
                    values += ["项" * n for n in (bound - 1, bound, bound + 1) if n >= 0]
        elif isinstance(check, validate.OneOf):
            values += list(check.choices) + ["not-a-choice", ""]
        elif isinstance(check, validate.Regexp) and kind is fields.String:
            values += ["2026-11-28", "2026-11-28x", "x2026-11-28", "", "项目"]
    return values


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_validators_decide_as_marshmallow_at_their_bounds(contract):
    schema = schema_instance(contract)
    rng = random.Random("bounds:" + contract.__name__)
    valid = next((d for d in (_object(schema, rng) for _ in range(200)) if _marshmallow(schema, d)[0]), None)
    assert valid is not None
    outcomes = set()
    for name, field in schema.load_fields.items():
        for value in _at_bounds(field):
            data = dict(valid, **{field.data_key or name: value})
            ok, expected = _marshmallow(schema, data)
            fast_ok, got = _fast(schema, data)
            assert fast_ok == ok, (name, value, expected)
            if ok:
                assert _same(got, expected)
            outcomes.add(ok)
    # every bound is tried from both sides: some values pass, some are refused
    assert outcomes in (set(), {True, False})


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_fast_dump_is_marshmallow_dump(contract):
    schema = schema_instance(contract)
    rng = random.Random("dump:" + contract.__name__)
    fast = dumper(schema)
    for _ in range(SAMPLES):
        data = _object(schema, rng)
        ok, loaded = _marshmallow(schema, data)
        for obj in ([loaded] if ok else []) + [data, _break(data, rng)]:
            try:
                got = fast(obj)
            except NotPlain:
                continue
            expected = schema.dump(obj)
            assert _same(got, expected), obj


def _checked_by_marshmallow(schema, obj):
    """What a checked dump must give: marshmallow's dump, or the errors its output gets."""
    try:
        data = schema.dump(obj)
    except Exception as exc:  # noqa: BLE001 - a dump that fails must fail the same way
        return "raises", type(exc)
    errors = schema.validate(data)
    return ("refused", errors) if errors else ("dumped", data)


def _checked(schema, obj):
    try:
        return "dumped", dump(schema, obj, check=True)
    except ValidationFailed as exc:
        return "refused", exc
    except Exception as exc:  # noqa: BLE001
        return "raises", type(exc)


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_checked_dump_is_marshmallows_dump_and_check(contract):
    schema = schema_instance(contract)
    rng = random.Random("checked:" + contract.__name__)
    one_pass = 0
    for _ in range(SAMPLES):
        data = _object(schema, rng)
        ok, loaded = _marshmallow(schema, data)
        for obj in ([loaded] if ok else []) + [data, _break(data, rng)]:
            kind, expected = _checked_by_marshmallow(schema, obj)
            got_kind, got = _checked(schema, obj)
            assert got_kind == kind, (obj, expected, got)
            if kind == "dumped":
                assert _same(got, expected), obj
                one_pass += got is obj
            elif kind == "refused":
                assert got.errors, obj
            else:
                assert got is expected, obj
    assert one_pass > 0, "no sample took the one-pass way"


class _Renamed(ContractSchema):
    name = fields.String(required=True, data_key="title")


class _Defaulted(ContractSchema):
    name = fields.String(required=True)
    note = fields.String(dump_default="-")


class _Lenient(ContractSchema):
    class Meta:
        unknown = "exclude"

    name = fields.String(required=True)


class _HoldsLenient(ContractSchema):
    inner = fields.Nested(_Lenient, required=True)


class _Plain(ContractSchema):
    name = fields.String(required=True)


class _HoldsPlainTwice(ContractSchema):
    strict = fields.Nested(_Plain, required=True)
    lenient = fields.Nested(_Plain, required=True, unknown="exclude")


@pytest.mark.parametrize("schema, data, dumped", [
    (_Renamed(), {"name": "a"}, {"title": "a"}),
    (_Defaulted(), {"name": "a"}, {"name": "a", "note": "-"}),
    (_Lenient(), {"name": "a", "extra": 1}, {"name": "a"}),
    (_HoldsLenient(), {"inner": {"name": "a", "extra": 1}}, {"inner": {"name": "a"}}),
    # the same schema twice, the second time leaving unknown keys out
    (_HoldsPlainTwice(), {"strict": {"name": "a"}, "lenient": {"name": "b", "extra": 1}},
     {"strict": {"name": "a"}, "lenient": {"name": "b"}}),
])
def test_a_dump_that_changes_data_never_takes_the_one_pass_way(schema, data, dumped):
    # renamed keys, dump defaults, unknown keys left out (at any depth): the loader would
    # accept the data as it is, but its dump differs, so the data is dumped and checked
    assert not passthrough(schema)
    got = dump(schema, data, check=True)
    assert got == dumped and got is not data


def test_passthrough_data_is_checked_in_one_pass():
    app = {"name": "n", "kind": "build", "amount": 100, "year": 2027, "summary": "s"}
    assert passthrough(schema_instance(ApplicationSchema))
    assert dump(ApplicationSchema, app) is app  # checked, and already its own dump
    app["amount"] = -1
    with pytest.raises(ValidationFailed) as exc:
        dump(ApplicationSchema, app)
    assert [(e["field"], e["rule"]) for e in exc.value.errors] == [("amount", "min")]


def test_defaults_are_fresh_objects():
    a = load(ApplicationSchema, {"name": "n", "kind": "build", "amount": 1, "year": 2027, "summary": "s"})
    b = load(ApplicationSchema, {"name": "n", "kind": "build", "amount": 1, "year": 2027, "summary": "s"})
    assert a["flags"] == b["flags"] and a["flags"] is not b["flags"]
    a["estimate"].append(1)
    assert b["estimate"] == []


def test_schema_level_rule_still_refuses_with_its_article():
    # ApplicationSchema's @validates_schema: the estimate lines must add up to the amount
    app = {"name": "n", "kind": "build", "amount": 100, "year": 2027, "summary": "s",
           "estimate": [{"item": "x", "category": "software", "quantity": 2, "unit_price": 30}]}
    assert _fast(schema_instance(ApplicationSchema), app) == (False, None)
    with pytest.raises(ValidationFailed) as exc:
        load(ApplicationSchema, app)
    assert [(e["field"], e["rule"]) for e in exc.value.errors] == [("estimate", "estimate_total")]
    app["amount"] = 60
    assert load(ApplicationSchema, app)["amount"] == 60


@pytest.mark.parametrize("bad, field, rule", [
    ({"amount": "100"}, "amount", "type_integer"),  # marshmallow's strict integer refuses a string
    ({"year": 1999}, "year", "range"),
    ({"kind": "castle"}, "kind", "one_of"),
    ({"surprise": 1}, "surprise", "unknown_field"),
    ({"flags": {"urgent": "maybe"}}, "flags.urgent", "type_boolean"),
])
def test_errors_are_marshmallows_words(bad, field, rule):
    app = {"name": "n", "kind": "build", "amount": 100, "year": 2027, "summary": "s", **bad}
    with pytest.raises(ValidationFailed) as exc:
        load(ApplicationSchema, app)
    assert (field, rule) in [(e["field"], e["rule"]) for e in exc.value.errors]


def test_coercions_marshmallow_allows_still_happen():
    # not plain, so marshmallow loads it: a lax integer given as a string becomes an int
    got = load(ApplicationSchema, {"name": "n", "kind": "build", "amount": 1, "year": "2027", "summary": "s"})
    assert got["year"] == 2027 and type(got["year"]) is int
    assert dump(ApplicationSchema, {**got, "year": "2027"}, check=True)["year"] == 2027


class _Node(ContractSchema):
    """A schema nested in itself."""
    name = fields.String(required=True)
    children = fields.List(fields.Nested(lambda: _Node()), load_default=list)


class _Measured(ContractSchema):
    value = fields.Float(required=True)  # a field type the fast path does not model


class _Holder(ContractSchema):
    name = fields.String(required=True)
    measured = fields.Nested(_Measured, required=True)


def test_a_schema_nested_in_itself_has_a_fast_path():
    tree = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}, {"name": "d"}]}
    schema = _Node()
    assert _same(loader(schema)(tree), schema.load(tree))
    assert _same(dumper(schema)(schema.load(tree)), schema.dump(schema.load(tree)))
    with pytest.raises(NotPlain):
        loader(schema)({"name": "a", "children": [{"name": 1}]})


class _Ruled(ContractSchema):
    """Schema-level rules of each kind: on the loaded data, with the original data too, and
    on the collection."""
    low = fields.Integer(required=True)
    high = fields.Integer(load_default=10)
    seen = []

    @validates_schema
    def _ordered(self, data, **kwargs):
        self.seen.append(("loaded", data.get("high"), kwargs["many"], kwargs["partial"]))
        if data["low"] > data["high"]:
            raise ValidationError("low above high", "low")

    @validates_schema(pass_original=True)
    def _no_explicit_default(self, data, original, **kwargs):
        self.seen.append(("original", "high" in original))
        if original.get("high") == 10:
            raise ValidationError("say nothing for 10", "high")

    @validates_schema(pass_collection=True)
    def _collection(self, data, **kwargs):
        self.seen.append(("collection",))


@pytest.mark.parametrize("data", [{"low": 1}, {"low": 11}, {"low": 1, "high": 10}, {"low": 1, "high": 5},
                                  {"low": 7, "high": 5}, {"low": 1, "high": 20}])
def test_schema_level_rules_are_called_as_marshmallow_calls_them(data):
    schema = _Ruled()
    _Ruled.seen.clear()
    ok, expected = _marshmallow(schema, data)
    by_marshmallow, _Ruled.seen[:] = list(_Ruled.seen), []
    fast_ok, got = _fast(schema, data)
    assert fast_ok == ok and (not ok or _same(got, expected)), data
    # the same calls with the same arguments, in the same order, up to the first refusal
    assert _Ruled.seen == by_marshmallow[:len(_Ruled.seen)] and _Ruled.seen


def test_a_field_type_without_fast_path_leaves_the_schema_to_marshmallow():
    assert loader(_Holder()) is None and dumper(_Holder()) is None
    assert load(_Holder, {"name": "x", "measured": {"value": "1.5"}}) == {"name": "x", "measured": {"value": 1.5}}
    with pytest.raises(ValidationFailed) as exc:
        load(_Holder, {"name": "x", "measured": {"value": "many"}})
    assert exc.value.errors[0]["field"] == "measured.value"


def test_inline_validators_of_every_form_decide_as_marshmallow():
    from marshmallow import Schema

    class Forms(Schema):
        code = fields.String(validate=validate.Length(equal=3))
        short = fields.String(validate=validate.Length(min=2))
        level = fields.Integer(strict=True, validate=validate.Range(min=1, max=5, min_inclusive=False,
                                                                    max_inclusive=False))
        ratio = fields.Integer(strict=True, validate=validate.Range(min=0.5, max=9.5))
        flag = fields.Boolean(validate=validate.OneOf([True]))
        tagged = fields.String(validate=validate.OneOf([["unhashable"], "a"]))
        mixed = fields.Integer(strict=True, validate=[validate.Range(min=0), validate.OneOf([0, 2, 4])])
        dated = fields.String(validate=validate.Regexp(r"\d{4}-\d{2}-\d{2}"))

    schema = Forms()
    values = {
        "code": ["ab", "abc", "abcd", ""],
        "short": ["", "a", "ab", "abc"],
        "level": [0, 1, 2, 4, 5, 6],
        "ratio": [0, 1, 9, 10],
        "flag": [True, False],
        "tagged": ["a", "b"],
        "mixed": [-2, 0, 1, 2, 4, 5],
        "dated": ["2026-11-28", "2026-11-28 and more", "on 2026-11-28", ""],
    }
    for name, candidates in values.items():
        for value in candidates:
            ok, expected = _marshmallow(schema, {name: value})
            fast_ok, got = _fast(schema, {name: value})
            assert fast_ok == ok, (name, value, expected)
            if ok:
                assert _same(got, expected)


def test_a_schema_with_a_renamed_field_has_no_in_place_check():
    schema = _Renamed()
    assert checker(schema) is None
    assert load(schema, {"title": "a"}, in_place=True) == {"name": "a"}


def test_a_schema_that_leaves_unknown_keys_out_takes_in_place_only_data_without_them():
    schema = _Lenient()
    data = {"name": "a"}
    assert checker(schema)(data) is data
    assert _checked_in_place(schema, {"name": "a", "extra": 1}) == (False, None)
    assert load(schema, {"name": "a", "extra": 1}, in_place=True) == {"name": "a"}
