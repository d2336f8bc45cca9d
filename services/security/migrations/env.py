"""Alembic environment for the security service (see runtime.migrate)."""
from runtime.migrate import run_env
from services.security.models import metadata

run_env(metadata)
