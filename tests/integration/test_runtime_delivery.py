"""The runtime's delivery guarantees on the real RabbitMQ: outbox → event → inbox,
duplicates ignored, failing handlers dead-lettered after a bounded number of tries,
events published before any consumer ever started are not lost, and events that arrive
together are handled in one batch in which each event keeps its own outcome."""
import json

import pytest
from nameko import config
from nameko.containers import ServiceContainer
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from runtime import metrics
from runtime.db import DatabaseCore, runtime_tables
from runtime.dependencies import Database
from runtime.messaging import subscribe
from runtime.ops import Instrumentation
from tests.support.logcapture import capturing
from tests.support import broker
from tests.support.broker import wait_for
from tests.support.fakes import submitted

pytestmark = pytest.mark.integration

src_md = MetaData()
runtime_tables(src_md)
dst_md = MetaData()
runtime_tables(dst_md)
seen = Table("seen", dst_md, Column("id", Integer, primary_key=True), Column("code", String(64)))

FAIL = {"codes": set()}
AFTER_TRANSACTION = {}  # code -> rows of it a reader saw once the handler's transaction returned


class Source:
    name = "registry"
    db = Database(src_md)


class Sink:
    name = "review"
    db = Database(dst_md)

    @subscribe("registry", "project_submitted")
    def handle_project_submitted(self, event):
        code = event["payload"]["project"]["code"]
        if code in FAIL["codes"]:
            raise RuntimeError("handler fails on purpose")
        with self.db.transaction(event=event) as tx:
            tx.conn.execute(seen.insert().values(code=code))
        AFTER_TRANSACTION[code] = count_seen(config["DATABASES"]["review"], code)


class InstrumentedSink(Sink):
    """The same subscription, with the metrics and the "event handled" lines."""
    instrumentation = Instrumentation()


@pytest.fixture
def cfg(vhost_uri, sqlite_url):
    urls = {"registry": sqlite_url("registry"), "review": sqlite_url("review")}
    with config.patch({"AMQP_URI": vhost_uri, "DATABASES": urls, "DELIVERY_LIMIT": 2,
                       "OUTBOX_POLL_SECONDS": 0.2}):
        yield urls


def start(cls):
    container = ServiceContainer(cls)
    container.start()
    return container


def count_seen(url, code=None):
    core = DatabaseCore(url, dst_md, "review")
    with core.read() as s:
        q = select(func.count()).select_from(seen)
        if code:
            q = q.where(seen.c.code == code)
        return s.execute(q).scalar()


SUBMITTED_QUEUE = "evt-registry-project_submitted--review.handle_project_submitted"


def messages_waiting(count, what):
    vhost = broker.vhost_of(config["AMQP_URI"])
    wait_for(lambda: (broker.queue(vhost, SUBMITTED_QUEUE) or {}).get("messages", 0) == count, message=what)


def handled_but_one(cfg, codes, failing, what):
    """The instrumented sink, started and left once every event but ``failing`` is handled
    and one message (``what``) is dead-lettered."""
    vhost = broker.vhost_of(config["AMQP_URI"])
    sink = start(InstrumentedSink)
    for code in codes:
        if code != failing:
            wait_for(lambda: count_seen(cfg["review"], code) == 1, message=f"{code} handled")
    wait_for(lambda: (broker.queue(vhost, "review.dead-letters") or {}).get("messages", 0) == 1,
             timeout=30, message=what)
    return sink


def emit(container, code):
    core = container.extensions  # noqa
    db = next(e for e in container.extensions if isinstance(e, Database))
    with db.core.transaction() as tx:
        tx.emit("project_submitted", submitted(code), correlation_id=code)


def test_event_published_before_the_consumer_ever_started_is_delivered(cfg):
    source = start(Source)
    emit(source, "C-1")
    # the publisher declared the subscriber's queue: the event waits there
    messages_waiting(1, "event waiting in the subscriber queue")
    sink = start(Sink)
    wait_for(lambda: count_seen(cfg["review"], "C-1") == 1, message="handler commit")
    sink.stop()
    source.stop()


def unsent_rows(url):
    core = DatabaseCore(url, src_md, "registry")
    with core.read() as s:
        return s.execute(select(func.count()).select_from(core.outbox)
                         .where(core.outbox.c.published_at.is_(None))).scalar()


