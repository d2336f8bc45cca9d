"""Instructions per unit of work, counted by valgrind's callgrind: a measure of CPU work that
the host's phases do not move.

On this kind of shared machine the same code's CPU time per approved project has moved by
half between sessions, and side-by-side timings of a change worth a few per cent drown in
that noise (bench/README.md, "Run to run"). callgrind counts the instructions a process
executes instead of timing it: the same code, inputs and seed give the same count whatever
else the machine does. It runs the code some fifty times slower, so the workloads here are
small and in one process, with no broker:

* ``contract-load``: a 1.9 KB application loaded through its contract (what every receiver
  of a ``project_submitted`` or ``opinion_requested`` does);
* ``contract-check``: the same application dumped with the check (what every event payload
  carrying it goes through when it is emitted);
* ``saga``: one project of the approval run (dalate, every signature automatic) through
  review's saga, built as review's use cases build it, each step on the case decoded from
  its JSON;
* ``case-view``: review's answer to ``review.get_case`` for that project once approved: the
  case view built and dumped through its contract (``CONTRACT_CHECKS=events``), what every
  gateway read of a project waits for;
* ``event-receipt``: a message of 8 ``project_submitted`` events (a pack, as the relay
  sends them) decoded and each event loaded through its envelope's and payload's contracts,
  as a subscriber does before its handler runs (``runtime.messaging``);
* ``event-lines``: the "event handled" lines and counts of a batch of 32 events, as
  ``runtime.ops.Instrumentation`` writes them when the batch's worker ends, through a
  service's logging set-up (JSON lines to a stream, here ``/dev/null``);
* ``event-batch``: 32 events through one subscription worker's batch
  (``runtime.messaging.EventBatch``) on a SQLite file, each event's handler writing one row
  in its ``transaction(event=…)``: the inbox row, the unit's bookkeeping and the batch's
  commit, as a subscriber's worker runs them;
* ``http-headers``: a gateway request's headers parsed as eventlet's HTTP server parses them
  (``http.client.parse_headers``, by ``runtime.headers`` where the tree installs it);
* ``http-request``: a ``GET`` with a path value and a bearer token through a service's HTTP
  entrypoint (``runtime.web``), called as eventlet's server calls the WSGI app: the route
  looked up, the worker run with the service's instrumentation (its "http handled" line to
  ``/dev/null``), a small JSON answer written out. What every gateway request pays around
  its handler;
* ``review-project``: the same project through review's use cases on a SQLite file, as the
  service runs them without the broker: the project_submitted handler, every signed
  opinion, the documents by RPC, with the case, its opinion index, the audit chain, the
  inbox and the outbox written in each step's transaction. The driver reads the case
  between steps to see what is pending and signs each opinion (Ed25519); both are the same
  on either side of a comparison.

Each workload runs twice under callgrind, ``n`` times and not at all, after the same
set-up and warm-up; the difference over ``n`` is the count per unit. ``--against DIR`` (a
``git worktree`` of another commit, with the venv linked in) counts the same workloads
with that tree's code, side by side::

    .venv/bin/python -m bench.instructions                          # every workload, this tree
    .venv/bin/python -m bench.instructions saga review-project -n 20 --against /tmp/before

Needs valgrind (Debian's ``valgrind`` package), which ``bench/setup.sh valgrind`` installs
when it is missing; this script runs it first.
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS = os.path.abspath(__file__)

#: name -> (unit, default n)
WORKLOADS = {
    "contract-load": ("load", 2000),
    "contract-check": ("dump and check", 2000),
    "saga": ("project", 100),
    "case-view": ("view", 2000),
    "event-receipt": ("event", 2000),
    "event-lines": ("event", 2000),
    "event-batch": ("event", 2000),
    "http-headers": ("request", 5000),
    "http-request": ("request", 2000),
    "review-project": ("project", 20),
}
TODAY = (2026, 11, 27)


# ---- the workloads (run under callgrind, with the tree's code on the path) -------------------

def application():
    """The approval run's application (dalate, planned and simple)."""
    from bench.approvals import application as run_application
    return run_application(1)


def project_ref(app, code):
    return {"code": code, "jurisdiction": "dalate", "unit_id": "BENCH-U1", "unit_name": "旗政务服务局",
            "name": app["name"], "kind": app["kind"], "amount": app["amount"]}


