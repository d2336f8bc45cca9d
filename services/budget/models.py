"""Tables of the budget service: outbox/inbox, the opinion desk, yearly envelopes
(预算额度), cost reviews (造价评审) with their lines, and allocations (资金安排)."""
from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text,
)

from runtime.db import runtime_tables
from runtime.opinions import opinion_tables

metadata = MetaData()
runtime_tables(metadata)
opinion_tables(metadata)

# The yearly envelope of one funding source; ``committed`` grows with each allocation.
envelopes = Table(
    "envelopes", metadata,
    Column("year", Integer, primary_key=True),
    Column("source", String(32), primary_key=True),
    Column("total", BigInteger, nullable=False),
    Column("committed", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime, nullable=False),
)

cost_reviews = Table(
    "cost_reviews", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False),
    Column("request_id", String(64), nullable=True, unique=True),  # None: made by budget.review_cost
    Column("origin", String(16), nullable=False),  # opinion | rpc
    Column("requested_amount", BigInteger, nullable=False),
    Column("reviewed_amount", BigInteger, nullable=False),
    Column("reduction", BigInteger, nullable=False),
    Column("cite", Text, nullable=False),
    Column("reviewed_at", DateTime, nullable=False),
    Index("ix_cost_reviews_code", "code", "id"),
)

cost_review_lines = Table(
    "cost_review_lines", metadata,
    Column("review_id", Integer, ForeignKey("cost_reviews.id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("item", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("basis", Text, nullable=False),
    Column("requested", BigInteger, nullable=False),
    Column("reviewed_unit_price", BigInteger, nullable=False),
    Column("reviewed", BigInteger, nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of {rule, zh, en, cite}
)

# One allocation per approved project (idempotent by code).
allocations = Table(
    "allocations", metadata,
    Column("code", String(64), primary_key=True),
    Column("project_name", String(200), nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("source", String(32), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("within_envelope", Boolean, nullable=False),
    Column("pool", String(32), nullable=False),
    Column("channel", String(32), nullable=True),
    Column("channel_zh", Text, nullable=True),
    Column("cite", Text, nullable=False),
    Column("document_no", String(100), nullable=False),
    Column("approved_on", String(10), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Index("ix_allocations_year", "year"),
)
