"""A batch (``DatabaseCore.batch``): units of work run one after another in one
transaction, each in its own savepoint, committed once at the end. What the event
subscription relies on when it hands several events to one worker, on both backends."""
import types

import eventlet
import pytest
from sqlalchemy import (
    Column, ForeignKey, Integer, MetaData, String, Table, event, func, insert, select, update,
)
from sqlalchemy.exc import IntegrityError

from runtime.db import AlreadyHandled, LockBusy, make_engine, runtime_tables
from runtime.messaging import EventBatch, _Item
from tests.support.databases import migrated_core
from tests.support.fakes import submitted

md = MetaData()
runtime_tables(md)
notes = Table("notes", md, Column("id", Integer, primary_key=True), Column("text", String(50), nullable=False))
Table("parents", md, Column("id", Integer, primary_key=True))
children = Table("children", md, Column("id", Integer, primary_key=True),
                 Column("parent_id", Integer, ForeignKey("parents.id", deferrable=True, initially="DEFERRED"),
                        nullable=False))


@pytest.fixture
def core(make_db_url):
    with migrated_core(make_db_url("batches"), md, "registry") as core:
        yield core


def visible(core, table=notes):
    """What another connection sees (``core.read()`` inside a held PostgreSQL transaction
    reads on that transaction's own connection)."""
    with core.read_engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def envelope(event_id):
    return {"event_id": event_id, "event_type": "x", "source": "review"}


def test_units_in_a_batch_commit_once_at_its_end_and_a_failing_unit_rolls_back_alone(core):
    commits = []
    event.listen(core.engine, "commit", lambda conn: commits.append(1))
    outcomes = []
    with core.batch():
        for i in range(6):
            try:
                with core.transaction(event=envelope(f"e{i}")) as tx:
                    tx.conn.execute(insert(notes), {"text": f"n{i}"})
                    if i == 2:
                        raise ValueError("unit fails on purpose")
                outcomes.append("ok")
            except ValueError:
                outcomes.append("failed")
            # a unit that succeeded returns before the commit: nothing is visible yet
            assert visible(core) == 0
    assert outcomes == ["ok", "ok", "failed", "ok", "ok", "ok"]
    assert len(commits) == 1
    with core.read() as conn:
        assert sorted(conn.execute(select(notes.c.text)).scalars()) == ["n0", "n1", "n3", "n4", "n5"]
        # the failed unit's inbox row went with it: a redelivery will run it again
        assert sorted(conn.execute(select(core.inbox.c.event_id)).scalars()) == ["e0", "e1", "e3", "e4", "e5"]


def test_an_event_repeated_inside_a_batch_is_already_handled(core):
    with core.batch():
        with core.transaction(event=envelope("same")) as tx:
            tx.conn.execute(insert(notes), {"text": "first"})
        with pytest.raises(AlreadyHandled):
            with core.transaction(event=envelope("same")) as tx:
                tx.conn.execute(insert(notes), {"text": "second"})
    assert visible(core) == 1


def test_a_failed_batch_commit_keeps_none_of_its_units_and_hands_the_relay_nothing(core):
    handed = []
    core.committed.append(handed.append)
    with core.transaction() as tx:
        tx.conn.execute(insert(md.tables["parents"]), {"id": 1})
    # the middle unit breaks a deferred foreign key: only the COMMIT finds it
    with pytest.raises(IntegrityError):
        with core.batch():
            for parent_id in (1, 404, 1):
                with core.transaction() as tx:
                    tx.conn.execute(insert(children), {"parent_id": parent_id})
                    tx.emit("project_submitted", submitted(f"C-{parent_id}"), correlation_id=f"C-{parent_id}")
    assert visible(core, children) == 0
    assert handed == []
    # the writer is free again
    with core.transaction() as tx:
        tx.conn.execute(insert(children), {"parent_id": 1})
    assert visible(core, children) == 1


