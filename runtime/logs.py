"""Structured JSON logs: service, entrypoint, call id and project code on every line.

No payloads and no personal data are logged; only the fields listed here and those a
caller passes in ``extra`` from ``SAFE_EXTRA``.
"""
import datetime as dt
import json
import logging

SAFE_EXTRA = ("event", "source", "count", "code", "stage", "agency", "request_id", "outcome", "duration_ms", "method")


class JsonFormatter(logging.Formatter):
    def __init__(self, service="", **kwargs):
        super().__init__()
        self.service = service

    def format(self, record):
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = current_context()
        entry.update({k: v for k, v in ctx.items() if v})
        for key in SAFE_EXTRA:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


_local = None


def _store():
    global _local
    if _local is None:
        import threading
        _local = threading.local()  # green under eventlet: one per greenthread
    return _local


def set_context(**values):
    _store().ctx = {k: v for k, v in values.items() if v is not None}


def update_context(**values):
    store = _store()
    ctx = dict(getattr(store, "ctx", {}) or {})
    ctx.update({k: v for k, v in values.items() if v is not None})
    store.ctx = ctx


def current_context():
    return dict(getattr(_store(), "ctx", {}) or {})