@pytest.mark.parametrize("end, left", [("stop", 0), ("kill", 1)])
def test_a_confirmed_event_is_marked_sent_when_its_service_stops_and_left_to_go_again_when_it_is_killed(
        cfg, end, left):
    # the mark waits for the stop (a poll would mark before it reads the table)
    with config.patch({"OUTBOX_MARK_SECONDS": 60, "OUTBOX_POLL_SECONDS": 60}):
        source = start(Source)
        emit(source, f"C-M-{end}")
        messages_waiting(1, "event published and confirmed")
        assert unsent_rows(cfg["registry"]) == 1
        getattr(source, end)()
    # stopped: marked on the way out; killed: no database work, published again at the next start
    assert unsent_rows(cfg["registry"]) == left


def test_a_redelivered_event_is_handled_once(cfg):
    sink = start(Sink)
    source = start(Source)
    emit(source, "C-2")
    wait_for(lambda: count_seen(cfg["review"], "C-2") == 1, message="first delivery")
    # publish the very same envelope again, as a broker redelivery would
    db = next(e for e in source.extensions if isinstance(e, Database))
    with db.core.read() as s:
        body = s.execute(select(db.core.outbox.c.body)).scalar()
    envelope = json.loads(body)
    from kombu import Connection, Exchange, Producer
    with Connection(config["AMQP_URI"]) as conn:
        Producer(conn).publish(envelope, exchange=Exchange("registry.events", type="topic", durable=True),
                               routing_key="project_submitted", serializer="json")
    import time
    time.sleep(1.0)
    assert count_seen(cfg["review"], "C-2") == 1
    source.stop()
    sink.stop()


def test_a_failing_handler_dead_letters_after_the_delivery_limit(cfg):
    FAIL["codes"].add("C-BAD")
    sink = start(Sink)
    source = start(Source)
    emit(source, "C-BAD")
    emit(source, "C-OK")
    vhost = broker.vhost_of(config["AMQP_URI"])
    wait_for(lambda: count_seen(cfg["review"], "C-OK") == 1, message="good event handled")
    dlq = wait_for(lambda: (broker.queue(vhost, "review.dead-letters") or {}).get("messages", 0) >= 1,
                   timeout=30, message="failed event in the dead-letter queue")
    assert dlq
    assert count_seen(cfg["review"], "C-BAD") == 0
    # ops see it, fix the cause, and replay it to the queue it came from
    from runtime.deadletters import list_dead_letters, replay
    listed = wait_for(lambda: list_dead_letters(config["AMQP_URI"], "review"), message="dead letter listed")
    assert listed[0]["correlation_id"] == "C-BAD"
    assert listed[0]["from_queue"] == SUBMITTED_QUEUE
    FAIL["codes"].discard("C-BAD")
    assert len(replay(config["AMQP_URI"], "review", event_id=listed[0]["event_id"])) == 1
    wait_for(lambda: count_seen(cfg["review"], "C-BAD") == 1, message="replayed event handled")
    assert list_dead_letters(config["AMQP_URI"], "review") == []
    source.stop()
    sink.stop()


def units_and_commits(service="review"):
    sample = metrics.REGISTRY.get_sample_value
    return (sample("govpm_db_units_per_commit_sum", {"service": service}) or 0.0,
            sample("govpm_db_units_per_commit_count", {"service": service}) or 0.0)


def test_events_that_arrive_together_share_a_commit_and_each_keeps_its_own_outcome(cfg):
    codes = [f"C-B{i:02d}" for i in range(20)]
    FAIL["codes"].add("C-B07")
    with config.patch({"EVENT_PACK": 1}):  # a message each (packs: the next test)
        source = start(Source)
    db = next(e for e in source.extensions if isinstance(e, Database))
    with db.core.transaction() as tx:
        ids = {tx.emit("project_submitted", submitted(code), correlation_id=code): code for code in codes}
    messages_waiting(20, "20 events waiting for the subscriber")
    units_before, commits_before = units_and_commits()
    with capturing() as capture:
        sink = handled_but_one(cfg, codes, "C-B07", "the failing event dead-lettered after its deliveries")
        sink.stop()
    source.stop()
    FAIL["codes"].discard("C-B07")
    # every message was settled (the acks of a batch's messages go as one, runtime.acks):
    # none returned to the queue when the sink's connection closed
    messages_waiting(0, "no message left unacked")
    assert count_seen(cfg["review"]) == 19 and count_seen(cfg["review"], "C-B07") == 0
    units, commits = units_and_commits()
    assert units - units_before == 19
    assert commits - commits_before <= 5  # 19 events, one commit per batch, not one each
    # one "event handled" line per event, with that event's own id, project and outcome
    handled = [r for r in capture.records() if r["msg"] == "event handled"]
    good = {r["event_id"]: r for r in handled if r["outcome"] == "success"}
    assert set(good) == {event_id for event_id, code in ids.items() if code != "C-B07"}
    assert all(r["code"] == ids[r["event_id"]] and r["event"] == "project_submitted" for r in good.values())
    failed = [r for r in handled if r["outcome"] == "error"]
    # the first delivery and DELIVERY_LIMIT (2) returns, then the broker dead-letters it
    assert len(failed) == 3 and all(r["code"] == "C-B07" for r in failed)
    retries = [r for r in capture.records() if r["msg"].startswith("event handler failed")]
    assert retries and all(r["code"] == "C-B07" for r in retries)


