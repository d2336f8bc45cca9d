"""Operations surface shared by every service: metrics, health and log context.

* :class:`Instrumentation` — a dependency provider that times every entrypoint
  (RPC, event handler, HTTP) and counts it by outcome, puts the service, the
  entrypoint, the call id and the project code into every log line of the worker, and
  writes one ``"<kind> handled"`` line per call or event (``outcome``, ``duration_ms``).
* :class:`OpsEndpoints` — a mixin adding ``GET /metrics``, ``/health/live`` and
  ``/health/ready`` on the service's own web port (``WEB_SERVER_ADDRESS``).
"""
import collections
import logging
import time

from nameko.extensions import DependencyProvider
from runtime.web import http, json_response
from werkzeug.wrappers import Response

from . import collector
from . import logs
from . import metrics as m
from .messaging import EventBatch, event_fields

log = logging.getLogger(__name__)

OPS_ROUTES = ("ops_metrics", "ops_live", "ops_ready")  # scraped and probed all the time: not logged


def _entrypoint_kind(entrypoint):
    name = type(entrypoint).__name__
    if name == "Subscribe":
        return "event"
    if name in ("Rpc",):
        return "rpc"
    if name == "HttpRequestHandler" or "Http" in name:
        return "http"
    return name.lower()


def _project_code(worker_ctx):
    """The project a worker is about: an event's correlation id, else a ``code`` argument."""
    args = worker_ctx.args or ()
    kwargs = worker_ctx.kwargs or {}
    if args and isinstance(args[0], dict) and "correlation_id" in args[0]:
        return args[0]["correlation_id"]
    code = kwargs.get("code")
    return code if isinstance(code, str) else None


def log_context(service, worker_ctx):
    """The fields every log line of this worker carries (see :mod:`runtime.logs`)."""
    entrypoint = worker_ctx.entrypoint
    kind = _entrypoint_kind(entrypoint)
    context = {
        "service": service,
        "entrypoint": f"{kind}:{entrypoint.method_name}",
        "call_id": worker_ctx.call_id,
        "parent_call_id": worker_ctx.immediate_parent_call_id,
        "origin_call_id": worker_ctx.origin_call_id if worker_ctx.immediate_parent_call_id else None,
        "code": _project_code(worker_ctx),
    }
    if kind == "event" and worker_ctx.args and isinstance(worker_ctx.args[0], dict):
        context.update(event_fields(worker_ctx.args[0]))
    return context


