"""runtime.sql.Prepared on SQLite and PostgreSQL: the same rows, types and errors as the
statement executed through SQLAlchemy, in the caller's transaction."""
import datetime as dt

import pytest
from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, bindparam, exc, insert, select,
    update,
)

from runtime.db import make_engine
from runtime.sql import Prepared

pytestmark = [pytest.mark.integration, pytest.mark.db]

metadata = MetaData()
things = Table(
    "things", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(20), nullable=False, unique=True),
    Column("at", DateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("amount", BigInteger),
    Column("body", Text),
)
with_default = Table(
    "with_default", metadata,
    Column("id", Integer, primary_key=True),
    Column("n", Integer, nullable=False, default=0),
)

INSERT = Prepared(insert(things))
BY_CODE = Prepared(select(things).where(things.c.code == bindparam("code")))
CODES = Prepared(select(things.c.code, things.c.ok).order_by(things.c.code))
UPDATE = Prepared(update(things).where(things.c.code == bindparam("b_code")))
WITHDRAWN = Prepared(update(things).where(things.c.code == bindparam("b_code")).values(body="withdrawn"))
AT = dt.datetime(2026, 11, 27, 9, 30, 0)  # no microseconds: SQLite's text form must still be SQLAlchemy's


@pytest.fixture
def engine(make_db_url):
    engine = make_engine(make_db_url("sql"))
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _row(code, **kw):
    return {"code": code, "at": AT, "ok": True, "amount": 10 ** 12, "body": "正文", **kw}


def test_rows_and_types_are_sqlalchemys(engine):
    with engine.begin() as conn:
        INSERT.run(conn, _row("a"))
        INSERT.run(conn, [_row("b", ok=False), _row("c", amount=None)])  # executemany
        UPDATE.run(conn, {"b_code": "b", "body": "改", "amount": 7})
        WITHDRAWN.run(conn, {"b_code": "c"})  # a value the statement carries
    with engine.connect() as conn:
        for code in "abc":
            ours = BY_CODE.first(conn, {"code": code})
            theirs = conn.execute(select(things).where(things.c.code == code)).first()
            assert tuple(ours) == tuple(theirs)
            assert [type(v) for v in ours] == [type(v) for v in theirs]
            assert ours._mapping == dict(theirs._mapping)
        b = BY_CODE.first(conn, {"code": "b"})
        assert (b.at, b.ok, b.body, b.amount) == (AT, False, "改", 7)
        assert BY_CODE.first(conn, {"code": "c"}).body == "withdrawn"
        assert BY_CODE.first(conn, {"code": "nope"}) is None
        assert BY_CODE.scalar(conn, {"code": "a"}) == 1
        assert [(r.code, r.ok) for r in CODES.all(conn, {})] == [("a", True), ("b", False), ("c", True)]
        # and SQLAlchemy reads what Prepared wrote in SQLAlchemy's own text form (SQLite)
        assert conn.execute(select(things.c.code).where(things.c.at == AT)).scalars().all() == ["a", "b", "c"]


def test_a_constraint_error_is_sqlalchemys_and_the_transaction_rolls_back(engine):
    with pytest.raises(exc.IntegrityError) as raised:
        with engine.begin() as conn:
            INSERT.run(conn, _row("a"))
            INSERT.run(conn, _row("a"))
    assert raised.value.orig is not None
    with engine.connect() as conn:
        assert CODES.all(conn, {}) == []


def test_a_missing_parameter_is_refused(engine):
    with engine.connect() as conn:
        with pytest.raises(exc.InvalidRequestError, match="code"):
            BY_CODE.first(conn, {})


def test_statements_that_need_python_defaults_are_refused(engine):
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="defaults"):
            Prepared(insert(with_default)).run(conn, {"id": 1})
        Prepared(insert(with_default)).run(conn, {"id": 1, "n": 3})  # given: nothing to compute


def test_a_read_begins_a_transaction_as_sqlalchemy_does(engine):
    # the first statement begins the connection's transaction (SQLAlchemy's autobegin), so
    # a read sees what SQLAlchemy's own execute would see in the same place: one snapshot
    # on SQLite (WAL), each statement's committed data under PostgreSQL's read committed
    reader = engine.execution_options(readonly=True)  # as DatabaseCore.read(): no write lock

    def scenario(read):
        with engine.begin() as conn:
            conn.execute(things.delete())
        seen = []
        with reader.connect() as conn:
            seen.append(read(conn))
            assert conn.in_transaction()
            with engine.begin() as writer:
                INSERT.run(writer, _row("a"))
            seen.append(read(conn))
            conn.rollback()
            seen.append(read(conn))
        return seen

    ours = scenario(lambda conn: BY_CODE.first(conn, {"code": "a"}) is not None)
    theirs = scenario(lambda conn: conn.execute(select(things).where(things.c.code == "a")).first() is not None)
    assert ours == theirs
    assert ours[0] is False and ours[2] is True
