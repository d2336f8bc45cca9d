"""Shared fixtures: a RabbitMQ vhost per test, SQLite and PostgreSQL databases,
and a runner that starts services in-process against the real broker."""
import eventlet

eventlet.monkey_patch()  # noqa: E402  (must come first: nameko runs on eventlet)

import os  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402

from tests.support import broker, databases  # noqa: E402

# every RPC answer in the tests is checked against its contract (services started by the
# tests, in-process or as processes, inherit it); deployments default to ``events``
os.environ.setdefault("CONTRACT_CHECKS", "strict")


@pytest.fixture
def vhost_uri():
    """A fresh vhost on the real RabbitMQ; yields its AMQP URI."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    broker.create_vhost(name)
    try:
        yield broker.amqp_uri(name)
    finally:
        broker.delete_vhost(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request):
    return request.param


@pytest.fixture
def make_db_url(db_backend, tmp_path):
    """``make_db_url(name)`` gives a new empty database on the chosen backend."""
    created = []

    def factory(name="db"):
        url = databases.create(db_backend, name, tmp_path)
        created.append(url)
        return url

    yield factory
    for url in created:
        databases.drop(url)


@pytest.fixture
def sqlite_url(tmp_path):
    def factory(name="db"):
        return databases.create("sqlite", name, tmp_path)
    return factory
