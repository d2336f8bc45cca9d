"""The outbox relay on the real RabbitMQ, over SQLite and PostgreSQL: events handed over in
memory at commit (SQLite) and events found in the table go out once each, in commit order,
and a failed publish sends the relay back to the table without losing anything."""
import json

import amqp
import eventlet
import pytest
from sqlalchemy import MetaData, func, select

from runtime.db import runtime_tables
from runtime.outbox import OutboxRelay
from runtime.packs import DEFAULT_PACK, envelopes
from runtime.publisher import connection_params
from tests.support.broker import wait_for
from tests.support.databases import migrated_core
from tests.support.fakes import submitted

pytestmark = pytest.mark.integration

md = MetaData()
runtime_tables(md)
QUEUE = "relay-test.all"


@pytest.fixture
def channel(vhost_uri):
    conn = amqp.Connection(**connection_params(vhost_uri))
    conn.connect()
    ch = conn.channel()
    ch.exchange_declare("registry.events", "topic", durable=True, auto_delete=False)
    ch.queue_declare(QUEUE, durable=True, auto_delete=False)
    ch.queue_bind(QUEUE, "registry.events", routing_key="#")
    yield ch
    conn.close()


@pytest.fixture
def core(make_db_url):
    with migrated_core(make_db_url("registry"), md, "registry") as core:
        yield core


@pytest.fixture
def relay(core, vhost_uri):
    relays = []

    def start(**options):
        options = {"batch_size": 50, "poll_interval": 0.2, **options}
        r = OutboxRelay(core, vhost_uri, **options)
        relays.append((r, eventlet.spawn(r.run)))
        r.wake()
        return r

    yield start
    for r, gt in relays:
        r.stop()
        gt.wait()


def emit(core, codes):
    for code in codes:
        with core.transaction() as tx:
            tx.emit("project_submitted", submitted(code), correlation_id=code)


def received_messages(channel, expected, timeout=20):
    """``(routing key, [project codes])`` of each message, once ``expected`` events came."""
    taken = []

    def drained():
        while True:
            msg = channel.basic_get(QUEUE, no_ack=True)
            if msg is None:
                break
            taken.append((msg.delivery_info["routing_key"],
                          [envelope["correlation_id"] for envelope in envelopes(json.loads(msg.body))]))
        return sum(len(codes) for _, codes in taken) >= expected

    wait_for(drained, timeout=timeout, message=f"{expected} events")
    eventlet.sleep(0.3)
    drained()
    return taken


def received(channel, expected, timeout=20):
    """The project codes of the events, in the order they came."""
    return [code for _, codes in received_messages(channel, expected, timeout) for code in codes]


def unsent(core):
    with core.read() as s:
        return s.execute(select(func.count()).select_from(core.outbox).where(core.outbox.c.published_at.is_(None))).scalar()


def test_events_committed_while_the_relay_runs_go_out_once_each_in_commit_order(core, relay, channel):
    r = relay()
    scans = []
    scan = r._flush_table
    r._flush_table = lambda: scans.append(1) or scan()
    codes = [f"C{i:04d}" for i in range(300)]
    emit(core, codes)
    assert received(channel, 300) == codes
    wait_for(lambda: unsent(core) == 0, message="every row marked sent")
    if core.is_sqlite:  # handed over at commit, not read back from the table each time
        assert len(scans) < 30


def test_a_backlog_in_the_table_goes_out_before_what_is_committed_later(core, relay, channel):
    backlog = [f"B{i:04d}" for i in range(120)]  # more than one batch
    emit(core, backlog)
    relay()
    later = [f"L{i:04d}" for i in range(30)]
    emit(core, later)
    assert received(channel, 150) == backlog + later
    wait_for(lambda: unsent(core) == 0, message="every row marked sent")


def test_a_publish_that_fails_sends_the_relay_back_to_the_table_and_nothing_is_lost(core, relay, channel):
    r = relay()
    first = [f"F{i:04d}" for i in range(20)]
    emit(core, first)
    assert received(channel, 20) == first
    r.publisher.conn.sock.shutdown(2)  # the broker connection dies under the relay
    second = [f"S{i:04d}" for i in range(20)]
    emit(core, second)
    got = received(channel, 20)
    assert set(got) == set(second)  # each at least once (a publish cut mid-batch may repeat)
    assert [c for i, c in enumerate(got) if c not in got[:i]] == second
    wait_for(lambda: unsent(core) == 0, message="every row marked sent")


