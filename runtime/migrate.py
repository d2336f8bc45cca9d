"""Alembic migrations, one history per service.

Each service keeps ``migrations/`` with an ``env.py`` that calls :func:`run_env`
and its ``versions/``. Services upgrade to head when they start.

Create a revision after changing a service's models::

    python -m runtime.migrate services/registry revision -m "add catalog"
"""
import logging
import os
import sys
import zlib

from alembic import command
from alembic.config import Config

log = logging.getLogger(__name__)


def _config(migrations_dir, url=None):
    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir)
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine, migrations_dir):
    """Upgrade to head. On PostgreSQL, replicas starting together take turns
    (a transaction-level advisory lock), so only one of them migrates."""
    cfg = _config(migrations_dir)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            owner = os.path.basename(os.path.dirname(os.path.abspath(migrations_dir)))  # e.g. "registry"
            key = zlib.crc32(f"govpm-migrate-{owner}".encode())
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def run_env(target_metadata):
    """Body of every service's ``migrations/env.py``."""
    from alembic import context
    from sqlalchemy import create_engine

    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or "sqlite://"
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        context.run_migrations()


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[1] != "revision":
        print("usage: python -m runtime.migrate services/<name> revision -m MESSAGE", file=sys.stderr)
        return 2
    service_dir = argv[0]
    message = argv[argv.index("-m") + 1] if "-m" in argv else "change"
    migrations = os.path.join(service_dir, "migrations")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/autogen.db"
        cfg = _config(migrations, url)
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
