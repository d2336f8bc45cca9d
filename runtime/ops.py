"""Operations surface shared by every service: metrics, health and log context.

* :class:`Instrumentation` — a dependency provider that times every entrypoint
  (RPC, event handler, HTTP) and counts it by outcome, and puts the service, the
  entrypoint, the call id and the project code into every log line of the worker.
* :class:`OpsEndpoints` — a mixin adding ``GET /metrics``, ``/health/live`` and
  ``/health/ready`` on the service's own web port (``WEB_SERVER_ADDRESS``).
"""
import json
import logging
import time

from nameko.extensions import DependencyProvider
from runtime.web import http
from werkzeug.wrappers import Response

from . import logs
from . import metrics as m

log = logging.getLogger(__name__)


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
    args = worker_ctx.args or ()
    kwargs = worker_ctx.kwargs or {}
    if args and isinstance(args[0], dict) and "correlation_id" in args[0]:
        return args[0]["correlation_id"]
    code = kwargs.get("code")
    return code if isinstance(code, str) else None


class Instrumentation(DependencyProvider):
    """Time and count each entrypoint; set the log context for the worker."""

    def setup(self):
        self.service = self.container.service_name
        self._started = {}

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()
        entrypoint = worker_ctx.entrypoint
        logs.set_context(
            service=self.service,
            entrypoint=f"{_entrypoint_kind(entrypoint)}:{entrypoint.method_name}",
            call_id=worker_ctx.call_id,
            code=_project_code(worker_ctx),
        )

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        entrypoint = worker_ctx.entrypoint
        kind = _entrypoint_kind(entrypoint)
        if exc_info is None:
            outcome = "success"
        elif isinstance(exc_info[1], getattr(entrypoint, "expected_exceptions", ()) or ()):
            outcome = "rejected"  # an expected, domain-level refusal
        elif type(exc_info[1]).__name__ == "AlreadyHandled":
            outcome = "duplicate"
        else:
            outcome = "error"
        if kind == "event":
            event = getattr(entrypoint, "event_type", entrypoint.method_name)
            m.EVENTS_HANDLED.labels(self.service, event, outcome).inc()
            m.EVENT_DURATION.labels(self.service, event, outcome).observe(elapsed)
        elif kind == "rpc":
            m.RPC_REQUESTS.labels(self.service, entrypoint.method_name, outcome).inc()
            m.RPC_DURATION.labels(self.service, entrypoint.method_name, outcome).observe(elapsed)
        elif kind == "http" and entrypoint.method_name not in ("ops_metrics", "ops_live", "ops_ready"):
            m.HTTP_REQUESTS.labels(self.service, entrypoint.method_name, outcome).inc()
            m.HTTP_DURATION.labels(self.service, entrypoint.method_name, outcome).observe(elapsed)

    def start(self):
        from .health import watch_consumers
        watch_consumers(self.container)

    def worker_teardown(self, worker_ctx):
        logs.set_context()

    def get_dependency(self, worker_ctx):
        return self  # ops endpoints reach the container through it


def _json(status, body):
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


class OpsEndpoints:
    """Mixin: ``/metrics``, ``/health/live``, ``/health/ready``.

    A service using it declares ``instrumentation = Instrumentation()`` and has a
    ``db`` (:class:`runtime.dependencies.Database`); optional ``domain_gauges(session)``
    returns extra samples for ``/metrics``.
    """

    @http("GET", "/metrics")
    def ops_metrics(self, request):
        m.refresh(self.instrumentation.container)
        body, content_type = m.exposition()
        return Response(body, status=200, content_type=content_type)

    @http("GET", "/health/live")
    def ops_live(self, request):
        return _json(200, {"status": "live", "service": self.name})

    @http("GET", "/health/ready")
    def ops_ready(self, request):
        from .health import readiness
        ok, checks = readiness(self.instrumentation.container)
        return _json(200 if ok else 503, {"status": "ready" if ok else "not_ready", "service": self.name, "checks": checks})
