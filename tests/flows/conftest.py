"""A whole jurisdiction's suite in this process: five agency services and the gateway,
each with its own database, on a fresh vhost of the real RabbitMQ."""
import pytest

from runtime.web import bound_port
from tests.support.suite import Suite

ADMIN_PASSWORD = "flow-admin-password"
ALL = ["registry", "review", "budget", "security", "filing", "gateway"]


@pytest.fixture
def start_suite(vhost_uri, make_db_url):
    suites = []

    def factory(jurisdiction, services=ALL, **extra):
        urls = {name: make_db_url(name) for name in ALL}
        # port 0: the gateway binds a port of the kernel's choosing, read back once it runs
        config = {"WEB_SERVER_ADDRESSES": {"gateway": "127.0.0.1:0"},
                  "GATEWAY_ADMIN_PASSWORD": ADMIN_PASSWORD, "TODAY": "2026-11-24",
                  "PANEL_SEED": 7, "RPC_TIMEOUT_SECONDS": 20}
        config.update(extra)
        suite = Suite(vhost_uri, jurisdiction, urls, config).__enter__()
        suites.append(suite)
        suite.start(*services)
        if "gateway" in suite.containers:
            suite.base_url = f"http://127.0.0.1:{bound_port(suite.containers['gateway'])}"
        return suite

    yield factory
    for suite in suites:
        suite.__exit__(None, None, None)
