"""Tables of the registry: the project ledger, its history, the code counters and the
system catalog (plus the shared outbox/inbox and opinion desk tables)."""
from sqlalchemy import (
    BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, UniqueConstraint,
)

from runtime.db import runtime_tables
from runtime.opinions import opinion_tables

metadata = MetaData()
runtime_tables(metadata)
opinion_tables(metadata)

# The project ledger (项目台账). One row per project, for its whole life.
projects = Table(
    "projects", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(32), nullable=False, unique=True),  # lifelong code
    Column("jurisdiction", String(32), nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("unit_name", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),  # yuan
    Column("year", Integer, nullable=False),  # plan year (计划年度)
    Column("state", String(32), nullable=False),
    Column("pool", String(32), nullable=True),  # None while not accepted
    Column("revision", Integer, nullable=False, default=0),
    Column("declared_on", String(10), nullable=False),
    Column("batch", String(32), nullable=True),
    Column("batch_name", String(200), nullable=True),
    Column("stage", String(64), nullable=True),
    Column("stage_name", String(200), nullable=True),
    Column("intake_findings", Text, nullable=False),  # JSON list of findings
    Column("application", Text, nullable=False),  # JSON, the latest revision
    Column("returns", Integer, nullable=False, default=0),
    Column("reasons", Text, nullable=False),  # JSON findings of the last return/refusal
    Column("barred_until", String(10), nullable=True),
    Column("approval_document_no", String(64), nullable=True),
    Column("approval_amount", BigInteger, nullable=True),
    Column("approval_decision_body", String(200), nullable=True),
    Column("approved_on", String(10), nullable=True),
    Column("approval_conditions", Text, nullable=True),  # JSON list
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # list_projects filters by these, newest first
    Index("ix_projects_unit_id", "unit_id", "id"),
    Index("ix_projects_state_id", "state", "id"),
    Index("ix_projects_pool_id", "pool", "id"),
    Index("ix_projects_unit_state_id", "unit_id", "state", "id"),
)

# Every state change, pool move, opinion and stage of a project (项目历程), append-only.
project_history = Table(
    "project_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(32), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("from_value", String(64), nullable=True),
    Column("to_value", String(64), nullable=True),
    Column("note_zh", Text, nullable=False),
    Column("note_en", Text, nullable=False),
    Column("cite", String(200), nullable=True),
    Index("ix_project_history_code_id", "code", "id"),
)

# The last sequence number given per (year, admin code); updated in the declaring
# transaction, so concurrent declarations never share a number.
code_counters = Table(
    "code_counters", metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("admin_code", String(6), primary_key=True),
    Column("last", Integer, nullable=False),
)

# The system catalog (系统目录): every information system of every unit.
systems = Table(
    "systems", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("unit_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("project_code", String(32), nullable=True),
    Column("status", String(16), nullable=False),
    Column("cite", String(200), nullable=False),
    Column("registered_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("unit_id", "name", name="uq_systems_unit_name"),
    Index("ix_systems_project_code", "project_code"),
)
