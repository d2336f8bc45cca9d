"""``SQLITE_SYNCHRONOUS``: how far a SQLite commit goes before it is answered."""
import pytest
from nameko import config
from nameko.containers import ServiceContainer
from sqlalchemy import MetaData

from runtime.db import make_engine, runtime_tables
from runtime.dependencies import Database

metadata = MetaData()
runtime_tables(metadata)


def synchronous_of(engine):
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA synchronous").scalar()


def test_every_commit_is_synced_unless_normal_is_asked_for(tmp_path):
    full = make_engine(f"sqlite:///{tmp_path}/full.db")
    normal = make_engine(f"sqlite:///{tmp_path}/normal.db", synchronous="normal")
    assert synchronous_of(full) == 2  # FULL
    assert synchronous_of(normal) == 1  # NORMAL
    full.dispose()
    normal.dispose()


class Service:
    name = "registry"
    db = Database(metadata)


def test_a_wrong_value_stops_the_service_at_start_in_both_languages(tmp_path):
    with config.patch({"AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/", "DB_URL": f"sqlite:///{tmp_path}/r.db",
                       "SQLITE_SYNCHRONOUS": "OFF"}):
        container = ServiceContainer(Service)
        with pytest.raises(ValueError, match="SQLITE_SYNCHRONOUS") as err:
            container.start()
    assert "只能是 FULL 或 NORMAL" in str(err.value) and "must be FULL or NORMAL" in str(err.value)
