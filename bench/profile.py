"""Where the time goes: run one workload against a suite the bench starts, and print the CPU
each process spent per unit of work (from ``/proc``), optionally with py-spy recording.

    .venv/bin/python -m bench.profile approvals -n 600 [--window 64] [--db sqlite|postgresql]
    .venv/bin/python -m bench.profile gateway   -n 2000     # sequential GET /api/v1/projects/<code>
    .venv/bin/python -m bench.profile gateway   -n 2400 --against /tmp/before   # this tree and another, side by side
    .venv/bin/python -m bench.profile gateway   -n 2400 --against /tmp/before --other-first   # the other's suite starts first
    .venv/bin/python -m bench.profile gateway   -n 1600 --against /tmp/before --paths '/api/v1/projects/{code}/case'
    .venv/bin/python -m bench.profile rpc       -n 3000     # bench_caller → bench_echo.echo, registry.get_project
    .venv/bin/python -m bench.profile events    -n 8000     # a drain: outbox → handler, CPU per event
    .venv/bin/python -m bench.profile events    -n 24000 --against /tmp/before   # drains in turns, two trees
    .venv/bin/python -m bench.profile delivery  -n 300 [--against /tmp/before]   # one event at a time, paced
    .venv/bin/python -m bench.profile approvals --spy review,registry --py-spy /path/to/py-spy
    .venv/bin/python -m bench.profile gateway --spy gateway --gil --rate 1000 --py-spy /path/to/py-spy
    .venv/bin/python -m bench.profile summary out/review.txt   # a py-spy raw file: busy share by package, top functions

``--define KEY=VALUE`` passes a config key to every suite service (e.g. to compare
``OUTBOX_MARK_DELAY_SECONDS=0`` with another value in back-to-back runs). py-spy files go to
``--out`` (``var/profile``), one per process, in its raw (collapsed) format, without the
samples of a hub waiting for I/O.
"""
import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _spies(args, pids):
    out = []
    for name in filter(None, (args.spy or "").split(",")):
        path = os.path.join(args.out, f"{name}.raw.txt")
        out.append((path, subprocess.Popen(
            [args.py_spy, "record", "-p", str(pids[name]), "-r", str(args.rate), *(["--gil"] if args.gil else []),
             "-f", "raw", "-o", path, "-d", "3600"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    if out:
        time.sleep(1)
    return out


def _stop(spies):
    for _, proc in spies:
        proc.send_signal(2)
    for path, proc in spies:
        proc.wait(60)
        if os.path.exists(path):
            with open(path) as fh:
                lines = [line for line in fh if "do_poll" not in line]  # the hub waiting for I/O
            with open(path, "w") as fh:
                fh.writelines(lines)
            print(f"  py-spy: {os.path.relpath(path, ROOT)}")


def _cpu_line(before, n, unit):
    """CPU each process spent since ``before`` (a ``_snapshot``), per unit of work."""
    from bench.harness import cpu_seconds
    after = {k: cpu_seconds(pid) for k, pid in before["pids"].items()}
    per = {k: (after[k] - before["cpu"][k]) * 1e6 / n for k in before["pids"]}
    total = sum(per.values())
    print(f"  CPU per {unit}: {total:,.0f} µs — " + ", ".join(
        f"{k} {v:,.0f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1])))


def _snapshot(pids):
    from bench.harness import cpu_seconds
    return {"pids": pids, "cpu": {k: cpu_seconds(pid) for k, pid in pids.items()}}


def _bench(args, only):
    from bench.run import Bench
    bench = Bench(argparse.Namespace(quick=True, only=only, db=args.db, window=args.window,
                                     output=os.path.join(args.out, "results.json")))
    if args.define:
        key, _, value = args.define.partition("=")
        start = bench.cluster.start_suite_service

        def with_define(*a, defines=None, **kw):
            return start(*a, defines=dict(defines or {}, **{key: value}), **kw)

        bench.cluster.start_suite_service = with_define
    return bench


def approvals(args):
    bench = _bench(args, "approvals")
    try:
        if args.db == "sqlite":
            uri, _, profile_dir = bench.suite()
            label = "sqlite"
        else:
            uri, _, profile_dir = bench.start_suite(args.db, "pg")
            label = "pg"
        bench.approval_run(uri, profile_dir, 30, 8, "WARM-U")
        pids = bench.suite_pids(label)
        spies = _spies(args, pids)
        before = _snapshot(pids)
        out = bench.approval_run(uri, profile_dir, args.n, args.window, "PROFILE-U")
        _cpu_line(before, args.n, "approved project")
        _stop(spies)
        print(f"  {out['rate']:.1f} approvals/s ({args.n} projects, {args.window} in flight, {args.db})")
    finally:
        bench.cluster.close()


def _reader(bench, uri, base):
    """A project to read through the gateway at ``base``, and a unit user's auth headers."""
    from bench.client import Client
    client = Client(uri)
    try:
        code = bench.any_project(client)
    finally:
        client.close()
    return code, {"Authorization": f"Bearer {bench.unit_token(base, 'BENCH-READ')}"}


def gateway(args):
    if args.against:
        return _gateway_against(args)
    from bench import http_load
    from bench.run import SMALL
    bench = _bench(args, "gateway")
    try:
        uri, _, _ = bench.suite()
        base = bench.cluster.procs["sqlite.gateway"].base_url
        code, headers = _reader(bench, uri, base)
        url = f"{base}/api/v1/projects/{code}"
        http_load.latencies(url, headers, 200, warmup=0)
        floor_client = bench.floor_client()
        floor = [floor_client.round_trip(SMALL) for _ in range(500)]
        suite = bench.suite_pids("sqlite")
        pids = {k: suite[k] for k in ("gateway", "registry", "review", "rabbitmq") if k in suite}
        spies = _spies(args, pids)
        before = _snapshot(pids)
        samples = http_load.latencies(url, headers, args.n, warmup=3)
        _cpu_line(before, args.n, "read")
        _stop(spies)
        print(f"  read p50 {statistics.median(samples) * 1000:.2f} ms, raw round trip p50 "
              f"{statistics.median(floor) * 1000:.2f} ms")
        for path, auth in (("/health/live", {}), ("/api/v1/me", headers),
                           (f"/api/v1/projects/{code}/history", headers), (f"/api/v1/projects/{code}/case", headers)):
            other = http_load.latencies(base + path, auth, 1000, warmup=20)
            print(f"  {path} p50 {statistics.median(other) * 1000:.2f} ms")
    finally:
        bench.close_floor()
        bench.cluster.close()


def _trees(other_root=None, other_first=False):
    """``(label, root)`` of this tree, and of the other one when there is one, in the order
    their suites (their sinks) start: this tree's first, unless ``other_first``."""
    trees = (("this", ROOT),) + ((("other", os.path.abspath(other_root)),) if other_root else ())
    return trees[::-1] if other_first else trees


def _in_turn(r, labels):
    """The labels of ``labels`` in round ``r``'s order: "other" first in even rounds, "this"
    first in odd ones, so that the host's slow and fast phases fall on both trees alike."""
    return [label for label in (("this", "other") if r % 2 else ("other", "this")) if label in labels]


def _side_by_side(bench, other_root, other_first=False):
    """Start the suite from this tree ("this") and from ``other_root`` ("other", e.g. a
    ``git worktree`` of an earlier commit), each with its own vhost and databases; return
    {label: (gateway URL, project code, auth headers, {process: pid})}."""
    suites = {}
    for label, root in _trees(other_root, other_first):
        with bench.cluster.tree(root):
            uri, _, _ = bench.start_suite("sqlite", label)
        base = bench.cluster.procs[f"{label}.gateway"].base_url
        code, headers = _reader(bench, uri, base)
        pids = bench.suite_pids(label)
        suites[label] = (base, code, headers, {k: pids[k] for k in ("gateway", "registry", "review")})
    return suites


def _gateway_against(args):
    """Two suites side by side, reads alternated in batches, so that the host's slow and
    fast phases fall on both alike."""
    from bench import http_load
    from bench.harness import cpu_seconds
    from bench.run import SMALL
    bench = _bench(args, "gateway")
    rounds = 16
    per = max(args.n // rounds, 10)
    try:
        suites = _side_by_side(bench, args.against, args.other_first)
        floor_client = bench.floor_client()
        for path in args.paths.split(","):
            seen = {label: ([], collections.Counter()) for label in suites}
            floor = []
            for r in range(rounds):
                for label in _in_turn(r, suites):
                    base, code, headers, pids = suites[label]
                    url = base + path.format(code=code)
                    http_load.latencies(url, headers, 5, warmup=0)
                    before = {k: cpu_seconds(pid) for k, pid in pids.items()}
                    seen[label][0].extend(http_load.latencies(url, headers, per, warmup=0))
                    for k, pid in pids.items():
                        seen[label][1][k] += cpu_seconds(pid) - before[k]
                floor.extend(floor_client.round_trip(SMALL) for _ in range(50))
            f50 = statistics.median(floor)
            for label in ("other", "this"):
                samples, cpu = seen[label]
                per_read = {k: v * 1e6 / (rounds * per) for k, v in cpu.items()}
                p50 = statistics.median(samples)
                print(f"  {path:<26} {label:<5} p50 {p50 * 1000:.2f} ms, {p50 / f50:.2f}× the round trip "
                      f"({f50 * 1000:.2f} ms); CPU per read {sum(per_read.values()):,.0f} µs — "
                      + ", ".join(f"{k} {v:,.0f}" for k, v in per_read.items()))
    finally:
        bench.close_floor()
        bench.cluster.close()


def rpc(args):
    from bench.client import Client
    bench = _bench(args, "rpc")
    try:
        uri, _, _ = bench.suite()
        bench.cluster.start_bench_service("bench_echo", "BenchEcho", uri)
        bench.cluster.start_bench_service("bench_caller", "BenchCaller", uri)
        bench.cluster.wait_ready(["bench_echo", "bench_caller"])
        client = Client(uri)
        try:
            code = bench.any_project(client)
            pids = {"bench_echo": bench.cluster.procs["bench_echo"].pid,
                    "bench_caller": bench.cluster.procs["bench_caller"].pid,
                    **{k: v for k, v in bench.suite_pids("sqlite").items() if k in ("registry", "rabbitmq")}}
            for target, method, kwargs in (("bench_echo", "echo", {"value": "x" * 100}),
                                           ("registry", "get_project", {"code": code})):
                client.call("bench_caller", "loop", target=target, method=method, kwargs=kwargs, n=200)
                spies = _spies(args, pids) if target == "registry" else []
                before = _snapshot(pids)
                samples = client.call("bench_caller", "loop", target=target, method=method, kwargs=kwargs, n=args.n,
                                      _timeout=300)
                print(f"{target}.{method}: p50 {statistics.median(samples) * 1000:.2f} ms")
                _cpu_line(before, args.n, "call")
                _stop(spies)
        finally:
            client.close()
    finally:
        bench.cluster.close()


def events(args):
    if args.against:
        return _events_against(args)
    from bench.client import Client
    from bench.harness import rss_bytes, with_broker
    from bench.run import prefill_outbox, published_times
    bench = _bench(args, "events")
    try:
        uri = bench.cluster.vhost("events")
        source_db = bench.cluster.database("sqlite", "events_source")
        backlog = prefill_outbox(source_db, args.n)
        bench.cluster.start_bench_service("bench_sink", "BenchSink", uri,
                                          db_url=bench.cluster.database("sqlite", "events_sink"))
        bench.cluster.wait_ready(["bench_sink"])
        pids = with_broker({"bench_sink": bench.cluster.procs["bench_sink"].pid})
        spies = _spies(args, pids)
        before = _snapshot(pids)
        bench.cluster.start_bench_service("bench_source", "BenchSource", uri, db_url=source_db)
        bench.cluster.wait_ready(["bench_source"])
        # the source starts after the snapshot: all its CPU is the relay's (and its start)
        before["pids"]["bench_source"] = bench.cluster.procs["bench_source"].pid
        before["cpu"]["bench_source"] = 0.0
        client = Client(uri)
        try:
            received = bench.wait_received(client, backlog, timeout=600)
        finally:
            client.close()
        _cpu_line(before, args.n, "event (subscriber)")
        print(f"  bench_sink peak RSS {rss_bytes(pids['bench_sink'], 'VmHWM') / 2**20:.1f} MB")
        _stop(spies)
        published = published_times(source_db)
        first = min(published)
        print(f"  outbox → handler {args.n / (max(received.values()) - first):,.0f} events/s; "
              f"relay {len(published) / max(max(published) - first, 1e-6):,.0f} events/s")
    finally:
        bench.cluster.close()


def _start_sink(bench, label, root, uri, prefix):
    """``<label>.bench_sink`` from ``root``'s code, in the vhost ``uri``, on a SQLite database
    of its own (``<prefix>_sink_<label>``)."""
    with bench.cluster.tree(root):
        bench.cluster.start_bench_service(f"{label}.bench_sink", "BenchSink", uri,
                                          db_url=bench.cluster.database("sqlite", f"{prefix}_sink_{label}"))


def _events_against(args):
    """A source and a sink from each tree, each pair in its own vhost; the pairs drain their
    backlogs in turns (``rounds`` of ``n / rounds`` events each, the order alternating), so
    that the host's slow and fast phases fall on both alike. Each round's source is new,
    with a new outbox; the sinks run throughout. Both trees must have the same outbox
    schema: the backlog is written with this tree's code."""
    from bench.client import Client
    from bench.harness import cpu_seconds
    from bench.run import prefill_outbox, published_times
    bench = _bench(args, "events")
    rounds = 8
    per = max(args.n // rounds, 500)
    pairs = {}  # label -> (vhost URI, tree, client)
    try:
        for label, root in _trees(args.against, args.other_first):
            uri = bench.cluster.vhost(f"events-{label}")
            _start_sink(bench, label, root, uri, "events")
            pairs[label] = (uri, root, Client(uri))
        bench.cluster.wait_ready([f"{label}.bench_sink" for label in pairs])
        seen = {label: collections.Counter() for label in pairs}
        for r in range(rounds):
            for label in _in_turn(r, pairs):
                uri, root, client = pairs[label]
                source_db = bench.cluster.database("sqlite", f"events_source_{label}_{r}")
                backlog = prefill_outbox(source_db, per)
                sink = bench.cluster.procs[f"{label}.bench_sink"].pid
                before = cpu_seconds(sink)
                with bench.cluster.tree(root):
                    bench.cluster.start_bench_service(f"{label}.bench_source", "BenchSource", uri, db_url=source_db)
                received = bench.wait_received(client, backlog, timeout=600)
                seen[label]["sink"] += cpu_seconds(sink) - before
                bench.cluster.stop(f"{label}.bench_source")
                seen[label]["seconds"] += max(received.values()) - min(published_times(source_db))
                seen[label]["events"] += len(backlog)
        for label in ("other", "this"):
            done = seen[label]
            print(f"  {label:<5} outbox → handler {done['events'] / done['seconds']:,.0f} events/s; "
                  f"sink CPU per event {done['sink'] * 1e6 / done['events']:,.0f} µs "
                  f"({rounds} rounds of {per:,})")
    finally:
        for _, _, client in pairs.values():
            client.close()
        bench.cluster.close()


def delivery(args):
    """One event at a time, paced as ``make bench``'s outbox latency (one every 20 ms): from
    the source's commit to the sink's commit, beside a confirmed publish on the bare broker
    paced the same way (the floor). With ``--against``, a source and a sink from each tree,
    each pair in its own vhost, in turns: ``rounds`` of ``n / rounds`` events each, the order
    alternating, the floor's samples after each round."""
    from bench.client import Client
    from bench.stats import summary_ms
    bench = _bench(args, "events")
    rounds = 10
    per = max(args.n // rounds, 10)
    clients = {}
    try:
        for label, root in _trees(args.against, args.other_first):
            uri = bench.cluster.vhost(f"delivery-{label}")
            _start_sink(bench, label, root, uri, "delivery")
            with bench.cluster.tree(root):
                bench.cluster.start_bench_service(f"{label}.bench_source", "BenchSource", uri,
                                                  db_url=bench.cluster.database("sqlite", f"delivery_source_{label}"))
            clients[label] = Client(uri)
        bench.cluster.wait_ready([f"{label}.{name}" for label in clients for name in ("bench_sink", "bench_source")])
        for client in clients.values():
            bench.paced_events(client, 20)  # warm-up, not counted
        samples = {label: [] for label in clients}
        floor_samples = []
        for r in range(rounds):
            for label in _in_turn(r, clients):
                samples[label].extend(bench.paced_events(clients[label], per))
            floor_samples.extend(bench.paced_delivery() for _ in range(per))
        f50, f99, _ = summary_ms(floor_samples)
        print(f"  floor: confirmed publish → consumer, paced: p50 {f50:.2f} ms, p99 {f99:.2f} ms")
        for label in ("other", "this"):
            if label in samples:
                p50, p99, count = summary_ms(samples[label])
                print(f"  {label:<5} source commit → sink commit, paced: p50 {p50:.2f} ms ({p50 / f50:.2f}× the "
                      f"floor), p99 {p99:.2f} ms ({count} events in {rounds} rounds)")
    finally:
        for client in clients.values():
            client.close()
        bench.close_floor()
        bench.cluster.close()


PACKAGES = ("sqlalchemy", "marshmallow", "nameko", "kombu", "amqp", "eventlet", "json", "logging", "copy",
            "services", "runtime", "contracts", "gateway", "chinese_calendar", "cryptography", "prometheus_client")


def summary(args):
    """Busy share by package of the leaf frame, then the top functions (inclusive)."""
    by_package, inclusive, total = collections.Counter(), collections.Counter(), 0
    with open(args.file) as fh:
        for line in fh:
            stack, _, count = line.rstrip().rpartition(" ")
            count = int(count)
            frames = stack.split(";")
            total += count
            match = re.search(r"\(([^:]+):\d+\)", frames[-1])
            path = match.group(1) if match else frames[-1]
            package = next((p for p in PACKAGES if path.startswith(p + "/") or path == p + ".py"
                            or f"/{p}/" in path), path)
            by_package[package] += count
            for frame in set(frames):
                inclusive[frame] += count
    print(f"{total} samples")
    for name, count in by_package.most_common(12):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("inclusive:")
    for frame, count in inclusive.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {frame[:140]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["approvals", "gateway", "rpc", "events", "delivery", "summary"])
    parser.add_argument("file", nargs="?", help="summary: a py-spy raw file")
    parser.add_argument("-n", type=int, default=600)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--define", help="KEY=VALUE for every suite service")
    parser.add_argument("--spy", help="comma list of processes to record with py-spy")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--gil", action="store_true",
                        help="py-spy samples only while the GIL is held: a system call (send, recv) "
                             "counts for nothing instead of for all the time the process waited in it")
    parser.add_argument("--against", metavar="DIR",
                        help="gateway, events, delivery: also start the suite (events, delivery: a source "
                             "and a sink) from DIR, a git worktree of another commit or with another venv, "
                             "and alternate the reads (the drains, the paced events) between the two")
    parser.add_argument("--other-first", action="store_true",
                        help="with --against: start the other tree's suite (sinks) first. The suite "
                             "started first has read 5-15%% slower than an identical one started after "
                             "it (bench/README.md, Profiling): run both orders")
    parser.add_argument("--paths", default="/api/v1/me,/api/v1/projects/{code}",
                        help="gateway --against: comma list of the paths to read ({code}: the project's)")
    parser.add_argument("--out", default=os.path.join(ROOT, "var", "profile"))
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    if args.workload == "summary":
        if not args.file:
            parser.error("summary needs a py-spy raw file")
        return summary(args)
    os.makedirs(args.out, exist_ok=True)
    globals()[args.workload](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
