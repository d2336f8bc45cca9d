"""A batch (``DatabaseCore.batch``): units of work run one after another in one
transaction, each in its own savepoint, committed once at the end. What the event
subscription relies on when it hands several events to one worker, on both backends."""
import eventlet
import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from runtime.db import AlreadyHandled, make_engine, runtime_tables
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
