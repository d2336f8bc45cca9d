"""Alembic environment for the gateway (see runtime.migrate)."""
from gateway.models import metadata
from runtime.migrate import run_env

run_env(metadata)
