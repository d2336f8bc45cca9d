"""Alembic environment for the review service (see runtime.migrate)."""
from runtime.migrate import run_env
from services.review.models import metadata

run_env(metadata)
