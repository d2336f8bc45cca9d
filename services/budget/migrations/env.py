"""Alembic environment for the budget service (see runtime.migrate)."""
from runtime.migrate import run_env
from services.budget.models import metadata

run_env(metadata)
