"""Database access for a service: engine, transactions, outbox and inbox.

One transaction per use case. Events emitted inside the transaction are written to
the ``outbox`` table with the change; the relay publishes them after commit. An event
handler's transaction records the event id in ``inbox``, so a redelivered event is a
no-op (effectively-once processing).
"""
import collections
import contextlib
import datetime as dt
import json
import logging
import threading
import uuid

from sqlalchemy import (
    Column, DateTime, Index, Integer, MetaData, String, Table, Text, create_engine, event,
    insert, select,
)
from sqlalchemy.exc import IntegrityError

from contracts import dump
from contracts.events import EnvelopeSchema, schema_for

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


class AlreadyHandled(Exception):
    """The event id is in the inbox: the event was processed before."""


def make_engine(url, **kwargs):
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # writers take the write lock up front (no upgrade deadlocks); readers do not
            if conn.get_execution_options().get("readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class OutboxRecord(collections.namedtuple(
        "OutboxRecord", "event_id routing_key body event_type correlation_id")):
    """An event written to the outbox, as the relay publishes it."""


class Transaction:
    """What a use case gets: a connection in a transaction (``conn``) and ``emit``.
    Commits only on clean exit."""

    def __init__(self, core, conn):
        self.core = core
        self.conn = conn
        self.records = []

    @property
    def emitted(self):
        return len(self.records)

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
                              json.dumps(envelope, ensure_ascii=False, separators=(",", ":")), event_type,
                              correlation_id)
        self.conn.execute(self.core.outbox_insert, {
            "event_id": record.event_id,
            "event_type": event_type,
            "routing_key": record.routing_key,
            "correlation_id": correlation_id,
            "body": record.body,
            "created_at": utcnow(),
        })
        self.records.append(record)
        return envelope["event_id"]


class DatabaseCore:
    """Engine, connections and transactions; usable with or without nameko.

    Use cases work on SQLAlchemy Core connections, not ORM sessions: the services keep
    no mapped objects, and a Core statement executed on a connection costs about a third
    of the same statement through a session (bench/README.md, step 7)."""

    def __init__(self, url, metadata, service_name, migrations=None):
        self.url = url
        self.metadata = metadata
        self.service_name = service_name
        self.migrations = migrations
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        # SQLite allows one writer; a green lock keeps writers from blocking the hub
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self.read_engine = self.engine.execution_options(readonly=True)
        self.outbox = metadata.tables["outbox"]
        self.inbox = metadata.tables["inbox"]
        # built once: a statement built per call costs more than executing it
        self.outbox_insert = insert(self.outbox)
        self.inbox_insert = insert(self.inbox)
        self.after_commit = []  # callbacks after a commit that wrote events
        self.committed = []  # callbacks(records) with the events a commit wrote: the relay's fast path

    def migrate(self):
        if self.migrations:
            from .migrate import upgrade
            upgrade(self.engine, self.migrations)
        else:
            self.metadata.create_all(self.engine)

    @contextlib.contextmanager
    def transaction(self, event=None):
        """A unit of work. With ``event`` (an envelope dict) it is idempotent by event id."""
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        records = ()
        try:
            conn = self.engine.connect()
            try:
                with conn.begin():
                    if event is not None:
                        # the inbox row first: a duplicate fails here, before the handler
                        # runs (on PostgreSQL a concurrent duplicate waits for the first
                        # transaction and fails when it commits)
                        try:
                            conn.execute(self.inbox_insert, {
                                "event_id": event["event_id"],
                                "event_type": event["event_type"],
                                "source": event["source"],
                                "handled_at": utcnow(),
                            })
                        except IntegrityError:
                            raise AlreadyHandled(event["event_id"]) from None
                    tx = Transaction(self, conn)
                    yield tx
                    records = tx.records
            except IntegrityError:
                if event is not None and self._handled(event["event_id"]):
                    raise AlreadyHandled(event["event_id"]) from None
                raise
            finally:
                conn.close()
        finally:
            if lock is not None:
                lock.release()
        if records:
            for callback in self.committed:
                callback(records)
            for callback in self.after_commit:
                callback()

    def _handled(self, event_id):
        with self.engine.connect() as conn:
            return conn.execute(select(self.inbox.c.event_id).where(self.inbox.c.event_id == event_id)).first() is not None

    @contextlib.contextmanager
    def read(self):
        """A read-only connection (no write lock; WAL readers do not block)."""
        conn = self.read_engine.connect()
        try:
            yield conn
        finally:
            conn.close()  # rolls back the transaction the first statement began

    def ping(self):
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True

    def dispose(self):
        self.engine.dispose()
