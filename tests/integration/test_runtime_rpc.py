"""The RPC plumbing (runtime.rpc) on the real RabbitMQ: calls and replies over one AMQP
connection per service, an unknown service refused at once, and the connection
replaced when the broker drops it."""
import time

import eventlet
import pytest
import requests
from nameko import config
from nameko.containers import ServiceContainer
from nameko.exceptions import IncorrectSignature, MethodNotFound, UnknownService
from nameko.standalone.rpc import ClusterRpcClient

from runtime.rpc import AmqpLink, ServiceRpc, rpc
from tests.support import broker
from tests.support.broker import wait_for

pytestmark = pytest.mark.integration


class Target:
    name = "rpc_target"

    @rpc
    def echo(self, value):
        return value

    @rpc
    def fail(self):
        raise ValueError("on purpose")


class Caller:
    name = "rpc_caller"
    target = ServiceRpc("rpc_target")
    ghost = ServiceRpc("rpc_ghost")

    @rpc
    def ask(self, value):
        return self.target.echo(value=value)

    @rpc
    def ask_many(self, n):
        calls = [self.target.echo.call_async(value=i) for i in range(n)]
        return [call.result() for call in calls]

    @rpc
    def ask_ghost(self):
        started = time.monotonic()
        try:
            self.ghost.anything()
        except UnknownService as exc:
            return {"refused": type(exc).__name__, "seconds": time.monotonic() - started}
        return {"refused": None}

    @rpc
    def ask_failing(self):
        try:
            self.target.fail()
        except Exception as exc:  # noqa: BLE001
            return type(exc).__name__
        return None


CONTAINERS = []


@pytest.fixture
def services(vhost_uri):
    with config.patch({"AMQP_URI": vhost_uri}):
        CONTAINERS[:] = [ServiceContainer(Target), ServiceContainer(Caller)]
        for container in CONTAINERS:
            container.start()
        yield vhost_uri
        for container in CONTAINERS:
            container.stop()


def call(uri, method, **kwargs):
    with ClusterRpcClient(uri=uri, timeout=15) as client:
        return getattr(client.rpc_caller, method)(**kwargs)


def test_a_call_from_inside_a_service_gets_its_reply(services):
    assert call(services, "ask", value={"项目": "一网通办", "n": 3}) == {"项目": "一网通办", "n": 3}


def test_calls_in_flight_at_once_each_get_their_own_reply(services):
    assert call(services, "ask_many", n=50) == list(range(50))


def test_a_call_to_a_service_nobody_serves_is_refused_at_once(services):
    result = call(services, "ask_ghost")
    assert result["refused"] == "UnknownService"
    assert result["seconds"] < 5  # refused by the broker's return, not by a timeout


def test_an_error_in_the_called_service_travels_back_to_the_caller(services):
    assert call(services, "ask_failing") == "RemoteError"


def connections(uri):
    vhost = requests.utils.quote(broker.vhost_of(uri), safe="")
    return requests.get(f"{broker.MGMT}/api/vhosts/{vhost}/connections", auth=broker.AUTH, timeout=10).json()


def test_the_services_link_is_replaced_when_the_broker_drops_it(services):
    assert call(services, "ask", value=1) == 1
    # the management API lists connections a few seconds after they open
    conns = wait_for(lambda: connections(services), timeout=30, message="the services' connections listed")
    for conn in conns:  # every connection of the vhost: the links and the consumers
        requests.delete(f"{broker.MGMT}/api/connections/{requests.utils.quote(conn['name'], safe='')}",
                        auth=broker.AUTH, timeout=10)

    def answers():
        try:
            return call(services, "ask", value=2) == 2
        except Exception:  # noqa: BLE001 - still reconnecting
            eventlet.sleep(0.2)
            return False

    wait_for(answers, timeout=30, message="calls work again after the broker dropped every connection")


def test_a_service_sends_every_call_and_reply_over_one_connection(services):
    links = [ext for container in CONTAINERS for ext in container.extensions if isinstance(ext, AmqpLink)]
    assert len(links) == 2  # one per service, shared by its RPC clients and its replies
    before = [link.conn for link in links]
    for i in range(30):
        assert call(services, "ask", value=i) == i
    assert [link.conn for link in links] == before


def test_only_the_links_reader_reads_its_connection(services, monkeypatch):
    """A publisher never reads the link's socket: py-amqp would, before each publish, on a
    connection that asks for ``connection.blocked`` notifications."""
    links = [ext for container in CONTAINERS for ext in container.extensions if isinstance(ext, AmqpLink)]
    assert all(link.conn.client_properties["capabilities"]["connection.blocked"] is False for link in links)
    readers = set()
    for link in links:
        drain = link.conn.drain_events

        def counted(*args, _drain=drain, **kwargs):
            readers.add(eventlet.getcurrent())
            return _drain(*args, **kwargs)

        monkeypatch.setattr(link.conn, "drain_events", counted)
    for i in range(10):
        assert call(services, "ask", value=i) == i
    reader_threads = {link._reader for link in links}
    assert readers <= reader_threads


def test_a_call_whose_arguments_do_not_fit_the_method_is_refused_and_the_next_one_served(services):
    with ClusterRpcClient(uri=services, timeout=15) as client:
        assert client.rpc_target.echo(value="先") == "先"  # a shape that fits, remembered
        with pytest.raises(IncorrectSignature):
            client.rpc_target.echo(1, value=2)
        with pytest.raises(IncorrectSignature):
            client.rpc_target.echo(nothing=1)
        with pytest.raises(IncorrectSignature):
            client.rpc_target.fail(1)
        assert client.rpc_target.echo(value="还在") == "还在"


def test_a_call_to_a_method_the_service_does_not_have_is_refused(services):
    with ClusterRpcClient(uri=services, timeout=15) as client:
        with pytest.raises(MethodNotFound):
            client.rpc_target.nowhere()
        assert client.rpc_target.echo(value=1) == 1 and client.rpc_target.echo(value=2) == 2
