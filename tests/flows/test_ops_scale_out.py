"""Scale-out: two instances of one agency service share its queues and its database.

Two ``security`` instances consume the same quorum queue and write to the same database,
as two replicas of a Kubernetes Deployment do: one in this process, one a ``nameko run``
process of its own. A stand-in for ``review`` asks for opinions through its outbox, as
the real one does.

1. Both instances take a share of the first requests.
2. The process hangs (SIGSTOP) while more requests arrive: the broker has pushed it as many
   messages as its prefetch allows, up to ``PACK`` requests each (runtime.packs), which it
   holds unacknowledged; the survivor answers all the
   others. Then the process crashes (SIGKILL: the kernel closes its connections, the
   broker puts what it held back in the queue, the database rolls back whatever it had
   open).
3. Every request is answered exactly once: one desk row, one compliance entry, one
   ``opinion_issued`` per request, nothing dead-lettered, and the per-instance counts add
   up. The broker may deliver an event twice (at-least-once), but only as the same event
   id: no request gets two different opinions.

(Why a process and not ``ServiceContainer.kill()``: while nameko kills a container in this
process, the container's consumer keeps receiving and requeues each message it can no
longer run; RabbitMQ counts every requeue against the quorum queue's delivery limit, so a
few requests end up dead-lettered. A crashed process does not do that.)
"""
import collections
import json
import os
import signal
import subprocess
import uuid

import pytest
import requests
from amqp.exceptions import InternalError, NotFound
from kombu import Connection
from nameko.containers import ServiceContainer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import MetaData, func, select

from contracts.events import queue_name
from runtime.db import runtime_tables
from runtime.dependencies import Database
from runtime.ops import Instrumentation
from runtime.packs import envelopes
from services.security.service import SecurityService
from tests.deploy.support import ROOT, service_command
from tests.support.broker import queue_not_ready, wait_for
from tests.support.ports import free_port
from tests.support.suite import Suite

pytestmark = pytest.mark.flow

ISSUED_QUEUE = queue_name("security", "opinion_issued", "review", "handle_security_opinion_issued")
REQUEST_QUEUE = queue_name("review", "opinion_requested", "security", "handle_opinion_requested")
PREFETCH = 8  # messages the broker pushes the other instance before it acks
PACK = 4  # events per message, at most (runtime.packs): the hung process holds up to PREFETCH × PACK

review_md = MetaData()
runtime_tables(review_md)


class QuietReview:
    """Stands in for ``review``: asks for opinions; the answers wait in its queue."""

    name = "review"
    db = Database(review_md)


