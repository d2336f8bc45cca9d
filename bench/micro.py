"""Micro-benchmarks behind several of the optimisations in bench/README.md, side by side
in one process (no broker, a temporary SQLite file):

* one use case's database work — read a 3 KB row for update, write it back, in one
  transaction — four ways: an ORM session with statements built per call (what the
  services did), a Core connection with statements built per call, a Core connection
  with statements built once (what they do now), and raw ``sqlite3`` (the floor);
* a 1.9 KB application through its contract: load, dump, and dump with the check
  (``CONTRACT_CHECKS``), each through ``contracts`` (its fast path, step 11) and by
  marshmallow alone; the dump with the check also as two passes (before step 18);
* a case-shaped document copied by ``copy.deepcopy`` and by review's ``_copy`` (step 11);
* review's saga taking one project of the approval run from submission to approval, each
  step on the case decoded from its JSON as the service reads it, with the case copied at
  every step and taken as it is (step 18);
* one statement run by SQLAlchemy's Core execute and by ``runtime.sql.Prepared`` (step 12),
  and a savepoint with its release run both ways (step 13);
* a read: a pooled connection, its BEGIN, one select by key and the close, with the BEGIN
  run through SQLAlchemy and on the DBAPI connection (step 14);
* JSON: a case, an event's body and a pack of events encoded and decoded by the json
  module, by kombu and by ``runtime.jsoncodec`` (kombu's decoding before step 13, the json
  module's before step 15, from the text py-amqp made of the body before step 28);
* a small unit of work (one inbox row) and its commit: committed alone with
  ``synchronous=FULL`` and with ``NORMAL``, and 16 units sharing one ``FULL`` commit, each
  in a SQLAlchemy savepoint (``begin_nested``) or in a plain SQL ``SAVEPOINT`` (what
  ``runtime.db.GroupCommit`` does).

    .venv/bin/python -m bench.micro            # ~20 s
"""
import json
import os
import shutil
import statistics
import tempfile
import time

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, bindparam, insert, select, text, update
from sqlalchemy.orm import sessionmaker

from runtime.db import make_engine

ROWS = 1000
BODY = "y" * 3000


def _per_call_us(fn, n, rounds=5):
    """Median over ``rounds`` of the mean time per call of ``n`` calls, in µs."""
    for i in range(min(n, 200)):
        fn(i)
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(n):
            fn(i)
        out.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(out)


def sql_styles(n=2000):
    metadata = MetaData()
    table = Table("cases", metadata, Column("code", String, primary_key=True), Column("state", String),
                  Column("body", Text), Column("n", Integer))
    directory = tempfile.mkdtemp(prefix="govpm-micro-")
    path = os.path.join(directory, "micro.db")
    # NORMAL: what is compared here is the statements' cost, not the disk's
    engine = make_engine(f"sqlite:///{path}", synchronous="NORMAL")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"code": f"C{i}", "state": "a", "body": "x" * 3000, "n": i} for i in range(ROWS)])
    sessions = sessionmaker(engine)

    def orm_built_per_call(i):
        session = sessions()
        with session.begin():
            session.execute(select(table.c.body).where(table.c.code == f"C{i % ROWS}").with_for_update()).scalar()
            session.execute(update(table).where(table.c.code == f"C{i % ROWS}").values(state="b", body=BODY, n=i))
        session.close()

    def core_built_per_call(i):
        with engine.begin() as conn:
            conn.execute(select(table.c.body).where(table.c.code == f"C{i % ROWS}").with_for_update()).scalar()
            conn.execute(update(table).where(table.c.code == f"C{i % ROWS}").values(state="b", body=BODY, n=i))

    read = select(table.c.body).where(table.c.code == bindparam("code")).with_for_update()
    write = update(table).where(table.c.code == bindparam("b_code"))

    def core_prebuilt(i):
        with engine.begin() as conn:
            conn.execute(read, {"code": f"C{i % ROWS}"}).scalar()
            conn.execute(write, {"b_code": f"C{i % ROWS}", "state": "b", "body": BODY, "n": i})

    raw = engine.raw_connection()

    def raw_sqlite3(i):
        cur = raw.cursor()
        cur.execute("BEGIN IMMEDIATE")
        cur.execute("SELECT body FROM cases WHERE code = ?", (f"C{i % ROWS}",)).fetchone()
        cur.execute("UPDATE cases SET state = ?, body = ?, n = ? WHERE code = ?", ("b", BODY, i, f"C{i % ROWS}"))
        cur.execute("COMMIT")

    try:
        return [(name, _per_call_us(fn, n)) for name, fn in (
            ("ORM session, statements built per call", orm_built_per_call),
            ("Core connection, statements built per call", core_built_per_call),
            ("Core connection, statements built once", core_prebuilt),
            ("raw sqlite3 (floor)", raw_sqlite3),
        )]
    finally:
        raw.close()
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def contract_costs(n=1000):
    from bench.approvals import application
    from contracts import dump, load
    from contracts.application import ApplicationSchema
    from contracts.base import schema_instance
    from contracts.fastpath import dumper, loader
    app = load(ApplicationSchema, application(1))
    schema = schema_instance(ApplicationSchema)

    def marshmallow_dump_and_check(_):
        data = schema.dump(app)
        assert not schema.validate(data)

    def two_passes(_):  # contracts.dump with the check, steps 11 to 17: the fast dump, then the check of its copy
        data = dumper(schema)(app)
        loader(schema)(data)

    size = len(json.dumps(app, ensure_ascii=False).encode())
    return size, [(name, _per_call_us(fn, n)) for name, fn in (
        ("load (what every receiver does)", lambda i: load(ApplicationSchema, app)),
        ("  marshmallow alone (before step 11)", lambda i: schema.load(app)),
        ("dump (CONTRACT_CHECKS=events, an RPC result)", lambda i: dump(ApplicationSchema, app, check=False)),
        ("  marshmallow alone", lambda i: schema.dump(app)),
        ("dump and check (an event payload; strict: a result)", lambda i: dump(ApplicationSchema, app)),
        ("  fast dump, then the check of its copy (before step 18)", two_passes),
        ("  marshmallow alone", marshmallow_dump_and_check),
        ("json.dumps (for scale)", lambda i: json.dumps(app, ensure_ascii=False)),
    )]