def test_events_in_a_row_leave_in_packs_of_at_most_the_pack_size(core, relay, channel):
    codes = [f"P{i:04d}" for i in range(120)]
    emit(core, codes)  # waiting in the table: the relay scans them 50 at a time
    relay()
    taken = received_messages(channel, len(codes))
    got, sizes = [code for _, sent in taken for code in sent], [len(sent) for _, sent in taken]
    assert got == codes
    cut = [DEFAULT_PACK] * (50 // DEFAULT_PACK) + ([50 % DEFAULT_PACK] if 50 % DEFAULT_PACK else [])
    last = [DEFAULT_PACK] * (20 // DEFAULT_PACK) + ([20 % DEFAULT_PACK] if 20 % DEFAULT_PACK else [])
    assert sizes == cut + cut + last  # each scan (50, 50, 20) cut at the pack size


def test_a_batch_with_two_routing_keys_leaves_in_packs_of_one_key_each_key_in_commit_order(core, relay, channel):
    codes = [f"K{i:04d}" for i in range(40)]
    keys = ["project_submitted" if i % 2 else "project_submitted.copy" for i in range(40)]
    with core.transaction() as tx:  # interleaved: A1 B1 A2 B2 …
        for code, key in zip(codes, keys):
            tx.emit("project_submitted", submitted(code), correlation_id=code, routing_key=key)
    relay()
    taken = received_messages(channel, len(codes))  # (routing key, [codes]) per message
    for key in set(keys):
        sent = [code for k, got in taken if k == key for code in got]
        assert sent == [code for code, k in zip(codes, keys) if k == key]  # every event once, in order
    assert all(keys[codes.index(code)] == key for key, got in taken for code in got)
    per_key = -(-20 // DEFAULT_PACK)
    assert len(taken) == 2 * per_key  # one scan of 40 rows: each key's 20 cut at the pack size


def test_text_beyond_ascii_leaves_as_the_utf8_the_row_holds_from_the_table_and_at_commit(core, relay, channel):
    """The relay publishes each body as bytes: read from the table (on SQLite as the stored
    UTF-8, without a round trip through text) and handed over at commit alike."""
    names = ["巴中市政务云平台扩容", "锦江区“一网通办”二期 — 𠀀𠀁 😀", "Dalate \\ \"quoted\" \u2028 line"]

    def emit_named(prefix):
        codes = []
        for i, name in enumerate(names):
            code = f"{prefix}{i}"
            payload = submitted(code)
            payload["project"]["unit_name"] = payload["project"]["name"] = name
            with core.transaction() as tx:
                tx.emit("project_submitted", payload, correlation_id=code)
            codes.append(code)
        return codes

    channel.auto_decode = False  # the bodies as the bytes that came
    waiting = emit_named("T")  # in the table before the relay starts: read back by a scan
    relay()
    later = emit_named("H")  # committed while it runs: handed over (SQLite) or scanned
    got = {}
    taken = []

    def drained():
        while (msg := channel.basic_get(QUEUE, no_ack=True)) is not None:
            taken.append(msg.body)
            for envelope in envelopes(json.loads(msg.body)):
                got[envelope["correlation_id"]] = envelope
        return len(got) == 6

    wait_for(drained, message="six events")
    with core.read() as s:
        stored = dict(s.execute(select(core.outbox.c.correlation_id, core.outbox.c.body)).all())
    for index, code in enumerate(waiting + later):
        assert got[code]["payload"]["project"]["name"] == names[index % 3]
        assert json.loads(stored[code]) == got[code]
        # the message carries exactly the row's text, as UTF-8
        assert any(stored[code].encode("utf-8") in body for body in taken)


def mark_writes(core):
    """The number of statements that mark rows sent, counted as they run."""
    from sqlalchemy import event
    count = []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE OUTBOX"):
            count.append(1)

    event.listen(core.engine, "before_cursor_execute", seen)
    return count


def test_confirmed_events_are_marked_sent_later_several_in_one_write(core, relay, channel):
    writes = mark_writes(core)
    r = relay(mark_delay=0.5)
    codes = [f"M{i:04d}" for i in range(6)]
    emit(core, codes)  # six commits, handed over one by one
    assert received(channel, 6) == codes
    # published and confirmed, each on its own; marked together once the delay is over
    wait_for(lambda: unsent(core) == 0, timeout=5, message="every row marked sent")
    assert len(writes) < len(codes)
    assert not r._unmarked


def test_confirmed_events_not_yet_marked_are_marked_when_the_relay_stops(core, relay, channel):
    r = relay(mark_delay=60, poll_interval=60)
    codes = [f"S{i:04d}" for i in range(5)]
    emit(core, codes)
    assert received(channel, 5) == codes
    if core.is_sqlite:  # confirmed, waiting for their mark (on PostgreSQL each scan marks the rows before it)
        assert unsent(core) == 5
    r.stop()
    assert unsent(core) == 0


def test_a_scan_marks_what_was_confirmed_first_and_publishes_nothing_twice(core, relay, channel):
    r = relay(mark_delay=60, poll_interval=60)
    codes = [f"R{i:04d}" for i in range(5)]
    emit(core, codes)
    assert received(channel, 5) == codes
    if core.is_sqlite:
        assert unsent(core) == 5
    r._backlog = True  # as after a poll or a failure: the relay reads the table
    r.wake()
    wait_for(lambda: unsent(core) == 0, timeout=5, message="marked before the scan")
    later = [f"L{i:04d}" for i in range(3)]
    emit(core, later)
    assert received(channel, 3) == later  # the five are not published again


def test_confirms_that_fill_a_batch_are_marked_at_once(core, relay, channel):
    relay(mark_delay=60, poll_interval=60)
    codes = [f"F{i:04d}" for i in range(120)]
    emit(core, codes)  # committed one by one while the relay runs: handed over on SQLite
    assert received(channel, 120) == codes
    # every 50 (the batch size) marked without waiting for the delay; on PostgreSQL each scan marks
    wait_for(lambda: unsent(core) < 50, timeout=5, message="full batches marked at once")


def test_events_confirmed_but_not_marked_when_the_relay_dies_go_out_again_with_their_ids(core, vhost_uri, channel):
    first = OutboxRelay(core, vhost_uri, batch_size=50, poll_interval=60, mark_delay=60)
    thread = eventlet.spawn(first.run)
    first.wake()
    codes = [f"D{i:04d}" for i in range(4)]
    emit(core, codes)
    assert received(channel, 4) == codes
    thread.kill()  # a crash: no stop, no mark
    first.publisher.close()
    left = unsent(core)  # on PostgreSQL, each scan marked the rows before it
    assert left == 4 if core.is_sqlite else left <= 4
    second = OutboxRelay(core, vhost_uri, batch_size=50, poll_interval=0.2, mark_delay=0)
    thread = eventlet.spawn(second.run)
    second.wake()
    try:
        # again, at least once: the subscribers' inbox drops them
        assert received(channel, left) == codes[4 - left:]
        wait_for(lambda: unsent(core) == 0, message="marked after the second publish")
    finally:
        second.stop()
        thread.wait()


def test_a_mark_that_fails_keeps_its_rows_and_nothing_is_published_twice_after(core, relay, channel):
    r = relay(mark_delay=0)
    transaction, failed = core.transaction, []

    def broken(*args, **kwargs):
        failed.append(1)
        raise RuntimeError("the database is away")

    mark = r._mark_sent

    def mark_failing_once():  # the relay's first mark finds the database away
        core.transaction = transaction if failed else broken
        try:
            mark()
        finally:
            core.transaction = transaction

    r._mark_sent = mark_failing_once
    codes = [f"X{i:04d}" for i in range(3)]
    emit(core, codes[:1])
    assert received(channel, 1) == codes[:1]
    wait_for(lambda: failed, message="the first mark failed")
    wait_for(lambda: unsent(core) == 0, timeout=10, message="marked on the retry")
    emit(core, codes[1:])
    assert received(channel, 2) == codes[1:]  # the first event was marked, not scanned and sent again