class Instrumentation(DependencyProvider):
    """Time and count each entrypoint; set the log context for the worker. At setup it
    checks the process-wide settings and applies the collector's (:mod:`runtime.collector`).

    ``counts`` counts this container's workers by ``(kind, method, outcome)``: the
    Prometheus counters are per process, this is per instance (two instances of a service
    in one process, as the scale-out test runs them, each have their own).
    """

    def setup(self):
        from .dependencies import contract_checks
        contract_checks()  # a misspelt CONTRACT_CHECKS stops the service at start, not at each call
        collector.configure()  # the process's garbage collector (GC_THRESHOLD)
        self.service = self.container.service_name
        self._started = {}
        self.counts = collections.Counter()
        self._metrics = {}  # (kind, method, outcome) -> _children(...)

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()
        logs.set_context(**log_context(self.service, worker_ctx))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        entrypoint = worker_ctx.entrypoint
        batch = worker_ctx.args[0] if worker_ctx.args else None
        if isinstance(batch, EventBatch):
            # one line and one count per event, each line with its event's fields, as with one
            # worker each; the lines go out as one record (runtime.logs), one per event
            lines = []
            for item, item_exc in batch.outcomes(exc_info):
                outcome, _ = self._outcome("event", entrypoint, item_exc)
                self._count("event", entrypoint, outcome, item.elapsed)
                line = {key: value for key, value in event_fields(item.envelope).items() if value}
                line["outcome"] = outcome
                line["duration_ms"] = round(item.elapsed * 1000, 1)
                lines.append(line)
            if lines:
                log.info("event handled", extra={"lines": lines})
            return
        self._record(_entrypoint_kind(entrypoint), entrypoint, time.perf_counter() - started, exc_info, result)

    def _record(self, kind, entrypoint, elapsed, exc_info, result=None):
        outcome, extra = self._outcome(kind, entrypoint, exc_info, result)
        self._count(kind, entrypoint, outcome, elapsed)
        if entrypoint.method_name not in OPS_ROUTES:
            # one line per call or event: with the worker's context, what happened and how long it
            # took. The message comes without arguments: a record with one argument checks whether
            # it is a mapping, an isinstance against an abstract class, for every line
            log.info(f"{kind} handled", extra=dict(extra, outcome=outcome, duration_ms=round(elapsed * 1000, 1)))

    @staticmethod
    def _outcome(kind, entrypoint, exc_info, result=None):
        """``(outcome, extra fields of the line)`` of one call or event."""
        if exc_info is None:
            outcome = "success"
        elif type(exc_info[1]).__name__ == "AlreadyHandled":
            outcome = "duplicate"  # a redelivered event, already handled: a no-op
        elif isinstance(exc_info[1], getattr(entrypoint, "expected_exceptions", ()) or ()):
            outcome = "rejected"  # an expected, domain-level refusal
        else:
            outcome = "error"
        extra = {}
        status = getattr(result, "status_code", None) if kind == "http" else None
        if isinstance(status, int):
            # an HTTP handler answers its errors itself: its status says how it went
            extra["status"] = status
            if outcome == "success" and status >= 500:
                outcome = "error"
            elif outcome == "success" and status >= 400:
                outcome = "rejected"
        return outcome, extra

    def _count(self, kind, entrypoint, outcome, elapsed):
        key = (kind, entrypoint.method_name, outcome)
        self.counts[key] += 1
        metrics = self._metrics.get(key)
        if metrics is None:
            metrics = self._metrics[key] = self._children(kind, entrypoint, outcome)
        if metrics:
            count, duration = metrics
            count.inc()
            duration.observe(elapsed)

    def _children(self, kind, entrypoint, outcome):
        """The counter and the histogram of one entrypoint and outcome, or ``()`` for those
        not counted. Looked up once: ``labels()`` cost more than the increment."""
        if kind == "event":
            event = getattr(entrypoint, "event_type", entrypoint.method_name)
            return (m.EVENTS_HANDLED.labels(self.service, event, outcome),
                    m.EVENT_DURATION.labels(self.service, event, outcome))
        if kind == "rpc":
            return (m.RPC_REQUESTS.labels(self.service, entrypoint.method_name, outcome),
                    m.RPC_DURATION.labels(self.service, entrypoint.method_name, outcome))
        if kind == "http" and entrypoint.method_name not in OPS_ROUTES:
            return (m.HTTP_REQUESTS.labels(self.service, entrypoint.method_name, outcome),
                    m.HTTP_DURATION.labels(self.service, entrypoint.method_name, outcome))
        return ()

    def start(self):
        from .health import watch_consumers
        watch_consumers(self.container)

    def worker_teardown(self, worker_ctx):
        logs.set_context()

    def get_dependency(self, worker_ctx):
        return self  # ops endpoints reach the container through it


class OpsEndpoints:
    """Mixin: ``/metrics``, ``/health/live``, ``/health/ready``.

    A service using it declares ``instrumentation = Instrumentation()`` and has a
    ``db`` (:class:`runtime.dependencies.Database`). Before each scrape the refreshers
    registered with :func:`runtime.metrics.add_refresher` update the gauges (readiness,
    dead letters, outbox, and the service's own domain gauges in ``services/<name>/metrics.py``).
    """

    @http("GET", "/metrics")
    def ops_metrics(self, request):
        m.refresh(self.instrumentation.container)
        body, content_type = m.exposition()
        return Response(body, status=200, content_type=content_type)

    @http("GET", "/health/live")
    def ops_live(self, request):
        return json_response(200, {"status": "live", "service": self.name})

    @http("GET", "/health/ready")
    def ops_ready(self, request):
        from .health import readiness
        ok, checks = readiness(self.instrumentation.container)
        return json_response(200 if ok else 503,
                             {"status": "ready" if ok else "not_ready", "service": self.name, "checks": checks})