def _case():
    """A case-shaped document: 6 stages, 18 opinions, 15 history entries."""
    opinion = {"request_id": "5f0c" * 8, "agency": "cyberspace", "status": "issued", "verdict": "approve",
               "conditions": ["等保三级测评"] * 3, "findings": [{"rule": "crypto_plan", "cite": "sichuan art. 22"}]}
    return {"code": "2026-510104-00001-X", "revision": 1, "state": "in_review",
            "stages": [{"key": f"stage_{i}", "status": "open", "cite": "jinjiang art. 8", "panel": None,
                        "decision": None, "opinions": [dict(opinion) for _ in range(3)]} for i in range(6)],
            "history": [{"on": "2026-11-27", "event": "stage_passed", "zh": "“技术审查”环节通过",
                         "en": "stage technical passed", "cite": "jinjiang art. 8"} for _ in range(15)]}


def case_copies(n=2000):
    """review's saga copies the case at every step (services/review/domain.py ``_own``)."""
    import copy
    from services.review.domain import _copy
    case = _case()
    size = len(json.dumps(case, ensure_ascii=False).encode())
    return size, [(name, _per_call_us(fn, n)) for name, fn in (
        ("copy.deepcopy (before step 11)", lambda i: copy.deepcopy(case)),
        ("a copy of JSON-shaped data (the saga's _copy)", lambda i: _copy(case)),
    )]


def saga_project(n=200):
    """review's saga, one project of the approval run (dalate, every signature automatic)
    from submission to approval: every step gets the case decoded from its JSON, as the
    service reads it from its row, and the opinions and documents arrive as in the run
    (``bench.instructions.drive_saga``). The saga copies each case it is given, or takes it
    (``takes_cases``, step 18)."""
    import random
    from bench.instructions import application, auto_profile, drive_saga, today
    from services.review.domain import Saga

    profile, app = auto_profile(), application()

    def run(takes_cases):
        return drive_saga(Saga(profile, today(), experts=[], rng=random.Random(1), next_number=lambda year: 1,
                               takes_cases=takes_cases), app)

    steps, _ = run(False)
    if run(True)[0] != steps:
        raise AssertionError("the saga took another path when it took its cases")
    return steps, [(name, _per_call_us(lambda i: run(takes), n)) for name, takes in (
        ("the case copied at each step (before step 18)", False),
        ("the case taken as it is (takes_cases)", True),
    )]


