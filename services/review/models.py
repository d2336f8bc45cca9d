"""Tables of the review service. The case itself (审批案卷: stages, opinions, documents,
panel, votes, decision, history) is one JSON document per project, locked while a use
case changes it; the columns beside it are for listing and for the pending-opinion index."""
from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text,
)

from runtime.audit import audit_table
from runtime.db import runtime_tables

metadata = MetaData()
runtime_tables(metadata)
audit_table(metadata)  # opinions received, hash-chained (runtime.audit)

cases = Table(
    "cases", metadata,
    Column("code", String(64), primary_key=True),
    Column("jurisdiction", String(16), nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),  # yuan
    Column("state", String(16), nullable=False),  # in_progress | returned | refused | approved
    Column("current_stage", String(64), nullable=True),
    Column("revision", Integer, nullable=False),
    Column("returns", Integer, nullable=False),
    Column("expert_failures", Integer, nullable=False),
    Column("barred_until", String(10), nullable=True),
    Column("document_no", String(64), nullable=True),  # 批复文号
    Column("body", Text, nullable=False),  # the case document (JSON)
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_cases_state_updated", "state", "updated_at"),
    Index("ix_cases_unit", "unit_id"),
    Index("ux_cases_document_no", "document_no", unique=True),
)

# one row per opinion request, kept in step with the case document (for the pending list)
case_opinions = Table(
    "case_opinions", metadata,
    Column("request_id", String(64), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("project_name", String(200), nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("stage_name", String(200), nullable=False),
    Column("agency", String(32), nullable=False),
    Column("agency_name", String(200), nullable=False),
    Column("subject", String(32), nullable=False),
    Column("sign", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # requested | issued | withdrawn
    Column("requested_on", String(10), nullable=False),
    Column("due_on", String(10), nullable=False),
    Column("cite", String(200), nullable=False),
    Index("ix_case_opinions_status_agency", "status", "agency"),
    Index("ix_case_opinions_code", "code"),
)

# the expert pool (专家库)
experts = Table(
    "experts", metadata,
    Column("expert_id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("field", String(100), nullable=False),
    Column("directed", Boolean, nullable=False),  # may be picked by name (定向选取)
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# per-year sequence of approval document numbers (批复文号)
document_numbers = Table(
    "document_numbers", metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last", Integer, nullable=False),
)