def auto_profile():
    """The approval run's profile: dalate with every signature automatic."""
    from bench.approvals import write_auto_profile
    from policy import load_profile
    directory = tempfile.mkdtemp(prefix="bench-instructions-profile-")
    try:
        write_auto_profile(directory)
        return load_profile("dalate", directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        load_profile.cache_clear()


def today():
    import datetime as dt
    return dt.date(*TODAY)


def opinion(code, stage, request):
    """An approving opinion answering ``request`` (unsigned)."""
    return {"request_id": request["request_id"], "code": code, "stage": stage, "agency": request["agency"],
            "subject": request["subject"], "verdict": "approve", "findings": [], "conditions": [],
            "signed_by": "auto", "signed_at": "2026-11-27T00:00:00Z", "data": {}}


def _approved(case):
    if case["state"] != "approved":
        raise AssertionError(f"the project ended {case['state']}, not approved: the workload is broken")


def drive_saga(saga, app, code="2026-150621-00001-1"):
    """One project through ``saga`` from submission to approval, each step on the case
    decoded from its JSON (as review reads it from its row); the steps it took, and the
    approved case."""
    from runtime import jsoncodec
    project = project_ref(app, code)
    row = jsoncodec.dumps(saga.submit(None, project=project, application=app, revision=1,
                                      declared_on=today().isoformat()).case)
    steps = 1
    while True:
        case = jsoncodec.loads(row)
        if case["state"] != "in_progress":
            _approved(case)
            return steps, case
        stage = next(s for s in case["stages"] if s["key"] == case["current_stage"])
        if stage["type"] == "documents":
            missing = [d for d in stage["documents_required"] if not case["documents"].get(d)]
            outcome, _ = saga.submit_document(case, unit_id=project["unit_id"], doc_type=missing[0],
                                              title=f"{missing[0]} v1")
        else:
            request = next(o for o in stage["opinions"] if o["status"] == "requested")
            outcome = saga.opinion_issued(case, opinion(code, stage["key"], request))
        row = jsoncodec.dumps(outcome.case)
        steps += 1


class _Pool:
    """What review's use cases give the saga: the expert pool and the document numbers."""

    def experts(self):
        return []

    def next_document_number(self, year):
        return 1


def _contracts(which):
    from contracts import dump, load
    from contracts.application import ApplicationSchema
    app = load(ApplicationSchema, application())
    if which == "load":
        return lambda i: load(ApplicationSchema, app)
    return lambda i: dump(ApplicationSchema, app)


def _saga(profile):
    import random
    from services.review.usecases import ReviewCases
    cases = ReviewCases(None, profile, today())
    app = application()

    def run(i):
        cases.rng = random.Random(i)
        drive_saga(cases._saga(_Pool()), app)
    return run


def _case_view(profile):
    import random
    from contracts import dump
    from contracts.enums import DOCUMENT_TYPES
    from contracts.rpc_review import CaseViewSchema
    from services.review.usecases import ReviewCases
    from services.review.views import case_view
    cases = ReviewCases(None, profile, today())
    cases.rng = random.Random(1)
    _, case = drive_saga(cases._saga(_Pool()), application())
    return lambda i: dump(CaseViewSchema, case_view(case, today(), DOCUMENT_TYPES), check=False)


def _event_receipt():
    import uuid

    from bench.services import event_payload
    from runtime import jsoncodec, messaging, packs
    envelopes = [{"event_id": uuid.UUID(int=i).hex, "event_type": "project_submitted", "source": "registry",
                  "occurred_at": "2026-11-24T08:00:00Z", "correlation_id": f"2026-150621-{i:05d}-1",
                  "version": "1.0", "payload": event_payload(i)} for i in range(8)]
    body = jsoncodec.dumpb(envelopes)
    load_envelope = getattr(messaging, "load_envelope", None)
    if load_envelope is None:  # a tree from before load_envelope: its handle_message's two lines
        from contracts import load
        from contracts.events import EnvelopeSchema, schema_for

        def load_envelope(raw):
            envelope = load(EnvelopeSchema, raw)
            envelope["payload"] = load(schema_for(envelope["event_type"]), envelope["payload"])
            return envelope

    def run(i):
        if i % 8 == 0:  # a message per 8 events: its events are loaded one by one
            for raw in packs.envelopes(jsoncodec.loads(body)):
                load_envelope(raw)
    return run


def _service_logging(service):
    """A service's logging set-up: JSON lines at INFO, to a stream (here ``/dev/null``)."""
    import logging.config
    logging.config.dictConfig({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "runtime.logs.JsonFormatter", "service": service}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "json",
                             "stream": open(os.devnull, "w")}},  # noqa: SIM115 - the process's stream
        "root": {"level": "INFO", "handlers": ["out"]}})


