"""Structured JSON logs: one JSON object per line.

Every line carries ``ts``, ``level``, ``service``, ``logger`` and ``msg``; a line written
inside a worker also carries the worker's context, set by
:class:`runtime.ops.Instrumentation`: ``entrypoint`` (``rpc:declare_project``,
``event:handle_opinion_requested``, ``http:...``), ``call_id`` (nameko's call id, the
callee's lines name the caller's in ``parent_call_id`` and the first call of the chain,
e.g. the gateway's HTTP request, in ``origin_call_id``), ``code`` (the
project code: the correlation id of events, the ``code`` argument of calls) and, for
events, ``event_id`` and ``event``.

A record with ``extra={"lines": [fields, ...]}`` is written as one line per item: the
record's own line, each with that item's fields (context fields and ``SAFE_EXTRA`` only)
on top. :class:`runtime.ops.Instrumentation` writes the lines of a batch of events so, one
per event: the logging machinery then runs once per batch instead of once per event
(bench/README.md, step 23). A formatter other than :class:`JsonFormatter` writes such a
record as its one line.

No payloads and no personal data are logged: only these fields and those a caller
passes in ``extra`` from ``SAFE_EXTRA``. Exceptions named in a message are written as
their type (and, for expected domain errors, their code and the fields concerned), never
their text, which may quote data (an SQL error quotes its parameters); a line with an
unexpected exception carries ``exc_type`` and ``stack`` (file, line and function of each
frame, no values).
"""
import contextvars
import logging
import math
import os
import time
import traceback

from . import jsoncodec

# A JSON line carries none of a record's thread, process or source-line fields, so the
# records need not look them up (the "Optimization" table of the logging docs). Under
# eventlet, ``threading.current_thread()`` builds a wrapper for the green thread on every
# record: it was half the cost of each access-log line.
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
logging._srcfile = None

SAFE_EXTRA = ("event", "source", "count", "code", "stage", "agency", "request_id", "event_id", "outcome",
              "duration_ms", "method", "path", "status")
CONTEXT_FIELDS = ("service", "entrypoint", "call_id", "parent_call_id", "origin_call_id", "code", "event_id", "event")

# exceptions whose text is about the infrastructure, never about a project's data
_SAFE_TEXT = (OSError, TimeoutError, ConnectionError)


def _safe_text_types():
    types = list(_SAFE_TEXT)
    try:
        import amqp.exceptions
        types.append(amqp.exceptions.AMQPError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import kombu.exceptions
        types.append(kombu.exceptions.KombuError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def describe_exception(exc):
    """What may be logged of an exception: its type, and only text known to hold no data."""
    name = type(exc).__name__
    data = getattr(exc, "data", None)
    if _is_domain_error(exc):  # contracts.DomainError: its code, fields and article
        fields = [e.get("field") for e in data.get("errors") or [] if isinstance(e, dict) and e.get("field")]
        if data.get("field"):
            fields.insert(0, data["field"])
        text = f"{name}({data['code']})"
        if fields:
            text += " fields=" + ",".join(str(f) for f in fields[:10])
        if data.get("cite"):
            text += f" cite={data['cite']}"
        return text
    orig = getattr(exc, "orig", None)
    if orig is not None and type(exc).__module__.startswith("sqlalchemy"):
        # the database's own first line (e.g. 'database "x" does not exist', 'duplicate key value
        # violates unique constraint "y"'): never the statement or its parameters
        first = (str(orig).strip().splitlines() or [""])[0][:200]
        return f"{name}({type(orig).__name__}): {first}" if first else f"{name}({type(orig).__name__})"
    if isinstance(exc, _safe_text_types()):
        text = str(exc).strip().splitlines()
        return f"{name}: {text[0][:200]}" if text else name
    return name


def _scrub(arg):
    return describe_exception(arg) if isinstance(arg, BaseException) else arg


def _stack(tb, limit=30):
    frames = traceback.extract_tb(tb)[-limit:]
    return [f"{os.path.relpath(f.filename) if not f.filename.startswith('<') else f.filename}:{f.lineno} in {f.name}"
            for f in frames]


def _is_domain_error(exc):
    data = getattr(exc, "data", None)
    return isinstance(data, dict) and "code" in data and hasattr(exc, "message_en")


class JsonFormatter(logging.Formatter):
    def __init__(self, service="", **kwargs):
        super().__init__()
        self.service = service

    def message(self, record):
        if isinstance(record.msg, BaseException):
            return describe_exception(record.msg)
        msg = str(record.msg)
        args = record.args
        if not args:
            return msg
        if isinstance(args, dict):
            args = {k: _scrub(v) for k, v in args.items()}
        else:
            args = tuple(_scrub(a) for a in args)
        try:
            return msg % args
        except (TypeError, ValueError, KeyError):
            return msg

    def format(self, record):
        fields = record.__dict__
        entry = {
            "ts": _timestamp(record.created),
            "level": _LEVELS.get(record.levelno) or record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": self.message(record),
        }
        entry.update(_CONTEXT.get())
        for key in SAFE_EXTRA:
            if key in fields:
                entry[key] = fields[key]
        if record.exc_info and record.exc_info[0] is not None:
            exc = record.exc_info[1]
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc"] = describe_exception(exc)
            if not _is_domain_error(exc):  # an expected refusal needs no stack
                entry["stack"] = _stack(record.exc_info[2])
        lines = fields.get("lines")
        if type(lines) is list:
            return "\n".join(jsoncodec.dumps(_line(entry, line), default=str) for line in lines)
        return jsoncodec.dumps(entry, default=str)


_LINE_FIELDS = frozenset(CONTEXT_FIELDS + SAFE_EXTRA)


def _line(entry, fields):
    """One line of a record that carries several (``lines``): the record's own fields, then
    this line's, of those a line may carry."""
    if _LINE_FIELDS.issuperset(fields):
        return {**entry, **fields}
    return {**entry, **{key: value for key, value in fields.items() if key in _LINE_FIELDS}}


_LEVELS = {level: logging.getLevelName(level).lower()
           for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)}
_second = (None, "")  # the last whole second written, and its text


def _timestamp(created):
    """``created`` (seconds since the epoch) in ISO 8601, UTC, to the microsecond:
    ``2026-11-27T19:20:41.732583+00:00``. The text of the second is kept while it lasts
    (formatting a ``datetime`` cost a sixth of a log line)."""
    global _second
    fraction, whole = math.modf(created)  # rounded as datetime.fromtimestamp rounds
    second, micro = int(whole), round(fraction * 1_000_000)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    if _second[0] != second:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second[1]}.{micro:06d}+00:00"


# The worker's context: a dict never changed in place, one per green thread (a new green
# thread starts without one). A ContextVar reads faster than eventlet's green
# ``threading.local``.
_CONTEXT = contextvars.ContextVar("log_context", default={})


def set_context(**values):
    _CONTEXT.set({k: v for k, v in values.items() if v})


def update_context(**values):
    ctx = dict(_CONTEXT.get())
    ctx.update((k, v) for k, v in values.items() if v)
    _CONTEXT.set(ctx)
