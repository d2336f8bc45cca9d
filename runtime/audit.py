"""An append-only, hash-chained audit log of official acts (opinions issued and received).

Each entry's hash covers the previous entry's hash, so altering or removing an entry
breaks the chain from there on; ``verify`` finds where. Entries are appended in the
same transaction as the act they record.

    python -m runtime.audit verify --db sqlite:///var/jinjiang/security.db
"""
import argparse
import functools
import hashlib
import sys

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert, select, text

from .db import utcnow
from .sql import Prepared

GENESIS = "0" * 64


def audit_table(metadata: MetaData):
    return Table(
        "audit_log", metadata,
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("at", DateTime, nullable=False),
        Column("action", String(32), nullable=False),  # opinion_issued | opinion_received
        Column("ref", String(64), nullable=False),  # the request id
        Column("code", String(64), nullable=False),  # the project code
        Column("actor", String(64), nullable=False),  # "auto", an officer id, or the signer
        Column("digest", String(64), nullable=False),  # sha256 of the act's canonical content
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False, unique=True),
    )


def entry_hash(prev_hash, seq, at, action, ref, code, actor, digest):
    material = "|".join([prev_hash, str(seq), at.isoformat(), action, ref, code, actor, digest])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('govpm-audit-log'))")


@functools.lru_cache(maxsize=None)
def _statements(table):
    """(last entry, insert) on one service's ``audit_log``, built once."""
    return (Prepared(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)),
            Prepared(insert(table)))


def append(conn, table, *, action, ref, code, actor, digest):
    """Append one entry (call inside the act's transaction)."""
    if conn.dialect.name == "postgresql":
        # one writer at a time extends the chain
        conn.execute(_ADVISORY_LOCK)
    last_entry, insert_entry = _statements(table)
    last = last_entry.first(conn, {})
    seq = (last.seq + 1) if last else 1
    prev = last.hash if last else GENESIS
    at = utcnow()
    insert_entry.run(conn, dict(
        seq=seq, at=at, action=action, ref=ref, code=code, actor=actor, digest=digest, prev_hash=prev,
        hash=entry_hash(prev, seq, at, action, ref, code, actor, digest),
    ))
    return seq


def verify(conn, table):
    """(ok, number of entries, first broken seq or None)."""
    prev = GENESIS
    count = 0
    expected_seq = 1
    for row in conn.execute(select(table).order_by(table.c.seq)):
        count += 1
        if row.seq != expected_seq or row.prev_hash != prev or row.hash != entry_hash(
                row.prev_hash, row.seq, row.at, row.action, row.ref, row.code, row.actor, row.digest):
            return False, count, row.seq
        prev = row.hash
        expected_seq += 1
    return True, count, None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m runtime.audit")
    parser.add_argument("command", choices=["verify"])
    parser.add_argument("--db", required=True, help="the service's database URL")
    args = parser.parse_args(argv)
    from sqlalchemy import create_engine
    metadata = MetaData()
    table = audit_table(metadata)
    engine = create_engine(args.db)
    with engine.connect() as conn:
        ok, count, broken = verify(conn, table)
    if ok:
        print(f"审计链完整 / audit chain intact: {count} entries")
        return 0
    print(f"审计链在第 {broken} 条断开 / audit chain broken at entry {broken} (of {count} read)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