def test_a_batch_hands_its_events_to_the_relay_once_after_its_commit_in_order(core):
    handed = []
    core.committed.append(lambda records: handed.append([r.correlation_id for r in records]))
    codes = [f"2026-150621-{i + 1:05d}-0" for i in range(5)]
    with core.batch():
        for code in codes:
            with core.transaction() as tx:
                tx.emit("project_submitted", submitted(code), correlation_id=code)
            assert handed == []
    assert handed == [codes]


def test_batches_do_not_nest(core):
    with core.batch():
        with pytest.raises(RuntimeError, match="do not nest"):
            with core.batch():
                pass


def test_on_commit_callbacks_run_after_the_commit_that_carried_their_unit_and_not_after_a_failure(core):
    calls = []

    def unit(name, fail=False):
        with core.transaction() as tx:
            tx.conn.execute(insert(notes), {"text": name})
            tx.on_commit(lambda: calls.append((name, visible(core))))
            if fail:
                raise ValueError(name)

    unit("alone")
    assert calls == [("alone", 1)]  # committed before its callback ran
    with core.batch():
        unit("b1")
        with pytest.raises(ValueError):
            unit("b2", fail=True)
        unit("b3")
        assert calls == [("alone", 1)]  # nothing yet: the batch has not committed
    assert calls == [("alone", 1), ("b1", 3), ("b3", 3)]


def test_workers_reading_inside_their_batches_never_wait_for_the_pool(core):
    """As many workers as the pool has connections, each in a batch that reads with
    ``core.read()`` and then writes: on PostgreSQL each batch holds a connection, so a read
    on a second one would wait for the pool's timeout in every worker at once."""
    core.engine = make_engine(core.url, pool_size=2, max_overflow=0, pool_timeout=3)
    core.read_engine = core.engine.execution_options(readonly=True)

    def worker(name):
        with core.batch():
            with core.transaction() as tx:
                tx.conn.execute(insert(notes), {"text": name})
            eventlet.sleep(0.2)  # the other worker opens its batch (on SQLite it queues for the lock)
            with core.read() as conn:
                conn.execute(select(func.count()).select_from(notes)).scalar()
            with core.transaction() as tx:
                tx.conn.execute(insert(notes), {"text": f"{name} after its read"})

    threads = [eventlet.spawn(worker, name) for name in ("a", "b")]
    with eventlet.Timeout(20):
        for thread in threads:
            thread.wait()
    # through core.read(): on SQLite the pool's two connections are the writer's and a
    # reader's, kept open between uses
    with core.read() as conn:
        assert conn.execute(select(func.count()).select_from(notes)).scalar() == 4


def _rows(core, *texts):
    with core.transaction() as tx:
        for text in texts:
            tx.conn.execute(insert(notes), {"text": text})


def _note(conn, row, text):
    conn.execute(update(notes).where(notes.c.id == row).values(text=text))


