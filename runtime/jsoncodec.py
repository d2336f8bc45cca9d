"""JSON on the suite's hot paths: orjson, with the json module's results.

Every RPC request and reply, every event, every stored case and ledger row and every
gateway answer is JSON, encoded once and decoded at least once per hop. orjson encodes a
7.2 KB case about ten times as fast as the json module and decodes it twice as fast
(``python -m bench.micro``, "JSON").

orjson takes only what it encodes as ``json.dumps(..., ensure_ascii=False,
separators=(",", ":"))`` would: ``datetime`` and dataclasses, which orjson would encode its
own way, go to ``default`` as with the json module. What orjson refuses (a non-``str`` key,
an integer wider than 64 bits, a value neither encodes, a ``default`` that raises) is
encoded by the json module as before, or fails with its error.

On decoding, orjson would read an integer wider than 64 bits as a float, which is not the
number sent. A text with 19 digits in a row (the shortest such integer has 19) is therefore
decoded by the json module; a 7.2 KB case is scanned for them in 4 µs. So is whatever
orjson refuses (``NaN``, invalid input): ``json.loads`` accepts it or raises its usual
``JSONDecodeError``.

Two differences remain, both valid JSON for the same value: a float may be written in
another form (``1e16`` for ``1e+16``), and ``NaN``/``Infinity`` are written ``null`` (the
json module writes JavaScript literals that are not JSON). Signatures keep their canonical
form by the json module (:mod:`runtime.signing`).
"""
import json

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))  # a digit → "0", the rest → " "
_WIDE = b"0" * 19  # digits in a row that may be an integer wider than 64 bits


def plain(value, default=None):
    """``value`` as compact UTF-8 JSON bytes by orjson; ``TypeError`` for what orjson
    leaves to the json module (or to kombu's encoder, :mod:`runtime.rpc`)."""
    return orjson.dumps(value, default=default, option=_OPTIONS)


def dumpb(value, default=None):
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)``,
    as UTF-8 bytes."""
    try:
        return plain(value, default)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode("utf-8")


def dumps(value, default=None):
    """As :func:`dumpb`, as text (a ``Text`` column, a log line)."""
    return dumpb(value, default).decode("utf-8")


def loads(data):
    """``json.loads(data)`` for ``bytes`` or ``str``."""
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if _WIDE not in raw.translate(_DIGITS):
            return orjson.loads(raw)
    except (UnicodeEncodeError, orjson.JSONDecodeError):
        pass  # a lone surrogate, NaN, invalid JSON: the json module decides
    return json.loads(data)