def test_a_pack_of_events_is_handled_event_by_event_and_settled_as_one_message(cfg):
    """20 events in one transaction leave as packs of at most EVENT_PACK (runtime.packs).
    Each event is handled, logged and counted on its own; the pack holding the failing
    one returns to the queue (its other events are then duplicates) until the broker
    dead-letters it, and is listed event by event and replayed whole."""
    from runtime.deadletters import list_dead_letters, replay
    codes = [f"C-P{i:02d}" for i in range(20)]
    FAIL["codes"].add("C-P09")
    with config.patch({"EVENT_PACK": 8}):
        source = start(Source)
    db = next(e for e in source.extensions if isinstance(e, Database))
    with db.core.transaction() as tx:
        ids = {tx.emit("project_submitted", submitted(code), correlation_id=code): code for code in codes}
    messages_waiting(3, "20 events waiting as 3 messages (8 + 8 + 4)")
    with capturing() as capture:
        sink = handled_but_one(cfg, codes, "C-P09",
                               "the pack holding the failing event dead-lettered after its deliveries")
        listed = list_dead_letters(config["AMQP_URI"], "review")
        # the second pack: C-P08 … C-P15, in their order, each listed on its own
        assert [letter["correlation_id"] for letter in listed] == codes[8:16]
        assert {letter["from_queue"] for letter in listed} == {SUBMITTED_QUEUE}
        assert {letter["pack_of"] for letter in listed} == {8}
        assert count_seen(cfg["review"]) == 19 and count_seen(cfg["review"], "C-P09") == 0
        FAIL["codes"].discard("C-P09")
        failing = next(event_id for event_id, code in ids.items() if code == "C-P09")
        assert len(replay(config["AMQP_URI"], "review", event_id=failing)) == 8
        wait_for(lambda: count_seen(cfg["review"], "C-P09") == 1,
                 message="the replayed pack's failing event handled")
        assert list_dead_letters(config["AMQP_URI"], "review") == []
        sink.stop()
    source.stop()
    assert all(count_seen(cfg["review"], code) == 1 for code in codes)  # nothing handled twice
    handled = [r for r in capture.records() if r["msg"] == "event handled"]
    outcomes = {}
    for r in handled:
        assert r["code"] == ids[r["event_id"]]
        outcomes.setdefault(r["outcome"], []).append(r["code"])
    assert sorted(outcomes["success"]) == codes
    # the first delivery and DELIVERY_LIMIT (2) returns, then the dead letter; then the replay
    assert outcomes["error"] == ["C-P09"] * 3
    # the pack's seven other events came back with it twice, and once more with the replay
    assert sorted(outcomes["duplicate"]) == sorted([c for c in codes[8:16] if c != "C-P09"] * 3)


def test_a_pack_with_an_event_its_contract_refuses_is_dead_lettered_once_the_others_are_handled(cfg, sqlite_url):
    from kombu import Connection, Exchange, Producer
    from runtime import packs
    from runtime.deadletters import list_dead_letters
    writer = DatabaseCore(sqlite_url("writer"), src_md, "registry")  # an outbox no relay reads
    writer.migrate()
    with writer.transaction() as tx:
        for code in ("C-R1", "C-R2"):
            tx.emit("project_submitted", submitted(code), correlation_id=code)
    with writer.read() as s:
        rows = s.execute(select(writer.outbox.c.body).order_by(writer.outbox.c.id)).scalars()
        bodies = [body.encode() for body in rows]
    refused = json.dumps({"event_type": "project_submitted", "payload": {}}).encode()
    sink = start(Sink)
    with Connection(config["AMQP_URI"]) as conn:
        Producer(conn).publish(packs.body([bodies[0], refused, bodies[1]]),
                               exchange=Exchange("registry.events", type="topic", durable=True),
                               routing_key="project_submitted", content_type="application/json",
                               content_encoding="utf-8")
    wait_for(lambda: count_seen(cfg["review"]) == 2, message="the pack's two good events handled")
    letters = wait_for(lambda: list_dead_letters(config["AMQP_URI"], "review"), message="the pack dead-lettered")
    # refused on its first delivery, not retried: the good events are not handled again
    assert [(letter["correlation_id"], letter["reason"], letter["pack_of"]) for letter in letters] == [
        ("C-R1", "rejected", 3), (None, "rejected", 3), ("C-R2", "rejected", 3)]
    sink.stop()
    writer.dispose()