@pytest.mark.parametrize("db_backend", ["postgresql"])  # SQLite's single writer takes no row locks
def test_a_batch_holding_locks_does_not_wait_for_another_lock_and_its_first_unit_does(core):
    _rows(core, "one", "two")
    holder_has_row_2, release = eventlet.Event(), eventlet.Event()

    def holder():  # another writer keeps row 2 locked until released
        with core.transaction() as tx:
            _note(tx.conn, 2, "holder")
            holder_has_row_2.send()
            release.wait()

    thread = eventlet.spawn(holder)
    holder_has_row_2.wait()
    try:
        with eventlet.Timeout(10), core.batch():  # waiting would last until the holder is released
            with core.transaction(event=envelope("e1")) as tx:
                _note(tx.conn, 1, "batch")
            with pytest.raises(LockBusy):  # the batch holds row 1: no waiting for row 2
                with core.transaction(event=envelope("e2")) as tx:
                    _note(tx.conn, 2, "batch")
    finally:
        release.send()
        thread.wait()
    with core.read() as conn:
        assert dict(conn.execute(select(notes.c.id, notes.c.text)).all()) == {1: "batch", 2: "holder"}
        # the busy unit's inbox row went with it: it runs again
        assert list(conn.execute(select(core.inbox.c.event_id)).scalars()) == ["e1"]

    # a batch's first unit holds nothing yet: it waits for the lock, as any transaction does
    holder_has_row_2.reset()
    release.reset()
    thread = eventlet.spawn(holder)
    holder_has_row_2.wait()
    eventlet.spawn_after(0.3, release.send)
    with core.batch():
        with core.transaction(event=envelope("e2")) as tx:
            _note(tx.conn, 2, "batch, after the holder")
    thread.wait()
    with core.read() as conn:
        assert conn.execute(select(notes.c.text).where(notes.c.id == 2)).scalar() == "batch, after the holder"


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_two_event_batches_locking_rows_in_opposite_orders_both_commit_every_event(core):
    """Batch a updates row 1 then row 2, batch b row 2 then row 1, each taking its second
    row only once the other holds its first: the cycle PostgreSQL would break after
    ``deadlock_timeout`` by failing one event with ``DeadlockDetected``. Each batch instead
    commits its first event and runs the second again in a new batch."""
    _rows(core, "one", "two")
    holds_first = {"a": eventlet.Event(), "b": eventlet.Event()}
    commits = []
    event.listen(core.engine, "commit", lambda conn: commits.append(1))

    def handler(_service, envelope):
        with core.transaction(event=envelope) as tx:
            _note(tx.conn, envelope["row"], envelope["event_id"])
        if envelope["first"]:
            holds_first[envelope["batch"]].send()
            holds_first["b" if envelope["batch"] == "a" else "a"].wait()

    def run(name, rows):
        batch = EventBatch(types.SimpleNamespace(database=lambda: core, expected_exceptions=()))
        for i, row in enumerate(rows):
            batch.items.append(_Item(dict(envelope(f"{name}{i}"), row=row, first=i == 0, batch=name), None))
        batch.run(None, handler)
        return batch

    threads = [eventlet.spawn(run, "a", (1, 2)), eventlet.spawn(run, "b", (2, 1))]
    with eventlet.Timeout(20):
        batches = [thread.wait() for thread in threads]
    for batch in batches:
        assert [exc_info for _item, exc_info in batch.outcomes()] == [None, None]
    # one batch or both committed their first event alone (the other's wait may end first)
    assert len(commits) >= 3
    with core.read() as conn:
        assert sorted(conn.execute(select(core.inbox.c.event_id)).scalars()) == ["a0", "a1", "b0", "b1"]
        # each row's second writer ran after the first one's commit
        assert dict(conn.execute(select(notes.c.id, notes.c.text)).all()) == {1: "b1", 2: "a1"}


# ---- trusting batches: no savepoint per unit, the whole batch again if a unit fails -------------

def _count_unit_savepoints(monkeypatch):
    import runtime.db
    taken = []
    begin = runtime.db._MEMBER.begin
    monkeypatch.setattr(runtime.db._MEMBER, "begin", lambda conn, params: (taken.append(1), begin(conn, params))[1])
    return taken


def test_a_trusting_batch_whose_units_succeed_takes_no_savepoint_per_unit_on_sqlite(core, monkeypatch):
    taken = _count_unit_savepoints(monkeypatch)
    with core.batch(trusting=True):
        for i in range(4):
            with core.transaction(event=envelope(f"e{i}")) as tx:
                tx.conn.execute(insert(notes), {"text": f"n{i}"})
        assert not core.batch_spoiled()
    assert visible(core) == 4
    assert len(taken) == (0 if core.is_sqlite else 4)  # PostgreSQL: every unit in its savepoint


def test_a_duplicate_in_a_trusting_batch_changes_nothing_and_does_not_spoil_it(core):
    with core.transaction(event=envelope("seen")) as tx:
        tx.conn.execute(insert(notes), {"text": "before"})
    with core.batch(trusting=True):
        with core.transaction(event=envelope("new")) as tx:
            tx.conn.execute(insert(notes), {"text": "new"})
        with pytest.raises(AlreadyHandled):
            with core.transaction(event=envelope("seen")) as tx:
                tx.conn.execute(insert(notes), {"text": "again"})
        assert not core.batch_spoiled()
    with core.read() as conn:
        assert sorted(conn.execute(select(notes.c.text)).scalars()) == ["before", "new"]


