"""The benchmarks: how fast the suite is, against the broker's own floor in the same run.

    .venv/bin/python bench/run.py            # every figure (make bench), < 10 min on 2 cores
    .venv/bin/python bench/run.py --quick    # fewer samples, smaller runs (make bench-quick), < 2 min
    .venv/bin/python bench/run.py --only floor,rpc,gateway,events,approvals,scale

Starts its own suite (own vhosts, own databases, one ``nameko run`` process per service),
prints one table and writes ``bench/results.json``. See bench/README.md for what each
figure measures and how.
"""
import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import approvals, floor, http_load, scale  # noqa: E402
from bench.client import Client  # noqa: E402
from bench.harness import SUITE, Cluster, cpu_seconds, postgres_cpu, with_broker  # noqa: E402
from bench.stats import Results, percentile, summary_ms  # noqa: E402

MB = 1024 * 1024
ADMIN_PASSWORD = "bench-admin-" + uuid.uuid4().hex[:8]
ALL_PHASES = ["floor", "rpc", "gateway", "approvals", "scale", "events"]
SMALL = json.dumps({"args": [], "kwargs": {"value": "x" * 100}})

FULL = dict(rtt=2000, delivery=500, rate_sync=2000, rate_async=20000, rtt16=10000, rpc=1000, gw=1000, gw_seconds=10,
            approvals=1000, approvals_idle=25, scale=100_000, scale_queries=200, ev_latency=300, ev_rate=20000, nameko=2000)
QUICK = dict(rtt=500, delivery=150, rate_sync=600, rate_async=5000, rtt16=3000, rpc=300, gw=200, gw_seconds=3,
             approvals=150, approvals_idle=8, scale=20_000, scale_queries=50, ev_latency=100, ev_rate=4000, nameko=600)


#: the pause between two events of the latency figure, and between two messages of its floor
EVENT_PACE = 0.02


