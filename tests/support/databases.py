"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database."""
import contextlib
import os
import uuid

PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin():
    import psycopg2
    from urllib.parse import urlparse
    p = urlparse(PG_ADMIN_URL)
    conn = psycopg2.connect(host=p.hostname, port=p.port or 5432, user=p.username or "postgres",
                            password=p.password, dbname=(p.path or "/postgres")[1:] or "postgres")
    conn.autocommit = True
    return conn


def create(backend, name, tmp_path):
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/{name}-{uuid.uuid4().hex[:8]}.db"
    if backend == "postgresql":
        dbname = f"t_{name}_{uuid.uuid4().hex[:10]}"
        conn = _pg_admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            conn.close()
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{dbname}".replace("postgresql://", "postgresql+psycopg2://", 1)
    raise ValueError(backend)


def drop(url):
    if not url.startswith("postgresql"):
        return
    dbname = url.rsplit("/", 1)[1]
    conn = _pg_admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        conn.close()


@contextlib.contextmanager
def migrated_core(url, metadata, service, migrations=None):
    """A :class:`runtime.db.DatabaseCore` on ``url`` with its schema in place; disposed after."""
    from runtime.db import DatabaseCore
    core = DatabaseCore(url, metadata, service, migrations)
    core.migrate()
    try:
        yield core
    finally:
        core.dispose()