def test_a_unit_failing_after_its_writes_spoils_a_trusting_batch_which_then_keeps_nothing(core):
    handed, calls = [], []
    core.committed.append(handed.append)

    class Leave(Exception):
        pass

    with pytest.raises(Leave):
        with core.batch(trusting=True):
            with core.transaction(event=envelope("ok")) as tx:
                tx.conn.execute(insert(notes), {"text": "ok"})
                tx.emit("project_submitted", submitted("C-1"), correlation_id="C-1")
                tx.on_commit(lambda: calls.append("ok"))
            with pytest.raises(ValueError):
                with core.transaction(event=envelope("bad")) as tx:
                    tx.conn.execute(insert(notes), {"text": "half"})
                    raise ValueError("fails after a write")
            # SQLite: the failed unit's write is still in the transaction, so the batch must go;
            # PostgreSQL's units have their savepoints, and nothing is spoiled
            assert core.batch_spoiled() is core.is_sqlite
            raise Leave()
    assert visible(core) == 0 and handed == [] and calls == []
    with core.read() as conn:
        assert list(conn.execute(select(core.inbox.c.event_id)).scalars()) == []
    with core.transaction() as tx:  # the writer is free again
        tx.conn.execute(insert(notes), {"text": "after"})
    assert visible(core) == 1


def _event_batch(core, n):
    batch = EventBatch(types.SimpleNamespace(database=lambda: core, expected_exceptions=()))
    for i in range(n):
        batch.items.append(_Item(envelope(f"e{i}"), None))
    return batch


@pytest.mark.parametrize("how", ["raises", "swallows its unit's error"])
def test_an_event_batch_runs_again_with_savepoints_when_an_event_fails_in_its_trusting_run(core, how):
    runs, handed, callbacks = [], [], []
    core.committed.append(lambda records: handed.extend(r.correlation_id for r in records))

    def handler(_service, env):
        runs.append(env["event_id"])
        try:
            with core.transaction(event=env) as tx:
                tx.conn.execute(insert(notes), {"text": env["event_id"]})
                tx.emit("project_submitted", submitted(env["event_id"]), correlation_id=env["event_id"])
                tx.on_commit(lambda: callbacks.append(env["event_id"]))
                if env["event_id"] == "e2":
                    raise ValueError("e2 fails after its writes")
        except ValueError:
            if how == "raises":
                raise

    batch = _event_batch(core, 5)
    batch.run(None, handler)
    failed = [item.envelope["event_id"] for item, exc_info in batch.outcomes() if exc_info is not None]
    assert failed == (["e2"] if how == "raises" else [])
    kept = ["e0", "e1", "e3", "e4"]
    with core.read() as conn:
        assert sorted(conn.execute(select(notes.c.text)).scalars()) == kept
        assert sorted(conn.execute(select(core.inbox.c.event_id)).scalars()) == kept
        assert sorted(conn.execute(select(core.outbox.c.correlation_id)).scalars()) == kept
    # each kept event handed to the relay, and its callback run, once
    assert sorted(handed) == kept and sorted(callbacks) == kept
    if core.is_sqlite:  # the trusting run stopped at e2, then every event ran again
        assert runs == ["e0", "e1", "e2", "e0", "e1", "e2", "e3", "e4"]
    else:
        assert runs == ["e0", "e1", "e2", "e3", "e4"]


def test_an_event_batch_whose_events_all_succeed_runs_each_once(core, monkeypatch):
    taken = _count_unit_savepoints(monkeypatch)
    runs = []

    def handler(_service, env):
        runs.append(env["event_id"])
        with core.transaction(event=env) as tx:
            tx.conn.execute(insert(notes), {"text": env["event_id"]})

    batch = _event_batch(core, 6)
    batch.run(None, handler)
    assert [exc_info for _item, exc_info in batch.outcomes()] == [None] * 6
    assert runs == [f"e{i}" for i in range(6)] and visible(core) == 6
    assert len(taken) == (0 if core.is_sqlite else 6)
