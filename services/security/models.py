"""Tables of the security service: runtime (outbox, inbox), the opinion desk, and the
compliance ledger (合规台账) that later sanctions read."""
from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table

from runtime.db import runtime_tables
from runtime.opinions import opinion_tables

metadata = MetaData()
runtime_tables(metadata)
opinion_tables(metadata)

# One row per issued opinion: which unit's project got which verdict from which agency.
compliance = Table(
    "compliance", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False),  # project code
    Column("unit_id", String(64), nullable=False),  # 项目建设单位
    Column("agency", String(32), nullable=False),  # cac | secrecy | crypto | miit
    Column("subject", String(32), nullable=False),  # security | crypto
    Column("stage", String(64), nullable=False),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("verdict", String(32), nullable=False),
    Column("signed_by", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Index("ix_compliance_code", "code"),
    Index("ix_compliance_unit", "unit_id"),
)