@pytest.mark.parametrize("key, value, zh, en", [
    ("EVENT_BATCH", "0", "正整数", "positive integer"),
    ("EVENT_BATCH", "many", "正整数", "positive integer"),
    ("DELIVERY_LIMIT", "0", "正整数", "positive integer"),
    ("OUTBOX_BATCH", "all", "正整数", "positive integer"),
    ("OUTBOX_POLL_SECONDS", "0", "大于 0 的秒数", "seconds > 0"),
    ("OUTBOX_POLL_SECONDS", "soon", "大于 0 的秒数", "seconds > 0"),
    ("OUTBOX_MARK_SECONDS", "-1", "不小于 0 的秒数", "seconds ≥ 0"),
    ("OUTBOX_MARK_SECONDS", "later", "不小于 0 的秒数", "seconds ≥ 0"),
    ("EVENT_PACK", "0", "正整数", "positive integer"),
])
def test_a_wrong_delivery_setting_stops_the_service_with_a_clear_error(cfg, key, value, zh, en):
    with config.patch({key: value}):
        container = ServiceContainer(Sink)
        with pytest.raises(ValueError, match=key) as raised:
            container.start()
        container.kill()
    assert zh in str(raised.value) and en in str(raised.value)


@pytest.mark.parametrize("batch, visible", [(1, 1), (32, 0)])
def test_code_after_a_handlers_transaction_runs_after_its_commit_alone_and_before_it_in_a_batch(
        cfg, batch, visible):
    codes = [f"C-W{batch}-{i}" for i in range(4)]
    with config.patch({"EVENT_BATCH": batch}):
        source = start(Source)
        db = next(e for e in source.extensions if isinstance(e, Database))
        with db.core.transaction() as tx:  # one pack of four: EVENT_BATCH 1 still gives each its own worker
            for code in codes:
                tx.emit("project_submitted", submitted(code), correlation_id=code)
        sink = start(Sink)
        wait_for(lambda: count_seen(cfg["review"]) == 4, message="four events handled")
        sink.stop()
        source.stop()
    # alone, a handler's transaction returns once committed; in a batch, the batch commits later
    assert [AFTER_TRANSACTION[code] for code in codes] == [visible] * 4


def test_a_message_that_is_not_an_event_is_dead_lettered_at_once_and_the_next_one_is_handled(cfg):
    """Not JSON, another content type, JSON that is not an envelope: retrying cannot fix
    any of them, so none is retried; the queue goes on."""
    from kombu import Connection, Exchange, Producer
    sink = start(Sink)
    exchange = Exchange("registry.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as conn:
        producer = Producer(conn)
        producer.publish(b"{not json", exchange=exchange, routing_key="project_submitted",
                         content_type="application/json", content_encoding="utf-8")
        producer.publish(b"<event/>", exchange=exchange, routing_key="project_submitted",
                         content_type="application/xml", content_encoding="utf-8")
        producer.publish({"event_type": "project_submitted", "payload": {}}, exchange=exchange,
                         routing_key="project_submitted", serializer="json")

        def dead_letters():
            return conn.default_channel.queue_declare("review.dead-letters", passive=True)[1]

        wait_for(lambda: dead_letters() == 3, message="the three messages dead-lettered")
    source = start(Source)
    emit(source, "C-AFTER")
    wait_for(lambda: count_seen(cfg["review"], "C-AFTER") == 1, message="the next event handled")
    from runtime.deadletters import list_dead_letters
    # refused on their first delivery, not after the delivery limit
    assert [letter["reason"] for letter in list_dead_letters(config["AMQP_URI"], "review")] == ["rejected"] * 3
    source.stop()
    sink.stop()


def test_the_relay_counts_every_event_it_published_packs_included(cfg):
    """govpm_events_published_total counts events, not messages: 12 events of one
    transaction leave in packs (runtime.packs), and each is counted once."""
    def published():
        return metrics.REGISTRY.get_sample_value(
            "govpm_events_published_total", {"service": "registry", "event": "project_submitted"}) or 0.0

    before = published()
    source = start(Source)
    db = next(e for e in source.extensions if isinstance(e, Database))
    with db.core.transaction() as tx:
        for i in range(12):
            tx.emit("project_submitted", submitted(f"C-N{i:02d}"), correlation_id=f"C-N{i:02d}")
    messages_waiting(2, "12 events in two packs")  # EVENT_PACK 8: a pack of 8 and one of 4
    wait_for(lambda: published() - before == 12, message="12 events counted")
    source.stop()
    assert published() - before == 12