def statement_paths(n=5000):
    """One statement inside an open transaction (SQLite; nothing is committed here):
    SQLAlchemy's Core execute of a prebuilt statement against runtime.sql.Prepared (step 12)."""
    from sqlalchemy import bindparam
    from runtime.db import runtime_tables, utcnow
    from runtime.sql import Prepared
    directory = tempfile.mkdtemp(prefix="govpm-micro-")
    metadata = MetaData()
    _, inbox = runtime_tables(metadata)
    engine = make_engine(f"sqlite:///{directory}/statements.db", synchronous="NORMAL")
    metadata.create_all(engine)
    counter = iter(range(10 ** 9))

    def row(_):
        return {"event_id": f"e{next(counter)}", "event_type": "x", "source": "review", "handled_at": utcnow()}

    core_insert, core_select = insert(inbox), select(inbox).where(inbox.c.event_id == bindparam("event_id"))
    fast_insert, fast_select = Prepared(core_insert), Prepared(core_select)
    savepoint, release = Prepared(text("SAVEPOINT s")).run, Prepared(text("RELEASE SAVEPOINT s")).run
    conn = engine.connect()
    conn.begin()
    try:
        fast_insert.run(conn, {"event_id": "probe", "event_type": "x", "source": "s", "handled_at": utcnow()})
        return [(name, _per_call_us(fn, n)) for name, fn in (
            ("insert, Core execute", lambda i: conn.execute(core_insert, row(i))),
            ("insert, runtime.sql.Prepared", lambda i: fast_insert.run(conn, row(i))),
            ("select by key, Core execute", lambda i: conn.execute(core_select, {"event_id": "probe"}).first()),
            ("select by key, runtime.sql.Prepared", lambda i: fast_select.first(conn, {"event_id": "probe"})),
            ("savepoint + release, exec_driver_sql", lambda i: (conn.exec_driver_sql("SAVEPOINT s"),
                                                               conn.exec_driver_sql("RELEASE SAVEPOINT s"))),
            ("savepoint + release, runtime.sql.Prepared", lambda i: (savepoint(conn, {}), release(conn, {}))),
        )]
    finally:
        conn.close()
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def read_paths(n=5000):
    """A read as the services read (one select by key through ``Prepared``): on a pooled
    connection, BEGIN, close, with the BEGIN run by SQLAlchemy's ``exec_driver_sql``
    (before step 14) and on the DBAPI connection (steps 14–15); ``DatabaseCore.read`` now
    (step 16: on SQLite the connection stays open between reads, rolled back); against raw
    ``sqlite3`` on one open connection (the floor)."""
    import sqlite3
    from sqlalchemy import create_engine, event
    from runtime.db import DatabaseCore, runtime_tables, utcnow
    from runtime.sql import Prepared
    directory = tempfile.mkdtemp(prefix="govpm-micro-")
    metadata = MetaData()
    _, inbox = runtime_tables(metadata)
    url = f"sqlite:///{directory}/reads.db"
    now = make_engine(url, synchronous="NORMAL")
    metadata.create_all(now)
    with now.begin() as conn:
        conn.execute(insert(inbox).values(event_id="probe", event_type="x", source="s", handled_at=utcnow()))
    before = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(before, "connect")
    def _autocommit(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(before, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")

    by_key = Prepared(select(inbox).where(inbox.c.event_id == bindparam("event_id")))
    raw = sqlite3.connect(f"{directory}/reads.db", isolation_level=None)
    raw_sql = f"SELECT * FROM {inbox.name} WHERE event_id = ?"

    def read(engine):
        engine = engine.execution_options(readonly=True)

        def run(_):
            with engine.connect() as conn:
                return by_key.first(conn, {"event_id": "probe"})
        return run

    def floor(_):
        raw.execute("BEGIN")
        row = raw.execute(raw_sql, ("probe",)).fetchone()
        raw.rollback()
        return row

    core = DatabaseCore(url, metadata, "micro", synchronous="NORMAL")

    def kept(_):
        with core.read() as conn:
            return by_key.first(conn, {"event_id": "probe"})

    try:
        return [(name, _per_call_us(fn, n)) for name, fn in (
            ("pooled, BEGIN by exec_driver_sql (before step 14)", read(before)),
            ("pooled, BEGIN on the DBAPI connection (steps 14-15)", read(now)),
            ("kept between reads (runtime.db, step 16)", kept),
            ("raw sqlite3, one open connection", floor),
        )]
    finally:
        core.dispose()
        raw.close()
        now.dispose()
        before.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def json_costs(n=3000):
    """A case (what review stores and answers) and an event's body, encoded and decoded by
    the json module, by kombu (what nameko does for RPC; step 13 for events) and by
    ``runtime.jsoncodec`` (orjson, step 15)."""
    import warnings
    import kombu.serialization
    from kombu.utils.json import loads as kombu_loads
    from runtime import jsoncodec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bench.services imports nameko, and so eventlet
        from bench.run import Bench
    out = []
    event = Bench.event_envelope()
    for label, doc in (("a case", _case()), ("an event", event), ("a pack of seven events", [event] * 7)):
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        stored = body.decode("utf-8")  # a Text column gives str
        out.append((f"{label} ({len(body):,} bytes)", [(name, _per_call_us(fn, n)) for name, fn in (
            ("encode: json.dumps", lambda _: json.dumps(doc, ensure_ascii=False, separators=(",", ":"))),
            ("encode: kombu (an RPC reply, before step 15)",
             lambda _: kombu.serialization.dumps({"result": doc, "error": None}, "json")),
            ("encode: runtime.jsoncodec", lambda _: jsoncodec.dumpb(doc)),
            ("decode: json.loads", lambda _: json.loads(body)),
            ("decode: kombu (before step 13)", lambda _: kombu_loads(body)),
            ("decode: runtime.jsoncodec", lambda _: jsoncodec.loads(body)),
            # a message's body as py-amqp made it text before step 28, then decoded
            ("decode: py-amqp's text, runtime.jsoncodec", lambda _: jsoncodec.loads(body.decode("utf-8"))),
            ("decode: json.loads, from text (a stored row)", lambda _: json.loads(stored)),
            ("decode: runtime.jsoncodec, from text", lambda _: jsoncodec.loads(stored)),
        )]))
    return out


def commit_styles(n=1600, group=16):
    """µs per unit of work: one inbox row, committed alone or ``group`` to a commit (a
    group the warm-up or a round leaves open is carried on by the next calls)."""
    from runtime.db import runtime_tables, utcnow
    directory = tempfile.mkdtemp(prefix="govpm-micro-")
    engines = []
    counter = iter(range(10 ** 9))

    def engine_for(sync):
        metadata = MetaData()
        _, inbox = runtime_tables(metadata)
        engine = make_engine(f"sqlite:///{directory}/{sync}-{len(engines)}.db", synchronous=sync)
        metadata.create_all(engine)
        engines.append(engine)
        return engine, insert(inbox)

    def row():
        return {"event_id": f"e{next(counter)}", "event_type": "x", "source": "review", "handled_at": utcnow()}

    def alone(sync):
        engine, ins = engine_for(sync)

        def unit(i):
            with engine.begin() as conn:
                conn.execute(ins, row())
        return unit

    def grouped(savepoint):
        engine, ins = engine_for("FULL")
        state = {"k": 0}

        def unit(_):
            i = state["k"]
            state["k"] += 1
            if i % group == 0:
                state["conn"] = conn = engine.connect()
                conn.begin()
            conn = state["conn"]
            if savepoint == "sqlalchemy":
                sp = conn.begin_nested()
                conn.execute(ins, row())
                sp.commit()
            else:
                conn.exec_driver_sql("SAVEPOINT unit")
                conn.execute(ins, row())
                conn.exec_driver_sql("RELEASE unit")
            if i % group == group - 1:
                conn.commit()
                conn.close()
        return unit

    try:
        return [(name, _per_call_us(fn, n)) for name, fn in (
            ("alone, synchronous=FULL", alone("FULL")),
            ("alone, synchronous=NORMAL", alone("NORMAL")),
            (f"{group} to a FULL commit, SQLAlchemy savepoints", grouped("sqlalchemy")),
            (f"{group} to a FULL commit, SQL savepoints", grouped("sql")),
        )]
    finally:
        for engine in engines:
            engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def _section(title, rows):
    print(title)
    for name, us in rows:
        print(f"  {name:<52} {us:8.0f} µs")


def main():
    print("one use case's database work: SELECT … FOR UPDATE of a 3 KB row + UPDATE, one transaction (SQLite)")
    rows = sql_styles()
    floor = rows[-1][1]
    for name, us in rows:
        print(f"  {name:<48} {us:8.0f} µs  {us / floor:5.1f}× raw")
    size, rows = contract_costs()
    _section(f"an application ({size:,} bytes of JSON) through its contract", rows)
    size, rows = case_copies()
    _section(f"a case-shaped document ({size:,} bytes of JSON: 6 stages, 18 opinions, 15 history entries), copied",
             rows)
    steps, rows = saga_project()
    _section(f"review's saga, one project of the approval run ({steps} steps, each on the case decoded from JSON)",
             rows)
    _section("one statement in an open transaction (SQLite): the inbox row", statement_paths())
    _section("a read (SQLite): one select by key, with its connection and transaction", read_paths())
    for title, rows in json_costs():
        _section(f"JSON: {title}", rows)
    _section("a unit of work writing one inbox row, and its commit (SQLite, WAL)", commit_styles())


if __name__ == "__main__":
    main()
