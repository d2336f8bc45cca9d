"""Alembic environment for the registry service (see runtime.migrate)."""
from runtime.migrate import run_env
from services.registry.models import metadata

run_env(metadata)