def say(text):
    print(text, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.n = QUICK if args.quick else FULL
        self.phases = args.only.split(",") if args.only else ALL_PHASES
        self.results = Results()
        self._projects = {}  # vhost URI -> a project declared there (any_project)
        self.run_dir = os.path.join(ROOT, "var", "bench", dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
        self.cluster = Cluster(self.run_dir)
        self.body = json.dumps(self.event_envelope()).encode()
        self.rss = {}
        self.cpu = {}

    @staticmethod
    def event_envelope():
        """The same bytes a ``project_submitted`` event carries (payload of bench/services.py)."""
        from bench.services import event_payload
        payload = event_payload()
        return {"event_id": uuid.uuid4().hex, "event_type": "project_submitted", "source": "registry",
                "occurred_at": "2026-11-24T08:00:00Z", "correlation_id": payload["project"]["code"],
                "version": "1.0", "payload": payload}

    # ---- the floor ------------------------------------------------------------------------------
    def phase_floor(self):
        say("· floor: raw AMQP round trip, confirmed delivery and publish rates (plain kombu/amqp)")
        client = self.floor_client()
        uri = self.floor_uri
        for _ in range(100):
            client.round_trip(SMALL)
        samples = [client.round_trip(SMALL) for _ in range(self.n["rtt"])]
        p50, p99, n = summary_ms(samples)
        self.results.add("floor.rtt", "floor: raw AMQP request/reply round trip", p50, "ms", p99=p99, samples=n)
        rate16 = client.round_trip_rate(SMALL, self.n["rtt16"], in_flight=16)
        self.results.add("floor.rtt16", "floor: raw request/reply rate, 16 in flight", rate16, "req/s")
        for _ in range(20):
            client.confirmed_delivery(self.body)
        pairs = [client.confirmed_delivery(self.body) for _ in range(self.n["delivery"])]
        p50, p99, n = summary_ms([a for a, _ in pairs])
        self.results.add("floor.delivery", "floor: confirmed publish to a quorum queue → consumer has it",
                         p50, "ms", p99=p99, samples=n)
        c50, c99, _ = summary_ms([b for _, b in pairs])
        self.results.add("floor.confirm", "floor: publish until its confirm (quorum queue)", c50, "ms",
                         p99=c99, samples=n)
        rate = floor.publish_rate_sync(uri, self.body, self.n["rate_sync"])
        self.results.add("floor.rate_sync", "floor: publish rate, confirm awaited per message (quorum)", rate,
                         "msg/s")
        # the published messages stay in the queue for the consumer floor to drain
        rate = floor.publish_rate_async(uri, self.body, self.n["rate_async"], keep=True)
        self.results.add("floor.rate_async", "floor: publish rate, asynchronous confirms (quorum)", rate, "msg/s")
        rate = floor.consume_rate(uri, self.n["rate_async"])
        self.results.add("floor.consume", "floor: one plain consumer process, decode and ack each "
                         f"(quorum, prefetch {floor.PREFETCH})", rate, "msg/s")

    def floor_client(self):
        """The floor's responder process and client, kept for the whole run: the latency
        figures take their floor samples interleaved with their own."""
        if getattr(self, "_floor_client", None) is None:
            self.floor_uri = self.cluster.vhost("floor")
            self._responder = floor.start_responder(self.floor_uri,
                                                    os.path.join(self.cluster.log_dir, "floor-responder.log"))
            self._floor_client = floor.FloorClient(self.floor_uri)
        return self._floor_client

    def close_floor(self):
        if getattr(self, "_floor_client", None) is not None:
            self._floor_client.close()
            self._responder.terminate()
            self._responder.wait(10)
            self._floor_client = None

    def interleaved(self, key, label, floor_fn, measure, n, rounds=5):
        """``n`` samples of ``measure(k) -> [seconds]`` in ``rounds`` batches, each after a
        batch of the same size of ``floor_fn() -> seconds``; adds the floor figure ``key``
        (what the broker gave while this figure was taken) and returns the samples."""
        floor_samples, samples = [], []
        per = max(n // rounds, 1)
        for _ in range(rounds):
            floor_samples.extend(floor_fn() for _ in range(per))
            samples.extend(measure(per))
        p50, p99, count = summary_ms(floor_samples)
        self.results.add(key, label, p50, "ms", p99=p99, samples=count)
        return samples

    # ---- the suite -------------------------------------------------------------------------------
    def start_suite(self, backend, label):
        """All five services and the gateway on ``backend``, the bench profile, own vhost."""
        uri = self.cluster.vhost(label)
        profile_dir = os.path.join(self.run_dir, "profiles")
        approvals.write_auto_profile(profile_dir)
        defines = {"PROFILE_DIR": profile_dir, "GATEWAY_ADMIN_PASSWORD": ADMIN_PASSWORD}
        names = []
        urls = {}
        for service in SUITE:
            urls[service] = self.cluster.database(backend, f"{label}_{service}")
            self.cluster.start_suite_service(service, uri, urls[service], approvals.JURISDICTION, defines=defines,
                                             prefix=f"{label}.")
            names.append(f"{label}.{service}")
        self.cluster.wait_ready(names)
        return uri, urls, profile_dir

    def suite_pids(self, label):
        """{process name: pid} of the suite started as ``label``, and the broker's."""
        return with_broker({service: self.cluster.procs[f"{label}.{service}"].pid for service in SUITE})

    def measure_rss(self, label, when):
        for service in SUITE:
            proc = self.cluster.procs.get(f"{label}.{service}")
            if proc is not None:
                self.rss.setdefault(label, {}).setdefault(service, {})[when] = proc.rss()

    def suite(self):
        if not hasattr(self, "_suite"):
            say("· starting the suite on SQLite (5 services + gateway, one process each) ...")
            started = time.monotonic()
            self._suite = self.start_suite("sqlite", "sqlite")
            say(f"  ready in {time.monotonic() - started:.1f}s")
            time.sleep(2)
            self.measure_rss("sqlite", "idle")
        return self._suite

    # ---- RPC --------------------------------------------------------------------------------------
    def phase_rpc(self):
        uri, _, _ = self.suite()
        say("· in-service RPC: bench_caller → bench_echo / registry.get_project (ServiceRpc, as the gateway)")
        self.cluster.start_bench_service("bench_echo", "BenchEcho", uri)
        self.cluster.start_bench_service("bench_caller", "BenchCaller", uri)
        self.cluster.wait_ready(["bench_echo", "bench_caller"])
        time.sleep(1)
        client = Client(uri)
        try:
            client.call("bench_caller", "loop", target="bench_echo", method="echo", kwargs={"value": 1}, n=100)
            fc = self.floor_client()
            samples = self.interleaved(
                "floor.rtt.rpc", "floor: raw round trip, interleaved with the RPC samples",
                lambda: fc.round_trip(SMALL),
                lambda k: client.call("bench_caller", "loop", target="bench_echo", method="echo",
                                      kwargs={"value": "x" * 100}, n=k), self.n["rpc"])
            p50, p99, n = summary_ms(samples)
            self.results.add("rpc.echo", "RPC inside a service → another service (echo: RPC machinery only)", p50,
                             "ms", p99=p99, samples=n, floor="floor.rtt.rpc", goal="≤ 2× raw round trip",
                             check=lambda v, r: r <= 2.0)
            project = self.any_project(client)
            client.call("bench_caller", "loop", target="registry", method="get_project", kwargs={"code": project},
                        n=50)
            samples = client.call("bench_caller", "loop", target="registry", method="get_project",
                                  kwargs={"code": project}, n=self.n["rpc"])
            p50, p99, n = summary_ms(samples)
            self.results.add("rpc.get_project", "RPC inside a service → registry.get_project (read + contracts)",
                             p50, "ms", p99=p99, samples=n, floor="floor.rtt.rpc")
            self.rss.setdefault("bench", {})["bench_echo"] = {"idle": self.cluster.procs["bench_echo"].rss()}
        finally:
            client.close()
            self.cluster.stop("bench_caller")

    def any_project(self, client):
        """A project declared in the suite ``client`` talks to, once per suite (vhost)."""
        projects = self._projects
        if client.uri not in projects:
            app = approvals.application(0)
            result = client.call("registry", "declare_project", unit_id="BENCH-READ", unit_name="基准测试单位",
                                 application=app)
            projects[client.uri] = result["code"]
            time.sleep(1)  # let the case open (history, first stage)
        return projects[client.uri]

    # ---- gateway ------------------------------------------------------------------------------
    def phase_gateway(self):
        uri, _, _ = self.suite()
        gateway = self.cluster.procs["sqlite.gateway"].base_url
        say(f"· gateway read over HTTP: GET /api/v1/projects/<code> (project, case, history) at {gateway}")
        client = Client(uri)
        try:
            code = self.any_project(client)
        finally:
            client.close()
        token = self.unit_token(gateway, "BENCH-READ")
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{gateway}/api/v1/projects/{code}"
        http_load.latencies(url, headers, 50, warmup=0)
        fc = self.floor_client()
        samples = self.interleaved(
            "floor.rtt.gateway", "floor: raw round trip, interleaved with the gateway reads",
            lambda: fc.round_trip(SMALL), lambda k: http_load.latencies(url, headers, k, warmup=3), self.n["gw"])
        p50, p99, n = summary_ms(samples)
        self.results.add("gateway.read", "gateway read over HTTP, concurrency 1 (project + case + history)", p50,
                         "ms", p99=p99, samples=n, floor="floor.rtt.gateway", goal="p50 ≤ 4× raw round trip",
                         check=lambda v, r: r <= 4.0)
        rps, tool, w50, w99, errors = http_load.throughput(url, headers, 16, self.n["gw_seconds"])
        self.results.add("gateway.rps16", f"gateway read, concurrency 16 ({tool})", rps, "req/s", p99=w99,
                         floor="floor.rtt16", note=f"p50 {w50} ms; non-2xx {errors}")

    def admin_token(self, gateway):
        return self.post(gateway, "/api/v1/auth/token", {"username": "admin", "password": ADMIN_PASSWORD})["token"]

    def unit_token(self, gateway, unit_id):
        admin = self.admin_token(gateway)
        username = f"bench-{unit_id.lower()}"
        self.post(gateway, "/api/v1/users", {"username": username, "display_name": username, "password": "bench-pw-1",
                                             "role": "unit", "unit_id": unit_id, "unit_name": "基准测试单位"},
                  token=admin, ok=(201, 409))
        return self.post(gateway, "/api/v1/auth/token", {"username": username, "password": "bench-pw-1"})["token"]

    @staticmethod
    def post(base, path, body, token=None, ok=(200, 201)):
        import urllib.request
        import urllib.error
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return json.loads(exc.read() or b"null")
            raise RuntimeError(f"POST {path} → {exc.code}: {exc.read()[:300]!r}") from None

    # ---- approvals ------------------------------------------------------------------------------
    def phase_approvals(self):
        backends = [b for b in self.args.db.split(",") if b]
        for backend in backends:
            if backend == "sqlite":
                uri, urls, profile_dir = self.suite()
                label = "sqlite"
            else:
                say(f"· starting the suite on {backend} ...")
                uri, urls, profile_dir = self.start_suite(backend, "pg")
                label = "pg"
                time.sleep(2)
                self.measure_rss(label, "idle")
            name = "SQLite" if backend == "sqlite" else "PostgreSQL"
            idle_n, n = self.n["approvals_idle"], self.n["approvals"]
            say(f"· approvals on {backend}: {idle_n} one at a time, then {n} with {self.args.window} in flight "
                f"(declaration → approval, every signature automatic)")
            idle = self.approval_run(uri, profile_dir, idle_n, 1, f"BENCH-{label.upper()}-IDLE-U")
            pids = self.suite_pids(label)
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            before["bench"] = time.process_time()
            pg_before = postgres_cpu() if backend != "sqlite" else {}
            out = self.approval_run(uri, profile_dir, n, self.args.window, f"BENCH-{label.upper()}-U")
            after = {name: cpu_seconds(pid) for name, pid in pids.items()}
            after["bench"] = time.process_time()
            self.cpu[label] = {name: (after[name] - before[name]) * 1000 / n for name in before}
            if backend != "sqlite":  # every backend of the server: other clients' work counts too
                pg_after = postgres_cpu()
                self.cpu[label]["postgres"] = sum(
                    cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items()) * 1000 / n
            self.check_ledger(uri, idle_n + n)
            events = self.count_events(urls)
            per_project = events / (idle_n + n)
            if "floor.chain" not in self.results.by_key and "floor.delivery" in self.results.by_key:
                chain = (approvals.HOPS_DELIVERY * self.results.by_key["floor.delivery"]["value"]
                         + approvals.HOPS_RTT * self.results.by_key["floor.rtt"]["value"])
                self.results.add("floor.chain", f"floor: the pipeline's critical path on the bare broker "
                                 f"({approvals.HOPS_DELIVERY} confirmed deliveries + {approvals.HOPS_RTT} round trips)",
                                 chain, "ms")
            p50, p99, samples = summary_ms(idle["latencies"])
            self.results.add(f"approvals.{label}.latency", f"declaration → approval, {name}, one project at a time",
                             p50, "ms", p99=p99, samples=samples, floor="floor.chain")
            if "floor.rate_async" in self.results.by_key:
                # the broker's ceiling for this pipeline: every event is one confirmed publish
                self.results.add(f"floor.approvals_{label}", f"floor: broker ceiling for {name}'s run, "
                                 f"{per_project:.1f} events per project at the async-confirm rate",
                                 self.results.by_key["floor.rate_async"]["value"] / per_project, "projects/s")
            self.results.add(f"approvals.{label}.rate", f"approvals per second, {name} ({n} projects)",
                             out["rate"], "projects/s", floor=f"floor.approvals_{label}",
                             goal="≥ 50/s" if backend == "sqlite" else None,
                             check=(lambda v, r: v >= 50) if backend == "sqlite" else None,
                             note=f"{per_project:.1f} events per project; {self.args.window} projects in flight")
            p50, p99, samples = summary_ms(out["latencies"])
            self.results.add(f"approvals.{label}.latency_loaded",
                             f"declaration → approval, {name}, {self.args.window} in flight", p50, "ms", p99=p99,
                             samples=samples, floor="floor.chain")
            cpu = self.cpu[label]
            self.results.add(f"approvals.{label}.cpu", f"CPU per approved project, {name}, all processes",
                             sum(cpu.values()), "ms", note=", ".join(f"{k} {v:.1f}" for k, v in
                                                                    sorted(cpu.items(), key=lambda kv: -kv[1])))
            self.measure_rss(label, "after")
            if backend != "sqlite":
                for service in SUITE:
                    self.cluster.stop(f"{label}.{service}")

    def approval_run(self, uri, profile_dir, n, window, unit_prefix):
        client = Client(uri)
        try:
            return approvals.ApprovalRun(client, profile_dir, n, window=window, unit_prefix=unit_prefix).run()
        finally:
            client.close()

    def count_events(self, urls):
        """Events written to every service's outbox (all published by now)."""
        from sqlalchemy import text
        from runtime.db import make_engine
        total = 0
        for service, url in urls.items():
            engine = make_engine(url)
            try:
                with engine.connect() as conn:
                    total += conn.execute(text("SELECT count(*) FROM outbox")).scalar()
            finally:
                engine.dispose()
        return total

    def check_ledger(self, uri, expected):
        """The registry's ledger must show every project approved (its own record of the
        ``project_approved`` event, not just the bench's tap)."""
        client = Client(uri)
        try:
            deadline = time.monotonic() + 60
            while True:
                page = client.call("registry", "list_projects", state="approved", limit=1, offset=0,
                                   unit_id=None, pool=None)
                if page["total"] >= expected or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            if page["total"] < expected:
                raise RuntimeError(f"the registry shows {page['total']} approved projects, expected {expected}")
        finally:
            client.close()

    # ---- scale -----------------------------------------------------------------------------------
    def phase_scale(self):
        uri, urls, profile_dir = self.suite()
        n = self.n["scale"]
        say(f"· scale: bulk-loading {n:,} projects into the registry's ledger ...")
        from policy import load_profile
        profile = load_profile(approvals.JURISDICTION, profile_dir)
        app = approvals.application(0)
        from services.registry.usecases import complete_application
        complete = json.loads(json.dumps(complete_application(app), default=str))
        seconds = scale.load(urls["registry"], n, profile.admin_code, profile.key, complete)
        say(f"  loaded in {seconds:.1f}s")
        gateway = self.cluster.procs["sqlite.gateway"].base_url
        headers = {"Authorization": f"Bearer {self.admin_token(gateway)}"}
        queries = [
            ("list", "", "newest 50 of all"),
            ("unit", f"?unit_id={scale.unit_id(42)}", "one unit's"),
            ("state", "?state=approved", "state = approved"),
            ("pool", "?pool=reserve", "pool = reserve"),
        ]
        worst = 0.0
        for key, query, label in queries:
            url = f"{gateway}/api/v1/projects{query}"
            samples = http_load.latencies(url, headers, self.n["scale_queries"], warmup=20)
            p50 = percentile(samples, 50) * 1e3
            p95 = percentile(samples, 95) * 1e3
            worst = max(worst, p95)
            self.results.add(f"scale.{key}", f"{n // 1000}k projects: list {label} via gateway (p95)", p95, "ms",
                             floor="floor.rtt", goal="p95 ≤ 50 ms", check=lambda v, r: v <= 50,
                             samples=len(samples), note=f"p50 {p50:.1f} ms")

    # ---- events -----------------------------------------------------------------------------------
    def phase_events(self):
        say("· events: one service's outbox → another's handler (bench source/sink on the suite's runtime)")
        uri = self.cluster.vhost("events")
        source_db = self.cluster.database("sqlite", "events_source")
        # the sustained run's events wait in the source's outbox before the source starts
        total = self.n["ev_rate"]
        backlog = prefill_outbox(source_db, total)
        self.cluster.start_bench_service("bench_sink", "BenchSink", uri,
                                         db_url=self.cluster.database("sqlite", "events_sink"))
        self.cluster.wait_ready(["bench_sink"])
        self.cluster.start_bench_service("bench_source", "BenchSource", uri, db_url=source_db)
        self.cluster.wait_ready(["bench_source"])
        client = Client(uri)
        try:
            # sustained: the relay publishes the backlog, the sink's handler commits each event
            received = self.wait_received(client, backlog, timeout=600)
            published = published_times(source_db)
            first = min(published)
            last = max(received[e] for e in backlog)
            rate = total / (last - first)
            consume = self.results.by_key.get("floor.consume")
            self.results.add("events.rate", f"events/s, outbox → handler commit in another service ({total:,})",
                             rate, "events/s", floor="floor.rate_async", goal="≥ 5,000/s",
                             check=lambda v, r: v >= 5000,
                             note=f"{rate / consume['value']:.2f}× one plain consumer process" if consume else "")
            relay = (len(published) - self.relay_batch) / max(max(published) - first, 1e-6)
            self.results.add("events.relay", "events/s, outbox relay → broker (confirmed and routed)", relay,
                             "events/s", floor="floor.rate_async", goal="≥ 5,000/s", check=lambda v, r: v >= 5000)
            time.sleep(1)
            # latency: one event at a time on an idle pair
            self.paced_events(client, 20)
            lat = self.interleaved(
                "floor.delivery.events", "floor: confirmed publish → consumer, one every 20 ms as the events",
                self.paced_delivery, lambda k: self.paced_events(client, k), self.n["ev_latency"])
            p50, p99, n = summary_ms(lat)
            self.results.add("events.latency", "event via outbox: domain commit → handler commit (other service)",
                             p50, "ms", p99=p99, samples=n, floor="floor.delivery.events",
                             goal="≤ 1.5× confirmed publish", check=lambda v, r: r <= 1.5)
            # nameko's own dispatcher, side by side
            self.bind_nameko_queue(uri)
            client.call("registry", "nameko_dispatch", n=50)
            rate = client.call("registry", "nameko_dispatch", n=self.n["nameko"], _timeout=300)
            self.results.add("events.nameko", "nameko EventDispatcher, one confirmed publish after another", rate,
                             "events/s", floor="floor.rate_sync")
        finally:
            client.close()
            self.cluster.stop("bench_source")
            self.cluster.stop("bench_sink")

    relay_batch = 500

    def paced_events(self, client, k):
        """``k`` events, one every ``EVENT_PACE``, each emitted in a transaction of its own by
        the source behind ``client``: seconds from each one's commit to the sink's commit."""
        sent = []
        for _ in range(k):
            sent.extend(client.call("registry", "emit", n=1, per_transaction=1))
            time.sleep(EVENT_PACE)
        received = self.wait_received(client, {event_id for event_id, _ in sent})
        return [received[event_id] - at for event_id, at in sent]

    def paced_delivery(self):
        """The floor of ``paced_events``: one confirmed publish on the bare broker, until the
        consumer has it, after the same pause (one message alone on an idle pair, not back to
        back)."""
        time.sleep(EVENT_PACE)
        return self.floor_client().confirmed_delivery(self.body)[0]

    def wait_received(self, client, ids, timeout=60):
        """Wait until the sink handled every event of ``ids``; ``{event_id: commit time}``."""
        deadline = time.monotonic() + timeout
        while client.call("review", "received_count") < len(ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"events: not all {len(ids)} handled after {timeout}s")
            time.sleep(0.2)
        received = client.call("review", "received", clear=True)
        missing = set(ids) - set(received)
        if missing:
            raise RuntimeError(f"events: {len(missing)} events not handled, e.g. {sorted(missing)[:3]}")
        return received

    @staticmethod
    def bind_nameko_queue(uri):
        from runtime.publisher import connection_params
        import amqp
        from bench.services import NAMEKO_DISPATCH_EVENT
        conn = amqp.Connection(**connection_params(uri))
        conn.connect()
        try:
            ch = conn.channel()
            ch.exchange_declare("registry.events", "topic", durable=True, auto_delete=False)
            ch.queue_declare("bench.nameko-dispatch", durable=True, auto_delete=False,
                             arguments={"x-queue-type": "quorum"})
            ch.queue_bind("bench.nameko-dispatch", "registry.events", routing_key=NAMEKO_DISPATCH_EVENT)
        finally:
            conn.close()

    # ---- memory ----------------------------------------------------------------------------------
    def memory_figures(self):
        echo = (self.rss.get("bench", {}).get("bench_echo") or {}).get("idle")
        if echo:
            self.results.add("floor.rss", "floor: RSS of a bare nameko service (bench_echo)", echo / MB, "MB")
        for label, services in self.rss.items():
            if label == "bench":
                continue
            name = "SQLite" if label == "sqlite" else "PostgreSQL"
            for service, values in services.items():
                for when in ("idle", "after"):
                    if when not in values:
                        continue
                    text = "idle" if when == "idle" else f"after the {self.n['approvals']}-project run"
                    self.results.add(f"rss.{label}.{service}.{when}", f"RSS {service} ({name}), {text}",
                                     values[when] / MB, "MB", floor="floor.rss" if echo else None,
                                     goal="≤ 100 MB", check=lambda v, r: v <= 100)

    # ---- the run ---------------------------------------------------------------------------------
    def run(self):
        started = time.monotonic()
        subprocess.run([os.path.join(ROOT, "bench", "setup.sh")], check=False)
        say(f"benchmarks ({'quick' if self.args.quick else 'full'}), logs in {os.path.relpath(self.run_dir, ROOT)}")
        try:
            for phase in ALL_PHASES:
                if phase in self.phases:
                    getattr(self, f"phase_{phase}")()
            self.memory_figures()
        finally:
            self.close_floor()
            self.cluster.close()
        elapsed = time.monotonic() - started
        say("")
        say(self.results.table())
        for fig in self.results.figures:
            if fig["note"]:
                say(f"  {fig['figure']}: {fig['note']}")
        say(f"\n{len(self.results.figures)} figures in {elapsed:.0f}s")
        self.write(elapsed)

    def write(self, elapsed):
        out = {
            "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "mode": "quick" if self.args.quick else "full",
            "phases": self.phases,
            "seconds": round(elapsed, 1),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "load_average_at_end": os.getloadavg()},
            "commit": _git_commit(),
            "figures": self.results.figures,
        }
        path = self.args.output
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(out, fh, ensure_ascii=False, indent=2)
        os.replace(tmp, path)
        say(f"written {os.path.relpath(path, ROOT)}")


def prefill_outbox(db_url, n, per_transaction=100):
    """Write ``n`` events into the bench source's outbox with the suite's own
    ``Transaction.emit`` (contract check, envelope, outbox row); returns their ids."""
    from bench.services import BenchSource, event_payload, source_metadata
    from runtime.db import DatabaseCore
    core = DatabaseCore(db_url, source_metadata, BenchSource.name)
    core.migrate()
    ids = set()
    try:
        for start in range(0, n, per_transaction):
            with core.transaction() as tx:
                for i in range(start, min(n, start + per_transaction)):
                    payload = event_payload(i)
                    ids.add(tx.emit("project_submitted", payload, correlation_id=payload["project"]["code"]))
    finally:
        core.dispose()
    return ids


def published_times(db_url):
    """Epoch seconds at which the relay marked each outbox row sent."""
    from sqlalchemy import text
    from runtime.db import make_engine
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT published_at FROM outbox WHERE published_at IS NOT NULL")).all()
    finally:
        engine.dispose()
    out = []
    for (value,) in rows:
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        out.append(value.replace(tzinfo=dt.timezone.utc).timestamp())
    return out


def _git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except Exception:  # noqa: BLE001
        return None


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    import signal
    signal.signal(signal.SIGTERM, _terminate)  # clean up the suite it started, as on Ctrl-C
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and smaller runs (< 2 minutes)")
    parser.add_argument("--only", help=f"comma list of phases: {','.join(ALL_PHASES)}")
    parser.add_argument("--db", default="sqlite,postgresql", help="backends of the approval run")
    parser.add_argument("--window", type=int, default=64, help="projects in the pipeline at once (approvals)")
    parser.add_argument("--output", default=os.path.join(ROOT, "bench", "results.json"))
    args = parser.parse_args(argv)
    Bench(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
