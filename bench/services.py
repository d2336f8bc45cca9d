"""Services that exist only for the benchmarks. Each is built from the suite's own
runtime pieces (the RPC entrypoint and ``ServiceRpc`` the gateway uses, the ``Database``
provider with its outbox relay, the ``subscribe`` entrypoint with its inbox), so what
they measure is the suite's machinery, not a stand-in.

* ``bench_echo``: an RPC that returns its argument: the target of the in-service RPC
  figure (transport and entrypoint cost, no domain work).
* ``bench_caller``: calls another service from inside a worker, the way a service calls
  a service (``ServiceRpc`` dependency), and times each call there.
* ``BenchSource`` / ``BenchSink``: one service's outbox to another's handler. A
  subscription must be listed in ``contracts.events.SUBSCRIPTIONS``, so they take the
  names of a listed pair — ``registry`` publishing ``project_submitted`` to ``review``'s
  ``handle_project_submitted`` — and run in a vhost of their own, never beside the real
  registry and review. The sink's handler is an empty use case: its write is the inbox row.
"""
import json
import time

from nameko.events import EventDispatcher
from sqlalchemy import MetaData

from runtime.db import runtime_tables
from runtime.dependencies import Database
from runtime.messaging import subscribe
from runtime.ops import Instrumentation, OpsEndpoints
from runtime.rpc import ServiceRpc, rpc

NAMEKO_DISPATCH_EVENT = "bench_nameko_dispatch"


def event_payload(i=0):
    """A valid ``project_submitted`` payload: the project and its complete application
    (about 3 KB of JSON, like every event that carries an application)."""
    from bench.approvals import application
    from services.registry.usecases import complete_application
    app = _APP.get("app")
    if app is None:
        app = _APP["app"] = json.loads(json.dumps(complete_application(application(0)), default=str))
    code = f"2026-150621-{i % 99999 + 1:05d}-0"
    return {
        "project": {"code": code, "jurisdiction": "dalate", "unit_id": "BENCH-U0001", "unit_name": "基准测试单位",
                    "name": app["name"], "kind": app["kind"], "amount": app["amount"]},
        "application": app,
        "revision": 0,
        "declared_on": "2026-11-24",
    }


_APP = {}


class BenchEcho(OpsEndpoints):
    name = "bench_echo"
    instrumentation = Instrumentation()

    @rpc
    def echo(self, value=None):
        return value


class BenchCaller(OpsEndpoints):
    name = "bench_caller"
    instrumentation = Instrumentation()
    echo_rpc = ServiceRpc("bench_echo")
    registry_rpc = ServiceRpc("registry")

    @rpc
    def loop(self, target, method, kwargs, n):
        """Call ``target.method(**kwargs)`` ``n`` times in a row; seconds per call."""
        client = {"bench_echo": self.echo_rpc, "registry": self.registry_rpc}[target]
        fn = getattr(client, method)
        samples = []
        for _ in range(int(n)):
            started = time.perf_counter()
            fn(**kwargs)
            samples.append(time.perf_counter() - started)
        return samples


source_metadata = MetaData()
runtime_tables(source_metadata)
sink_metadata = MetaData()
runtime_tables(sink_metadata)

RECEIVED = {}  # event id -> time.time() after the handler's transaction committed


class BenchSource(OpsEndpoints):
    name = "registry"
    instrumentation = Instrumentation()
    db = Database(source_metadata)
    dispatch = EventDispatcher()

    @rpc
    def emit(self, n=1, per_transaction=1):
        """Emit ``n`` ``project_submitted`` events through the outbox, ``per_transaction`` per
        transaction; returns ``[[event_id, commit time], ...]``."""
        out = []
        left = int(n)
        i = 0
        while left > 0:
            batch = min(left, int(per_transaction))
            ids = []
            with self.db.transaction() as tx:
                for _ in range(batch):
                    payload = event_payload(i)
                    ids.append(tx.emit("project_submitted", payload, correlation_id=payload["project"]["code"]))
                    i += 1
            committed = time.time()
            out.extend([event_id, committed] for event_id in ids)
            left -= batch
        return out

    @rpc
    def nameko_dispatch(self, n):
        """nameko's own ``EventDispatcher``, one event after another; events per second."""
        body = event_payload()
        started = time.perf_counter()
        for _ in range(int(n)):
            self.dispatch(NAMEKO_DISPATCH_EVENT, body)
        return int(n) / (time.perf_counter() - started)


class BenchSink(OpsEndpoints):
    name = "review"
    instrumentation = Instrumentation()
    db = Database(sink_metadata)

    @subscribe("registry", "project_submitted")
    def handle_project_submitted(self, event):
        event_id = event["event_id"]
        with self.db.transaction(event=event) as tx:
            # the inbox row is the handler's write; the stamp is taken once it is committed
            # (in a batch of events, with the batch)
            tx.on_commit(lambda: RECEIVED.__setitem__(event_id, time.time()))

    @rpc
    def received(self, clear=False):
        """``{event_id: commit time}`` of every event handled since the last clear."""
        out = dict(RECEIVED)
        if clear:
            RECEIVED.clear()
        return out

    @rpc
    def received_count(self):
        return len(RECEIVED)