def _event_lines():
    from runtime.db import AlreadyHandled
    from runtime.messaging import EventBatch, Subscribe, _Item
    from runtime.ops import Instrumentation
    _service_logging("review")

    class Container:
        service_name = "review"

    container = Container()
    entrypoint = Subscribe.__new__(Subscribe)
    entrypoint.method_name, entrypoint.event_type = "handle_project_submitted", "project_submitted"
    entrypoint.expected_exceptions = (AlreadyHandled,)
    instrumentation = Instrumentation().bind(container, "instrumentation")  # holds the container weakly
    instrumentation.setup()

    class Worker:
        kwargs = {}
        call_id, immediate_parent_call_id, origin_call_id = "review.handle_project_submitted.1", None, None

    def run(i, container=container):
        if i % 32 == 0:  # a worker per 32 events
            batch = EventBatch(entrypoint)
            for k in range(32):
                item = _Item({"event_id": f"{i + k:032x}", "event_type": "project_submitted",
                              "correlation_id": f"2026-150621-{i + k:05d}-1"}, None)
                item.elapsed = 0.0004
                batch.items.append(item)
            batch.committed = 32
            worker = Worker()
            worker.entrypoint, worker.args = entrypoint, (batch,)
            instrumentation.worker_setup(worker)
            instrumentation.worker_result(worker)
            instrumentation.worker_teardown(worker)
    return run


def _event_batch(directory):
    import itertools
    import types

    from sqlalchemy import Column, Integer, MetaData, String, Table, insert

    from runtime.db import DatabaseCore, runtime_tables
    from runtime.messaging import EventBatch, _Item
    metadata = MetaData()
    runtime_tables(metadata)
    notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("code", String(40)))
    core = DatabaseCore(f"sqlite:///{directory}/batch.db", metadata, "review")
    core.migrate()
    entrypoint = types.SimpleNamespace(database=lambda: core, expected_exceptions=())
    numbers = itertools.count()

    def handler(_service, envelope):
        with core.transaction(event=envelope) as tx:
            tx.conn.execute(insert(notes), {"code": envelope["correlation_id"]})

    def run(i):
        if i % 32 == 0:  # a worker per 32 events
            batch = EventBatch(entrypoint)
            for n in itertools.islice(numbers, 32):
                batch.items.append(_Item({"event_id": f"{n:032x}", "event_type": "project_submitted",
                                          "source": "registry", "correlation_id": f"2026-150621-{n:05d}-1"}, None))
            batch.run(None, handler)
    return run


REQUEST_HEADERS = (b"Host: 127.0.0.1:8000\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
                   b"Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
                   b"Authorization: Bearer " + b"7f" * 32 + b"\r\n\r\n")


def _http_headers():
    import http.client
    import io
    import runtime.web  # noqa: F401 - the services' HTTP; installs runtime.headers where the tree has it
    return lambda i: http.client.parse_headers(io.BytesIO(REQUEST_HEADERS))


def _http_request():
    import io

    from nameko import config
    from nameko.containers import ServiceContainer

    from runtime.ops import Instrumentation
    from runtime.web import ServiceWebServer, http, json_response
    _service_logging("bench_http")

    class BenchHttp:
        name = "bench_http"
        instrumentation = Instrumentation()

        @http("GET", "/api/v1/items/<code>")
        def item(self, request, code):
            return json_response(200, {"code": code, "state": "approved"})

    config.update({"WEB_SERVER_ADDRESS": "127.0.0.1:0"})
    container = ServiceContainer(BenchHttp)
    container.start()
    server = next(ext for ext in container.extensions if isinstance(ext, ServiceWebServer))
    app = server.get_wsgi_app()
    environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/api/v1/items/2026-150621-00001-1",
               "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "GATEWAY_INTERFACE": "CGI/1.1",
               "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
               "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
               "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64)",
               "HTTP_ACCEPT": "application/json", "HTTP_ACCEPT_ENCODING": "gzip, deflate",
               "HTTP_CONNECTION": "keep-alive", "HTTP_AUTHORIZATION": "Bearer " + "7f" * 32}

    def start_response(status, headers, exc_info=None):
        return None

    def run(i):
        body = b"".join(app(dict(environ, **{"wsgi.input": io.BytesIO(b"")}), start_response))
        assert body.startswith(b'{"code":'), body
    return run


