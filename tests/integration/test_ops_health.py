"""Liveness and readiness of a running service against the real RabbitMQ and PostgreSQL.

``/health/ready`` answers 503 while the service cannot work — the broker dropped its
connections and will not let it back in, or its database does not accept connections —
and 200 again once kombu has reconnected its consumers or the database answers; the
``govpm_ready`` gauge follows it. ``/health/live`` stays 200 throughout: the process is
fine, restarting it would not help.
"""
from urllib.parse import quote

import pytest
import requests

from runtime.web import bound_port
from tests.support import broker, databases
from tests.support.broker import wait_for
from tests.support.suite import Suite

pytestmark = [pytest.mark.integration]


def get(port, path):
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)


def ready_gauge(port, service):
    from prometheus_client.parser import text_string_to_metric_families
    for family in text_string_to_metric_families(get(port, "/metrics").text):
        for sample in family.samples:
            if sample.name == "govpm_ready" and sample.labels.get("service") == service:
                return sample.value
    return None


def connections(vhost):
    return [c for c in broker._api("GET", "connections") or [] if c.get("vhost") == vhost]


def force_close(vhost):
    names = [c["name"] for c in connections(vhost)]
    for name in names:
        requests.delete(f"{broker.MGMT}/api/connections/{quote(name, safe='')}", auth=broker.AUTH, timeout=10,
                        headers={"X-Reason": "test: broker drops the service"})
    return names


def set_permissions(vhost, allowed):
    path = f"permissions/{quote(vhost, safe='')}/{quote(broker.USER, safe='')}"
    if allowed:
        broker._api("PUT", path, json={"configure": ".*", "write": ".*", "read": ".*"})
    else:
        broker._api("DELETE", path)


def status(port):
    resp = get(port, "/health/ready")
    return resp.status_code, resp.json()


@pytest.mark.db
def test_readiness_fails_when_the_broker_drops_the_services_connections_and_recovers_when_kombu_reconnects(
        vhost_uri, make_db_url):
    vhost = broker.vhost_of(vhost_uri)
    with Suite(vhost_uri, "jinjiang", {"security": make_db_url("security")}) as suite:
        suite.start("security")
        port = bound_port(suite.containers["security"])
        code, body = wait_for(lambda: (lambda s: s if s[0] == 200 else None)(status(port)), timeout=10,
                              message="ready after start")
        assert {c["check"] for c in body["checks"]} >= {"database", "consumer:RpcConsumer",
                                                        "consumer:handle_opinion_requested"}
        assert ready_gauge(port, "security") == 1
        # the management API lists a connection a moment after it opened
        before = {c["name"] for c in wait_for(lambda: connections(vhost), timeout=15, interval=0.2,
                                              message="the service's connections listed")}

        # the broker drops the service and does not let it back in (an outage of its vhost)
        set_permissions(vhost, allowed=False)
        try:
            assert force_close(vhost)
            code, body = wait_for(lambda: (lambda s: s if s[0] == 503 else None)(status(port)), timeout=10,
                                  message="not ready once the broker dropped the connections")
            assert body["status"] == "not_ready"
            failed = {c["check"] for c in body["checks"] if not c["ok"]}
            assert {"consumer:RpcConsumer", "consumer:handle_opinion_requested"} <= failed
            assert "database" not in failed
            assert ready_gauge(port, "security") == 0
            assert get(port, "/health/live").status_code == 200
        finally:
            set_permissions(vhost, allowed=True)

        # kombu reconnects by itself: ready again, and consuming
        wait_for(lambda: status(port)[0] == 200, timeout=20, interval=0.2, message="ready again after reconnecting")
        assert ready_gauge(port, "security") == 1
        assert suite.rpc("security", "list_inbox", status="all") == []  # the RPC consumer answers


def _pg_admin_exec(sql):
    conn = databases._pg_admin()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def test_readiness_fails_while_the_postgresql_database_refuses_connections_and_liveness_stays_up(
        vhost_uri, tmp_path):
    url = databases.create("postgresql", "security", tmp_path)
    dbname = url.rsplit("/", 1)[1]
    try:
        with Suite(vhost_uri, "jinjiang", {"security": url}) as suite:
            suite.start("security")
            port = bound_port(suite.containers["security"])
            wait_for(lambda: status(port)[0] == 200, timeout=10, message="ready after start")

            # the database goes away: no new connections, the open ones are cut
            _pg_admin_exec(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            _pg_admin_exec(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'")
            try:
                code, body = status(port)
                assert code == 503 and body["status"] == "not_ready"
                [database] = [c for c in body["checks"] if c["check"] == "database"]
                assert database["ok"] is False and database["error"] == "OperationalError"
                assert all(c["ok"] for c in body["checks"] if c["check"] != "database")  # the broker is fine
                assert ready_gauge(port, "security") == 0
                assert get(port, "/health/live").status_code == 200
            finally:
                _pg_admin_exec(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')

            wait_for(lambda: status(port)[0] == 200, timeout=10, message="ready again once the database answers")
            assert ready_gauge(port, "security") == 1
    finally:
        databases.drop(url)


def test_a_dropped_postgresql_database_makes_the_service_not_ready(vhost_uri, tmp_path):
    url = databases.create("postgresql", "security", tmp_path)
    try:
        with Suite(vhost_uri, "jinjiang", {"security": url}) as suite:
            suite.start("security")
            port = bound_port(suite.containers["security"])
            wait_for(lambda: status(port)[0] == 200, timeout=10, message="ready after start")
            databases.drop(url)  # DROP DATABASE ... WITH (FORCE)
            code, body = status(port)
            assert code == 503
            assert [c["ok"] for c in body["checks"] if c["check"] == "database"] == [False]
            assert get(port, "/health/live").status_code == 200
    finally:
        databases.drop(url)
