"""Tables of the filing service: outbox/inbox, the opinion desk, and gradings (定级)."""
from sqlalchemy import Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text

from runtime.db import runtime_tables
from runtime.opinions import opinion_tables

metadata = MetaData()
runtime_tables(metadata)
opinion_tables(metadata)

# One row per issued grading opinion; the newest row of a code is its current grading.
gradings = Table(
    "gradings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("level", Integer, nullable=False),
    Column("business_level", Integer, nullable=False),
    Column("service_level", Integer, nullable=False),
    Column("business_object", String(32), nullable=False),
    Column("business_degree", String(32), nullable=False),
    Column("service_object", String(32), nullable=False),
    Column("service_degree", String(32), nullable=False),
    Column("level_claimed", Integer, nullable=True),
    Column("filing_required", Boolean, nullable=False),
    Column("yearly_test_required", Boolean, nullable=False),
    Column("verdict", String(32), nullable=False),
    Column("signed_by", String(64), nullable=False),
    Column("cite", Text, nullable=False),
    Column("graded_at", DateTime, nullable=False),
    Index("ix_gradings_code", "code", "id"),
)
