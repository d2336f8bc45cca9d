"""Database access for a service: engine, transactions, outbox and inbox.

One transaction per use case. Events emitted inside the transaction are written to
the ``outbox`` table with the change; the relay publishes them after commit. An event
handler's transaction records the event id in ``inbox``, so a redelivered event is a
no-op (effectively-once processing).
"""
import collections
import contextlib
import contextvars
import datetime as dt
import logging
import threading
import time
import uuid

from sqlalchemy import (
    Column, DateTime, Index, Integer, MetaData, String, Table, Text, create_engine, event,
    insert, select, text,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from contracts import dump
from contracts.events import EnvelopeSchema, schema_for

from . import jsoncodec
from . import metrics as m
from .config import one_of
from .sql import Prepared

log = logging.getLogger(__name__)


def utcnow():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def runtime_tables(metadata: MetaData):
    """Add the ``outbox`` and ``inbox`` tables to a service's metadata."""
    outbox = Table(
        "outbox", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("event_type", String(64), nullable=False),
        Column("routing_key", String(128), nullable=False),
        Column("correlation_id", String(64), nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("published_at", DateTime, nullable=True),
        Index("ix_outbox_pending", "published_at", "id"),
        Index("ix_outbox_correlation", "correlation_id"),
    )
    inbox = Table(
        "inbox", metadata,
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(64), nullable=False),
        Column("source", String(32), nullable=False),
        Column("handled_at", DateTime, nullable=False),
    )
    return outbox, inbox


#: the batch (``DatabaseCore.batch``) open in this green thread: ``(core, _Held)``
_BATCH = contextvars.ContextVar("runtime_db_batch", default=None)
#: PostgreSQL: the transaction this green thread holds open (a unit's or a batch's): ``(core, _Held)``
_WRITING = contextvars.ContextVar("runtime_db_writing", default=None)


class AlreadyHandled(Exception):
    """The event id is in the inbox: the event was processed before."""


class LockBusy(Exception):
    """PostgreSQL: a unit of a batch waited for a row lock that another transaction holds,
    while the batch held locks of its own (:meth:`DatabaseCore.batch`). The unit was rolled
    back; whoever runs the batch commits what it holds and runs the unit again, first in a
    new batch, where it may wait as any transaction does."""


#: PostgreSQL: how long a unit of a batch may wait for a row lock once the batch holds locks
#: of its own. Two batches that each lock rows the other then needs would wait for each
#: other until PostgreSQL's ``deadlock_timeout`` (1 s) and lose one unit to
#: ``DeadlockDetected``; a batch that stops waiting first commits and frees its locks.
BATCH_LOCK_WAIT = "10ms"
_LIMIT_LOCK_WAIT = Prepared(text(f"SET LOCAL lock_timeout = '{BATCH_LOCK_WAIT}'"))
_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE lock_not_available: lock_timeout ran out


#: SQLite's ``PRAGMA synchronous`` (config ``SQLITE_SYNCHRONOUS``). ``FULL``, the default,
#: syncs the write-ahead log at every commit, so a commit that answered an RPC or preceded
#: an event's ack survives a power cut or an OS crash; each commit then waits for the disk
#: (about 0.2 ms on the benchmark machine's disk). ``NORMAL`` syncs only at checkpoints: the
#: last commits may roll back after a power cut (never after a process crash), while the
#: broker has already forgotten the events they acked. Only for data that can be rebuilt.
SQLITE_SYNC_MODES = ("FULL", "NORMAL")


def sqlite_synchronous(value=None):
    """The ``PRAGMA synchronous`` mode for ``value`` (any case); ``FULL`` when unset."""
    return one_of("SQLITE_SYNCHRONOUS", str(value or "FULL").upper(), SQLITE_SYNC_MODES)


def make_engine(url, synchronous=None, **kwargs):
    if url.startswith("sqlite"):
        synchronous = sqlite_synchronous(synchronous)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # writers take the write lock up front (no upgrade deadlocks); readers do not
            # on the DBAPI connection: through SQLAlchemy's execution pipeline the BEGIN cost
            # more than the read it opens (bench.micro, "a read")
            conn.connection.driver_connection.execute(
                "BEGIN" if conn.get_execution_options().get("readonly") else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class OutboxRecord(collections.namedtuple(
        "OutboxRecord", "event_id routing_key body event_type correlation_id")):
    """An event written to the outbox, as the relay publishes it: ``body`` is the
    envelope's JSON as UTF-8 bytes (the message body; the outbox row holds it as text)."""


class Transaction:
    """What a use case gets: a connection in a transaction (``conn``) and ``emit``.
    Commits only on clean exit."""

    def __init__(self, core, conn):
        self.core = core
        self.conn = conn
        self.records = []
        self.callbacks = []

    @property
    def emitted(self):
        return len(self.records)

    def on_commit(self, callback):
        """Call ``callback()`` once this unit's work is committed: right after its own
        commit, or after the commit of the group or batch that carried it. Not called if
        the unit or that commit fails."""
        self.callbacks.append(callback)

    def emit(self, event_type, payload, *, correlation_id, routing_key=None):
        """Validate ``payload`` against its contract and write it to the outbox."""
        schema = schema_for(event_type)
        data = dump(schema, payload)
        envelope = dump(EnvelopeSchema, {
            "event_id": uuid.uuid4().hex,
            "event_type": event_type,
            "source": self.core.service_name,
            "occurred_at": utcnow().isoformat() + "Z",
            "correlation_id": correlation_id,
            "version": schema.VERSION,
            "payload": data,
        })
        record = OutboxRecord(envelope["event_id"], routing_key or event_type,
                              jsoncodec.dumpb(envelope), event_type,
                              correlation_id)
        self.core.outbox_insert.run(self.conn, {
            "event_id": record.event_id,
            "event_type": event_type,
            "routing_key": record.routing_key,
            "correlation_id": correlation_id,
            "body": record.body.decode("utf-8"),
            "created_at": utcnow(),
        })
        self.records.append(record)
        return envelope["event_id"]


class _Savepoint:
    """A named savepoint's three statements, run on the cursor (``runtime.sql``): a
    savepoint and its release cost 15 µs through SQLAlchemy's ``exec_driver_sql``, 5 µs
    so (``python -m bench.micro``), and an event in a batch runs two pairs; SQLAlchemy's
    ``begin_nested()`` costs four times ``exec_driver_sql`` (bench/README.md, step 10).
    Units of work follow each other, never nest at one level: one name per level serves."""

    def __init__(self, name):
        self.begin = Prepared(text(f"SAVEPOINT {name}")).run
        self.release = Prepared(text(f"RELEASE SAVEPOINT {name}")).run
        self.rollback = Prepared(text(f"ROLLBACK TO SAVEPOINT {name}")).run

    def undo(self, conn):
        """Roll back to the savepoint and drop it."""
        self.rollback(conn, {})
        self.release(conn, {})

    @contextlib.contextmanager
    def within(self, held):
        """The held transaction's connection, in this savepoint: released on success,
        rolled back on error. A failed rollback breaks the holder's transaction."""
        conn = held.conn
        if held.broken is not None:
            raise held.broken
        self.begin(conn, {})
        try:
            yield conn
            self.release(conn, {})
        except BaseException:
            try:
                self.undo(conn)
            except Exception as exc:  # the transaction is gone (e.g. a lost connection)
                held.broken = held.broken or exc
            raise


_UNIT = _Savepoint("unit")  # a member of a group (GroupCommit)
_MEMBER = _Savepoint("member")  # a unit inside a batch
_READ = _Savepoint("read")  # a read inside a held transaction (PostgreSQL, DatabaseCore.read)


class _Group:
    """One SQLite transaction shared by the units of work that queued behind each other."""

    def __init__(self, conn):
        self.conn = conn
        self.members = 0
        self.units = 0
        self.records = []
        self.callbacks = []
        self.done = threading.Event()
        self.error = None


class _Held:
    """What a writer holds while it works: the connection, what its units leave for after
    the commit (events, callbacks), how many units it ran, and the error that broke its
    transaction, if one did."""

    __slots__ = ("conn", "records", "callbacks", "units", "broken", "waits_limited", "trusting", "spoiled")

    def __init__(self, conn):
        self.conn = conn
        self.records = []
        self.callbacks = []
        self.units = 0
        self.broken = None
        self.waits_limited = False  # PostgreSQL: lock_timeout set for the rest of the batch
        self.trusting = False  # a batch whose units run without a savepoint each (DatabaseCore.batch)
        self.spoiled = False  # a unit of a trusting batch failed after it began writing

    def keep(self, tx):
        """A unit of work succeeded: its events and callbacks go with this commit."""
        self.records.extend(tx.records)
        self.callbacks.extend(tx.callbacks)
        self.units += 1


class GroupCommit:
    """SQLite's writers, one at a time, and one commit for a queue of them (group commit).

    SQLite has a single writer, so units of work take a green lock in turn. With
    ``synchronous=FULL`` each commit waits for the disk, and under load most of a writer's
    time would be that wait. Instead, a unit that finishes while others wait for the lock
    leaves the transaction open for them: each unit runs in its own savepoint (a failing
    unit rolls back alone), the last unit of the queue — or the ``MAX_MEMBERS``-th —
    commits, and every unit of the group returns only after that commit, with its error
    if the commit failed. So a caller is answered, and an event acked, only once its work
    is on disk, as before; only the number of commits falls. The relay gets the group's
    events after the commit, in commit order. A batch (:meth:`DatabaseCore.batch`) is one
    member of a group, holding the lock for all of its units.
    """

    MAX_MEMBERS = 32

    def __init__(self, core):
        self.core = core
        self.lock = threading.Lock()
        self.waiting = 0
        self.group = None
        # the writer's connection, kept open between groups: taking one from the pool and
        # closing it cost as much as a small unit's statements
        self.idle = None

    @contextlib.contextmanager
    def hold(self):
        """The write lock and a savepoint in the open group's transaction; on exit, once
        the group committed, returns (or raises the error that failed the group)."""
        self._acquire()
        group = self.group
        if group is None:
            conn, self.idle = self.idle or self.core.engine.connect(), None
            try:
                conn.begin()
            except BaseException:
                conn.invalidate()
                conn.close()
                self.lock.release()
                raise
            group = self.group = _Group(conn)
        group.members += 1
        conn = group.conn
        _UNIT.begin(conn, {})
        held = _Held(conn)
        try:
            yield held
            if held.broken is not None:
                raise held.broken
            _UNIT.release(conn, {})
        except BaseException:
            try:
                _UNIT.undo(conn)
            except Exception as exc:  # the transaction is gone (e.g. disk I/O): the group fails
                group.error = group.error or exc
            self._finish(group)
            raise
        group.records.extend(held.records)
        group.callbacks.extend(held.callbacks)
        group.units += held.units
        self._finish(group)
        if group.error is not None:
            raise group.error

    def close(self):
        """Close the connection kept for the next group."""
        idle, self.idle = self.idle, None
        if idle is not None:
            idle.close()

    def _acquire(self):
        self.waiting += 1
        try:
            self.lock.acquire()
        except BaseException:
            # killed while queueing: a group left open for this unit must still commit
            self.waiting -= 1
            if self.waiting == 0 and self.group is not None and self.lock.acquire(blocking=False):
                self._commit()
            raise
        self.waiting -= 1

    def _finish(self, group):
        """Hand the open transaction to the next writer, or commit it; either way, return
        once the group's commit is done."""
        try:
            # let workers spawned meanwhile reach the lock and queue behind this unit
            time.sleep(0)
        except BaseException:
            self._commit()
            raise
        if group.error is None and self.waiting and group.members < self.MAX_MEMBERS:
            self.lock.release()
            group.done.wait()
            return
        self._commit()

    def _commit(self):
        """Commit (or, after a broken unit, roll back) the open group; holds the lock."""
        group, self.group = self.group, None
        try:
            if group.error is None:
                started = time.perf_counter()
                group.conn.commit()
                self.core._committed_units(time.perf_counter() - started, group.units)
        except BaseException as exc:
            group.error = exc
        try:
            if group.error is None:
                self.idle = group.conn  # the next group's
            else:
                # a failed COMMIT can leave SQLite's transaction open on the connection;
                # discarding the DBAPI connection rolls it back instead of pooling it
                group.conn.invalidate()
                group.conn.close()
        finally:
            self.lock.release()
            group.done.set()
        if group.error is None:
            self.core._after_commit(group.records, group.callbacks)


class DatabaseCore:
    """Engine, connections and transactions; usable with or without nameko.

    Use cases work on SQLAlchemy Core connections, not ORM sessions: the services keep
    no mapped objects, and a Core statement executed on a connection costs about a third
    of the same statement through a session (bench/README.md, step 7)."""

    IDLE_READERS = 4  # SQLite: read connections kept open between reads (of the pool's 15)

    def __init__(self, url, metadata, service_name, migrations=None, synchronous=None):
        self.url = url
        self.metadata = metadata
        self.service_name = service_name
        self.migrations = migrations
        self.engine = make_engine(url, synchronous=synchronous)
        self.is_sqlite = url.startswith("sqlite")
        # SQLite allows one writer: units of work queue in this process and share commits
        self._writers = GroupCommit(self) if self.is_sqlite else None
        self.read_engine = self.engine.execution_options(readonly=True)
        # SQLite: read connections kept open between reads (PostgreSQL's pool pings each
        # connection it hands out, which a kept connection would skip)
        self._idle_readers = [] if self.is_sqlite else None
        self.outbox = metadata.tables["outbox"]
        self.inbox = metadata.tables["inbox"]
        # built once: a statement built per call costs more than executing it
        self.outbox_insert = Prepared(insert(self.outbox))
        self.inbox_insert = Prepared(insert(self.inbox))
        self.committed = []  # callbacks(records) with the events a commit wrote: the relay's fast path
        self._commit_seconds = m.DB_COMMIT_DURATION.labels(service_name)
        self._units_per_commit = m.DB_UNITS_PER_COMMIT.labels(service_name)

    def migrate(self):
        if self.migrations:
            from .migrate import upgrade
            upgrade(self.engine, self.migrations)
        else:
            self.metadata.create_all(self.engine)

    @contextlib.contextmanager
    def transaction(self, event=None):
        """A unit of work. With ``event`` (an envelope dict) it is idempotent by event id.
        It returns only once its work is committed (on SQLite, with the group it joined);
        inside a :meth:`batch`, once the batch holds it, committed with the batch."""
        batch = _BATCH.get()
        if batch is not None and batch[0] is self:
            with self._member(batch[1], event) as tx:
                yield tx
            return
        try:
            with self._writer() as held:
                tx = self._begin_unit(held.conn, event)
                yield tx
                held.keep(tx)
        except IntegrityError:
            # PostgreSQL: a concurrent duplicate waits for the first transaction and fails
            # when that one commits (SQLite's single writer finds it at the inbox insert)
            if self._writers is None and event is not None and self._handled(event["event_id"]):
                raise AlreadyHandled(event["event_id"]) from None
            raise

    def _writer(self):
        """Where a unit of work or a batch writes: on SQLite a member of the open group
        (``GroupCommit.hold``), on PostgreSQL a transaction of its own."""
        return self._writers.hold() if self._writers is not None else self._own()

    @contextlib.contextmanager
    def batch(self, trusting=False):
        """One transaction for the units of work run inside it, in this green thread.

        Each ``transaction()`` inside runs in its own savepoint: a failing unit rolls back
        alone and raises as usual, and a unit that succeeded returns at once, before the
        commit. The batch commits when it ends (on SQLite as one member of a group); only
        then are its events handed to the relay. If the commit fails, the batch raises and
        none of its units' work is kept. So whoever batches units (the event subscription,
        ``runtime.messaging``) acts on their outcome only after the batch returned: acks
        after the commit, as with single units. Code after a unit's ``transaction()``
        runs before the commit; its effects on other services go through ``tx.emit``.

        ``trusting`` (SQLite; ignored on PostgreSQL): the units run without a savepoint
        each, which saves a savepoint and its release per unit when every unit succeeds, as
        units almost always do. A duplicate still fails at its inbox row and changes nothing
        (SQLite undoes the one failed statement). A unit that fails otherwise leaves its
        writes in the transaction: it raises as usual and marks the batch spoiled
        (:meth:`batch_spoiled`). Whoever runs a trusting batch checks that after each unit,
        and on a spoiled batch leaves it by raising, which rolls the whole batch back (none
        of its units' work, events or callbacks is kept), and runs its units again in an
        ordinary batch (``runtime.messaging.EventBatch``)."""
        if _BATCH.get() is not None:
            raise RuntimeError("batches do not nest")
        with self._writer() as held:
            held.trusting = trusting and self._writers is not None
            token = _BATCH.set((self, held))
            try:
                yield
            finally:
                _BATCH.reset(token)

    @contextlib.contextmanager
    def _own(self):
        """A transaction on a connection of its own (PostgreSQL), committed on clean exit."""
        conn = self.engine.connect()
        try:
            trans = conn.begin()
            held = _Held(conn)
            token = _WRITING.set((self, held))
            try:
                yield held
                if held.broken is not None:
                    raise held.broken
            except BaseException:
                trans.rollback()
                raise
            finally:
                _WRITING.reset(token)
            started = time.perf_counter()
            trans.commit()
            self._committed_units(time.perf_counter() - started, held.units)
        finally:
            conn.close()
        self._after_commit(held.records, held.callbacks)

    def batch_spoiled(self):
        """Whether a unit of this green thread's trusting batch failed after it began writing
        (:meth:`batch`): the batch must then be rolled back whole."""
        batch = _BATCH.get()
        return batch is not None and batch[0] is self and batch[1].spoiled

    @contextlib.contextmanager
    def _member(self, held, event):
        """A unit inside a batch: a savepoint in the batch's transaction, or in a trusting
        batch none (:meth:`batch`).

        On PostgreSQL, once the batch holds the locks of a unit that succeeded, a later
        unit that waits longer than ``BATCH_LOCK_WAIT`` for a row lock is rolled back and
        raises :class:`LockBusy`: holding locks while waiting for another's is how two
        batches deadlock. (SQLite's single writer takes no row locks.)"""
        if held.trusting:
            try:
                tx = self._begin_unit(held.conn, event)
            except AlreadyHandled:
                raise  # its inbox row failed alone: the batch has nothing of it
            except BaseException:
                held.spoiled = True
                raise
            try:
                yield tx
            except BaseException:
                held.spoiled = True
                raise
            held.keep(tx)
            return
        if held.units and self._writers is None and not held.waits_limited:
            # outside the unit's savepoint: a SET LOCAL in a savepoint that rolls back is undone
            _LIMIT_LOCK_WAIT.run(held.conn, {})
            held.waits_limited = True
        try:
            with _MEMBER.within(held) as conn:
                tx = self._begin_unit(conn, event)
                yield tx
        except OperationalError as exc:
            if held.waits_limited and getattr(exc.orig, "pgcode", None) == _LOCK_NOT_AVAILABLE:
                raise LockBusy(str(exc.orig).strip()) from exc
            raise
        held.keep(tx)

    def _begin_unit(self, conn, event):
        if event is not None:
            # the inbox row first: a duplicate fails here, before the handler runs
            try:
                self.inbox_insert.run(conn, {
                    "event_id": event["event_id"],
                    "event_type": event["event_type"],
                    "source": event["source"],
                    "handled_at": utcnow(),
                })
            except IntegrityError:
                raise AlreadyHandled(event["event_id"]) from None
        return Transaction(self, conn)

    def _committed_units(self, seconds, units):
        self._commit_seconds.observe(seconds)
        self._units_per_commit.observe(units)

    def _after_commit(self, records, callbacks=()):
        if records:
            for callback in self.committed:
                callback(records)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # the work is committed: a failing callback must not undo its answer
                log.exception("after-commit callback failed")

    def _handled(self, event_id):
        with self.read_engine.connect() as conn:
            return conn.execute(select(self.inbox.c.event_id).where(self.inbox.c.event_id == event_id)).first() is not None

    @contextlib.contextmanager
    def read(self):
        """A read-only connection (no write lock; WAL readers do not block).

        On SQLite the connection stays open after the read, its transaction rolled back, for
        the next read (at most ``IDLE_READERS`` wait so): taking a connection from the pool
        and closing it cost twice the read itself (``python -m bench.micro``, "a read").

        On PostgreSQL, a read inside a transaction this green thread holds on this database
        (a unit's or a batch's, e.g. an event handler's read in its batch) runs on that
        transaction's connection, in a savepoint. A second connection per worker could
        exhaust the pool: with as many workers as connections, each holding one and waiting
        for another, they would all wait for the pool's timeout, a wait no database can see.
        On SQLite the group's single writer never waits for a reader. Such a read therefore
        sees the transaction's uncommitted writes on PostgreSQL and not on SQLite: code that
        needs its own writes reads them through ``tx.conn``."""
        writing = _WRITING.get()
        if writing is not None and writing[0] is self:
            with _READ.within(writing[1]) as conn:
                yield conn
            return
        idle = self._idle_readers  # None on PostgreSQL
        conn = idle.pop() if idle else self.read_engine.connect()
        try:
            yield conn
            if idle is not None:
                conn.rollback()  # ends the read's transaction: the next read sees what was committed since
        except BaseException:
            conn.close()
            raise
        if idle is not None and len(idle) < self.IDLE_READERS and not conn.invalidated:
            idle.append(conn)
        else:
            conn.close()  # rolls back the transaction the first statement began

    def ping(self):
        # on the read engine: on SQLite a write connection would BEGIN IMMEDIATE and wait, in
        # C and so holding the whole process, for a writer of this process to finish
        with self.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True

    def dispose(self):
        while self._idle_readers:
            self._idle_readers.pop().close()
        if self._writers is not None:
            self._writers.close()
        self.engine.dispose()