def _review_project(profile, directory):
    import random
    import uuid

    from nameko import config

    from contracts.enums import AGENCY_SERVICE
    from runtime import signing
    from runtime.db import DatabaseCore
    from services.review.models import metadata
    from services.review.repository import ReviewRepository
    from services.review.service import MIGRATIONS_DIR
    from services.review.usecases import ReviewCases

    config.update({"KEYS_DIR": os.path.join(directory, "keys")})
    core = DatabaseCore(f"sqlite:///{directory}/review.db", metadata, "review", MIGRATIONS_DIR)
    core.migrate()
    cases = ReviewCases(core, profile, today(), random.Random(1))
    app = application()

    def envelope(event_type, source, payload, code):
        return {"event_id": uuid.uuid4().hex, "event_type": event_type, "source": source,
                "occurred_at": "2026-11-27T00:00:00Z", "correlation_id": code, "version": "1.0",
                "payload": payload}

    def run(i):
        code = f"2026-150621-{i:05d}-1"
        project = project_ref(app, code)
        cases.project_submitted(envelope("project_submitted", "registry", {
            "project": project, "application": app, "revision": 1, "declared_on": today().isoformat()}, code))
        while True:
            with core.read() as conn:
                case = ReviewRepository(conn).get_case(code)
            if case["state"] != "in_progress":
                return _approved(case)
            stage = next(s for s in case["stages"] if s["key"] == case["current_stage"])
            request = next((o for o in stage["opinions"] if o["status"] == "requested"), None)
            if request is not None:
                service = AGENCY_SERVICE[request["agency"]]
                answer = opinion(code, stage["key"], request)
                answer["signature"] = signing.keyring(service).sign(answer)
                cases.opinion_issued(envelope("opinion_issued", service, answer, code))
                continue
            missing = [d for d in stage["documents_required"] if not case["documents"].get(d)]
            cases.submit_document({"code": code, "unit_id": project["unit_id"], "doc_type": missing[0],
                                   "title": f"{missing[0]} v1"})
    return run


def _run(workload, n):
    """The runner: set up and warm up every workload, then run ``workload`` ``n`` times."""
    import eventlet
    eventlet.monkey_patch()  # as under ``nameko run``; the tree's code comes from PYTHONPATH
    directory = tempfile.mkdtemp(prefix="bench-instructions-")
    try:
        profile = auto_profile()
        runs = {"contract-load": _contracts("load"), "contract-check": _contracts("check"),
                "saga": _saga(profile), "case-view": _case_view(profile), "event-receipt": _event_receipt(),
                "event-lines": _event_lines(), "event-batch": _event_batch(directory), "http-headers": _http_headers(), "http-request": _http_request(),
                "review-project": _review_project(profile, directory)}
        for run in runs.values():  # the same set-up and warm-up whatever is measured
            for i in range(3):
                run(100_000 + i)
        run = runs[workload]
        for i in range(n):
            run(i)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---- the driver ------------------------------------------------------------------------------

def _count(tree, workload, n):
    """Instructions of one runner process under callgrind."""
    python = os.path.join(tree, ".venv", "bin", "python")
    env = dict(os.environ, PYTHONPATH=tree, PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out:
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.out",
                               python, THIS, "--run", workload, str(n)],
                              cwd=tree, env=env, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"callgrind run failed ({tree}, {workload}, n={n}):\n{tail}")
    return int(found.group(1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=f"any of {', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("-n", type=int, help="units per workload (default: each workload's own)")
    parser.add_argument("--against", metavar="DIR", help="also count with the code of DIR (a git worktree)")
    parser.add_argument("--run", nargs=2, metavar=("WORKLOAD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        return _run(args.run[0], int(args.run[1]))
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)} (choose from {', '.join(WORKLOADS)})")
    if shutil.which("valgrind") is None:
        subprocess.run([os.path.join(ROOT, "bench", "setup.sh"), "valgrind"], check=False)
    if shutil.which("valgrind") is None:
        raise SystemExit("未找到 valgrind（Debian：apt-get install -y valgrind，或运行 bench/setup.sh）/ "
                         "valgrind not found (Debian: apt-get install -y valgrind)")
    workloads = args.workloads or list(WORKLOADS)
    trees = [ROOT] + ([os.path.abspath(args.against)] if args.against else [])
    for tree in trees:
        if not os.path.exists(os.path.join(tree, ".venv", "bin", "python")):
            raise SystemExit(f"{tree}: no .venv (link this tree's: ln -s {ROOT}/.venv {tree}/.venv)")
    jobs = [(tree, None, 0) for tree in trees]
    jobs += [(tree, w, args.n or WORKLOADS[w][1]) for tree in trees for w in workloads]
    print(f"callgrind: {len(jobs)} runs, two at a time (each workload n times and the set-up alone) ...",
          flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: _count(job[0], job[1] or workloads[0], job[2]), jobs)))
    print(f"{'workload':<16} {'unit':<15} " + " ".join(f"{os.path.basename(t) or t:>16}" for t in trees)
          + ("   change" if len(trees) > 1 else ""))
    for w in workloads:
        n = args.n or WORKLOADS[w][1]
        per = [(counts[(tree, w, n)] - counts[(tree, None, 0)]) / n for tree in trees]
        change = f"   {per[0] / per[1] - 1:+.1%}" if len(per) > 1 else ""
        print(f"{w:<16} {WORKLOADS[w][0]:<15} " + " ".join(f"{p:>16,.0f}" for p in per) + change)
    print("instructions per unit (callgrind); the first column is this tree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
