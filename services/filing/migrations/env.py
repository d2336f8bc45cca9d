"""Alembic environment for the filing service (see runtime.migrate)."""
from runtime.migrate import run_env
from services.filing.models import metadata

run_env(metadata)