class ServiceProcess:
    """One service as an agency runs it: ``nameko run <module:Class> --config <its config>``."""

    def __init__(self, service, env, log_path):
        self.service = service
        self.port = free_port()
        self.log_path = log_path
        command = service_command(service)
        command[0] = os.path.join(ROOT, ".venv", "bin", "nameko")
        full_env = dict(os.environ, PYTHONWARNINGS="ignore", WEB_SERVER_ADDRESS=f"127.0.0.1:{self.port}")
        full_env.update(env)
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.service} exited ({self.proc.returncode}):\n{self.tail()}")
        try:
            return requests.get(self.url("/health/ready"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout=60):
        wait_for(self.ready, timeout=timeout, interval=0.2, message=f"{self.service} ready")
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()

    def tail(self, lines=30):
        self.log.flush()
        with open(self.log_path, "rb") as fh:
            return b"\n".join(fh.read().splitlines()[-lines:]).decode("utf-8", "replace")


def counter(text, name, **labels):
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def opinion_request(n):
    return {
        "request_id": uuid.uuid4().hex,
        "project": {"code": f"JJ-2026-{n:06d}", "jurisdiction": "jinjiang", "unit_id": f"unit-{n % 7}",
                    "unit_name": "区城运中心", "name": "智慧锦江城运平台", "kind": "build", "amount": 1_200_000},
        "application": {
            "name": "智慧锦江城运平台", "kind": "build", "amount": 1_200_000, "year": 2026,
            "summary": "建设城市运行管理平台", "facts": {"on_gov_cloud": True, "isolated_system": False},
            "security_plan": {"present": True, "level_claimed": 3, "measures": ["边界防护"]},
            "crypto_plan": {"present": True, "algorithms": ["SM2", "SM3", "SM4"], "evaluation_planned": True},
            "xinchuang": {"statement": True, "products": []},
        },
        "stage": "joint_review", "stage_name": "部门联审",
        "agency": "cac" if n % 2 else "secrecy", "agency_name": "区委网信办",
        "subject": "security" if n % 2 else "crypto", "sign": "auto",
        "due_on": "2026-12-03", "cite": "jinjiang art. 8", "context": {},
    }


def handled_here(container, outcome="success"):
    """Opinion requests this in-process instance handled, by outcome (its own Instrumentation).
    A ``duplicate`` is a redelivered request the other instance had already committed."""
    instrumentation = next(d for d in container.dependencies if isinstance(d, Instrumentation))
    return sum(n for (kind, method, result), n in instrumentation.counts.items()
               if (kind, method, result) == ("event", "handle_opinion_requested", outcome))


def handled_there(process):
    """Opinion requests the other process handled successfully, from its own /metrics."""
    try:
        text = requests.get(process.url("/metrics"), timeout=5).text
    except requests.RequestException:
        return 0
    return counter(text, "govpm_events_handled_total", service="security", event="opinion_requested",
                   outcome="success")


def ready_messages(uri, queue):
    """Messages in ``queue`` not yet delivered to a consumer (a passive declare: no lag)."""
    with Connection(uri) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def drain(uri, queue):
    """Take every message now in ``queue``: [(event_id, request_id, verdict)]."""
    taken = []
    with Connection(uri) as conn:
        channel = conn.channel()
        try:
            while True:
                message = channel.basic_get(queue, no_ack=True)
                if message is None:
                    break
                for envelope in envelopes(json.loads(message.body)):
                    taken.append((envelope["event_id"], envelope["payload"]["request_id"],
                                  envelope["payload"]["verdict"]))
        except (NotFound, InternalError) as exc:
            if not queue_not_ready(exc):
                raise
    return taken


def test_two_instances_share_the_work_and_a_crash_of_one_loses_and_duplicates_nothing(
        vhost_uri, make_db_url, sqlite_url, tmp_path):
    n_first, n_second = 20, 2 * PREFETCH * PACK  # more than the hung process can hold
    urls = {"security": make_db_url("security"), "review": sqlite_url("review")}
    other = None
    with Suite(vhost_uri, "jinjiang", urls, {"EVENT_PACK": PACK}) as suite:
        try:
            here = ServiceContainer(SecurityService)
            here.start()  # migrates the shared database
            review = ServiceContainer(QuietReview)
            review.start()
            suite.containers.update({"security": here, "review": review})
            other = ServiceProcess("security", {
                "AMQP_URI": vhost_uri, "SECURITY_DB_URL": urls["security"], "JURISDICTION": "jinjiang",
                "DELIVERY_LIMIT": str(suite.config["DELIVERY_LIMIT"]), "EVENT_PREFETCH": str(PREFETCH),
            }, tmp_path / "security-2.log").wait_ready()
            asker = next(e for e in review.extensions if isinstance(e, Database)).core
            security_db = next(e for e in here.extensions if isinstance(e, Database))
            desk = security_db.core.metadata.tables["opinion_requests"]

            def ask(batch):
                with asker.transaction() as tx:
                    for request in batch:
                        tx.emit("opinion_requested", request, correlation_id=request["project"]["code"],
                                routing_key="opinion_requested.security")

            def answered():
                with security_db.core.read() as conn:
                    return conn.execute(select(func.count()).select_from(desk)).scalar()

            asked = [opinion_request(n) for n in range(n_first + n_second)]
            # 1. both instances take work from the one queue
            ask(asked[:n_first])
            wait_for(lambda: answered() == n_first, timeout=60, message="the first requests answered")
            # a worker is counted just after its commit (and a group's workers one after another)
            wait_for(lambda: handled_here(here) + handled_there(other) == n_first, timeout=10,
                     message="both instances' counters caught up with the answers")
            by_other = handled_there(other)
            assert handled_here(here) >= 1 and by_other >= 1
            # each instance's relay marks the rows it published, in a transaction of its own: a
            # process stopped inside one would hold SQLite's write lock until it is killed
            wait_for(lambda: security_db.relay.pending()[0] == 0, timeout=10,
                     message="both instances' outboxes relayed and marked")

            # 2. the other process hangs with requests in hand (the broker has pushed it up to its
            #    prefetch), then crashes: the survivor answers everything it can, but not those
            os.killpg(other.proc.pid, signal.SIGSTOP)
            ask(asked[n_first:])
            last = {}

            def held_by_the_hung_process():
                """Unanswered requests once the survivor is idle (queue empty, no worker running),
                the same on two polls in a row."""
                idle = ready_messages(vhost_uri, REQUEST_QUEUE) == 0 and not here._worker_threads
                left = len(asked) - answered() if idle else None
                settled = left is not None and last.get("left") == left
                last["left"] = left
                return left if settled and left else None

            held = wait_for(held_by_the_hung_process, timeout=60, interval=0.1,
                            message="the survivor done with all but what the hung process holds")
            assert 0 < held <= PREFETCH * PACK
            other.kill()  # SIGKILL: the broker puts what it held back in the queue

            issued = collections.defaultdict(set)  # request_id -> {event ids}
            verdicts = collections.defaultdict(set)

            def collect():
                for event_id, request_id, verdict in drain(vhost_uri, ISSUED_QUEUE):
                    issued[request_id].add(event_id)
                    verdicts[request_id].add(verdict)
                return len(issued) == len(asked)

            wait_for(collect, timeout=60, interval=0.2, message="an opinion for every request in review's queue")
            wait_for(lambda: security_db.relay.pending()[0] == 0, timeout=10, message="the outbox relayed")
            collect()  # anything still on its way

            ids = {r["request_id"] for r in asked}
            assert set(issued) == ids
            assert all(len(events) == 1 for events in issued.values()), \
                {r: e for r, e in issued.items() if len(e) > 1}  # never two different opinions
            assert all(len(v) == 1 for v in verdicts.values())
            core = security_db.core
            desk, outbox = core.metadata.tables["opinion_requests"], core.outbox
            with core.read() as conn:
                rows = conn.execute(select(desk.c.request_id, desk.c.status)).all()
                opinions_out = conn.execute(select(func.count()).select_from(outbox)
                                            .where(outbox.c.event_type == "opinion_issued")).scalar()
                ledger = conn.execute(select(func.count()).select_from(core.metadata.tables["compliance"])).scalar()
            assert sorted(r.request_id for r in rows) == sorted(ids)  # one desk row per request
            assert {r.status for r in rows} == {"issued"}
            assert opinions_out == len(ids) and ledger == len(ids)
            assert ready_messages(vhost_uri, "security.dead-letters") == 0
            assert not suite.rpc("security", "list_inbox", status="pending_signature")
            # each request was handled by exactly one instance: the survivor answered all the rest,
            # including what the crashed process held
            assert handled_here(here) == len(ids) - by_other
        finally:
            if other is not None:
                other.kill()
