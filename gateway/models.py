"""Gateway tables: users and tokens. Nothing of the domain lives here."""
from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table

from runtime.db import runtime_tables

metadata = MetaData()
runtime_tables(metadata)

users = Table(
    "users", metadata,
    Column("user_id", String(32), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),  # unit | officer | admin
    Column("unit_id", String(64), nullable=True),  # role unit
    Column("unit_name", String(200), nullable=True),
    Column("agency", String(32), nullable=True),  # role officer
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
)

tokens = Table(
    "tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False, index=True),
    Column("expires_at", DateTime, nullable=False),
)
