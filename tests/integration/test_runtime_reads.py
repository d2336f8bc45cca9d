"""Reads (``DatabaseCore.read``). On SQLite a read's connection stays open for the next read,
its transaction rolled back: each read must still see every commit made before it began,
and a kept connection must never be one that failed or hold the pool from the writers."""
import eventlet
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from runtime.db import runtime_tables
from tests.support import databases
from tests.support.databases import migrated_core

md = MetaData()
runtime_tables(md)
notes = Table("notes", md, Column("id", Integer, primary_key=True), Column("text", String(50), nullable=False))


@pytest.fixture
def core(make_db_url):
    with migrated_core(make_db_url("reads"), md, "registry") as core:
        yield core


@pytest.fixture
def sqlite_core(tmp_path):
    url = databases.create("sqlite", "reads", tmp_path)
    with migrated_core(url, md, "registry") as core:
        yield core


def count(core):
    with core.read() as conn:
        return conn.execute(select(func.count()).select_from(notes)).scalar()


def write(core, text):
    with core.transaction() as tx:
        tx.conn.execute(insert(notes), {"text": text})


def test_each_read_sees_what_was_committed_before_it_began(core):
    assert count(core) == 0
    write(core, "a")
    assert count(core) == 1
    seen = []

    def long_read():
        with core.read() as conn:
            seen.append(conn.execute(select(func.count()).select_from(notes)).scalar())
            eventlet.sleep(0.2)  # a commit lands meanwhile
            seen.append(conn.execute(select(func.count()).select_from(notes)).scalar())

    reader = eventlet.spawn(long_read)
    eventlet.sleep(0.05)
    write(core, "b")
    reader.wait()
    # SQLite reads in one snapshot, PostgreSQL (read committed) sees each statement's latest
    assert seen == ([1, 1] if core.is_sqlite else [1, 2])
    assert count(core) == 2  # the next read, on the same connection, sees the commit
    write(core, "c")
    assert count(core) == 3


def test_sqlite_keeps_at_most_a_few_read_connections_open_and_writers_still_get_theirs(sqlite_core):
    core = sqlite_core
    pool = core.engine.pool
    release = eventlet.Event()

    def reader():
        with core.read() as conn:
            conn.execute(select(func.count()).select_from(notes)).scalar()
            release.wait()

    readers = [eventlet.spawn(reader) for _ in range(10)]
    eventlet.sleep(0.1)
    assert pool.checkedout() == 10
    release.send()
    for thread in readers:
        thread.wait()
    assert len(core._idle_readers) == core.IDLE_READERS
    assert pool.checkedout() == core.IDLE_READERS  # the rest went back to the pool
    before = core._idle_readers[:]
    assert count(core) == 0 and core._idle_readers == before  # a read takes a kept one and puts it back
    write(core, "a")
    assert count(core) == 1
    core.dispose()
    assert core._idle_readers == [] and pool.checkedout() == 0


def test_sqlite_a_read_that_fails_closes_its_connection_instead_of_keeping_it(sqlite_core):
    core = sqlite_core
    assert count(core) == 0
    kept = core._idle_readers[:]
    assert len(kept) == 1
    with pytest.raises(Exception, match="no such table"):
        with core.read() as conn:
            conn.exec_driver_sql("SELECT * FROM missing")
    assert core._idle_readers == [] and kept[0].closed
    assert core.engine.pool.checkedout() == 0
    write(core, "a")
    assert count(core) == 1
