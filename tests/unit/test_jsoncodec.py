"""runtime.jsoncodec encodes and decodes as the json module does (orjson does the work);
runtime.rpc.encode gives what kombu's JSON serializer would, decoded."""
import dataclasses
import datetime as dt
import decimal
import json
import math
import random
import uuid

import kombu.serialization
import pytest

from runtime import jsoncodec
from runtime.rpc import encode

pytestmark = pytest.mark.unit


def _reference(value, default=None):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode("utf-8")


KEY_TAILS = ["", "中", "\n", "😀"]


def _random_value(rng, depth=0):
    kinds = ["str", "int", "float", "bool", "none"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        alphabet = "abcXYZ 09_-\"\\/\n\t\u2028政务信息化项目审批“”、。😀\x01"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if kind == "int":
        return rng.choice([0, -1, 1, 2**31, -(2**53), 2**63 - 1, 2**64 - 1, 2**64, -(2**63) - 1, 10**30,
                           rng.randint(-10**12, 10**12)])
    if kind == "float":
        return rng.choice([0.0, -0.5, 1.5, 0.1, 1e-7, 123456.789, 2.5e-300, rng.uniform(-1e6, 1e6)])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {f"k{i}" + rng.choice(KEY_TAILS): _random_value(rng, depth + 1) for i in range(rng.randint(0, 5))}


def _exactly(value):
    """A form that tells 2**64 from 2.0**64 and 1 from True."""
    return repr(value)


def test_random_documents_encode_to_the_same_value_and_decode_alike():
    rng = random.Random(20261127)
    for _ in range(2000):
        value = _random_value(rng)
        encoded = jsoncodec.dumpb(value)
        reference = _reference(value)
        assert _exactly(json.loads(encoded)) == _exactly(json.loads(reference))
        assert _exactly(jsoncodec.loads(reference)) == _exactly(json.loads(reference))
        assert _exactly(jsoncodec.loads(reference.decode("utf-8"))) == _exactly(json.loads(reference))
        assert jsoncodec.dumps(value) == encoded.decode("utf-8")


def test_text_is_utf8_without_escapes_and_compact():
    value = {"name": "巴中市政务云", "list": [1, 2], "quote": "“引号”"}
    assert jsoncodec.dumps(value) == '{"name":"巴中市政务云","list":[1,2],"quote":"“引号”"}'
    assert jsoncodec.dumps(value) == _reference(value).decode("utf-8")


def test_datetime_and_dataclasses_go_to_default_as_with_the_json_module():
    @dataclasses.dataclass
    class Point:
        x: int

    moment = dt.datetime(2026, 11, 27, 9, 30, 0)
    for value in ({"at": moment}, {"day": dt.date(2026, 11, 27)}, {"p": Point(1)},
                  {"amount": decimal.Decimal("1.10")}, {"id": uuid.UUID(int=5)}):
        assert jsoncodec.dumpb(value, default=str) == _reference(value, default=str)
    with pytest.raises(TypeError):
        jsoncodec.dumpb({"at": moment})
    with pytest.raises(TypeError):
        jsoncodec.dumpb({"amount": decimal.Decimal("1")})


def test_what_orjson_refuses_is_encoded_by_the_json_module():
    for value in ({1: "a", 2: "b"}, {"big": 2**70}, {"neg": -(2**64)}, {True: 1}):
        assert jsoncodec.dumpb(value) == _reference(value)
    nested = current = []
    for _ in range(400):  # deeper than orjson's limit, within the json module's
        current.append([])
        current = current[0]
    assert jsoncodec.dumpb(nested) == _reference(nested)


def test_a_default_that_raises_fails_as_with_the_json_module():
    def refuse(value):
        raise TypeError(f"no JSON for {type(value).__name__}")

    with pytest.raises(TypeError, match="no JSON for datetime"):
        jsoncodec.dumpb({"at": dt.datetime(2026, 1, 1)}, default=refuse)


def test_nan_is_written_null_and_read_as_the_json_module_reads_it():
    assert json.loads(jsoncodec.dumpb({"x": math.nan})) == {"x": None}
    assert math.isnan(jsoncodec.loads('{"x": NaN}')["x"])
    assert jsoncodec.loads("[Infinity]") == [math.inf]


@pytest.mark.parametrize("number", [2**64, 2**64 - 1, -(2**63) - 1, -(2**63), 10**30, -(10**40)])
def test_integers_wider_than_64_bits_are_read_exactly(number):
    for text in (f'{{"n": {number}}}', f'{{"n": {number}}}'.encode()):
        loaded = jsoncodec.loads(text)["n"]
        assert loaded == number and type(loaded) is int


def test_a_long_run_of_digits_in_a_string_reads_the_same():
    text = json.dumps({"account": "6222" + "0" * 30, "n": 12345678901234567, "x": 1.5}, ensure_ascii=False)
    assert jsoncodec.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", '{"a": }', "[1,]", "nul", b"\xff\xfe"])
def test_invalid_input_raises_the_json_modules_error(text):
    with pytest.raises(json.JSONDecodeError if not isinstance(text, bytes) else ValueError) as raised:
        jsoncodec.loads(text)
    try:
        json.loads(text)
    except ValueError as expected:
        assert type(raised.value) is type(expected)
        assert str(raised.value) == str(expected)


def test_rpc_encode_is_kombus_json_decoded_alike():
    payload = {"args": [], "kwargs": {"code": "2026-510104-00001-X", "note": "政务"}}
    content_type, encoding, body = encode(payload, "json")
    assert (content_type, encoding) == kombu.serialization.dumps(payload, "json")[:2]
    assert kombu.serialization.loads(body, content_type, encoding) == payload


def test_rpc_encode_leaves_kombus_own_types_to_kombu():
    payload = {"result": {"at": dt.datetime(2026, 11, 27, 9, 30)}, "error": None}
    assert encode(payload, "json") == kombu.serialization.dumps(payload, "json")
    with pytest.raises(Exception):
        encode({"result": object()}, "json")
