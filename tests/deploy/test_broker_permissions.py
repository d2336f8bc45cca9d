"""The generated broker permissions, applied to the real RabbitMQ.

A temporary vhost and temporary users (unique suffix) receive exactly what
``scripts/gen_definitions.py`` generates — imported through the management API's
definitions endpoint, password hashes included — and each test then connects with one
agency's credentials using py-amqp / kombu directly. Everything is removed afterwards.
"""
import json
import secrets
import uuid
from urllib.parse import quote

import amqp
import pytest
import requests
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Queue

from runtime.messaging import event_exchange, queue_arguments
from tests.support import broker
from tests.deploy.support import AGENCY_SERVICES, load_generator

gen = load_generator()


def _delete(path):
    requests.delete(f"{broker.MGMT}/api/{path}", auth=broker.AUTH, timeout=10)


def _apply(document):
    resp = requests.post(f"{broker.MGMT}/api/definitions", auth=broker.AUTH, timeout=30,
                         data=json.dumps(document), headers={"Content-Type": "application/json"})
    assert resp.status_code in (200, 201, 204), resp.text


class Agencies:
    """The temporary vhost with one user per agency service, as generated."""

    def __init__(self, declare_source_exchanges=False):
        suffix = uuid.uuid4().hex[:10]
        self.vhost = f"govpm-permtest-{suffix}"
        self.users = {s: f"{s}-permtest-{suffix}" for s in AGENCY_SERVICES}
        self.passwords = {s: secrets.token_urlsafe(16) for s in AGENCY_SERVICES}
        self.document = gen.build(vhost=self.vhost, user_names=self.users, passwords=self.passwords,
                                  declare_source_exchanges=declare_source_exchanges)

    def __enter__(self):
        _apply(self.document)
        return self

    def __exit__(self, *exc):
        _delete(f"vhosts/{quote(self.vhost, safe='')}")
        for name in self.users.values():
            _delete(f"users/{quote(name, safe='')}")

    def uri(self, service):
        return (f"amqp://{quote(self.users[service], safe='')}:{quote(self.passwords[service], safe='')}"
                f"@{broker.AMQP_HOST}:{broker.AMQP_PORT}/{quote(self.vhost, safe='')}")

    def connect(self, service):
        conn = amqp.Connection(host=f"{broker.AMQP_HOST}:{broker.AMQP_PORT}", userid=self.users[service],
                               password=self.passwords[service], virtual_host=self.vhost, connect_timeout=5)
        conn.connect()
        return conn


@pytest.fixture(scope="module")
def agencies():
    with Agencies() as value:
        yield value


@pytest.fixture
def connect(agencies):
    opened = []

    def factory(service):
        conn = agencies.connect(service)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        try:
            conn.close()
        except Exception:  # already closed by the broker's refusal
            pass


def publish(conn, exchange, routing_key, body=b"{}"):
    """Publish with a confirm, so a refusal surfaces here and not on a later call."""
    channel = conn.channel()
    channel.basic_publish_confirm(amqp.Message(body, content_type="application/json", delivery_mode=2),
                                  exchange=exchange, routing_key=routing_key, confirm_timeout=5)
    return channel


def get_one(conn, queue):
    channel = conn.channel()
    return channel, channel.basic_get(queue, no_ack=False)


def refused(call):
    with pytest.raises(AccessRefused) as info:
        call()
    assert info.value.code == 403
    return str(info.value)


EVT_REVIEW_IN = "evt-registry-project_submitted--review.handle_project_submitted"
EVT_BUDGET_IN = "evt-review-opinion_requested--budget.handle_opinion_requested"
EVT_REGISTRY_IN = "evt-review-opinion_requested--registry.handle_opinion_requested"


# ---- allowed ---------------------------------------------------------------------------

def test_an_agency_publishes_its_own_events_and_the_subscriber_consumes_them_from_its_own_queue(connect):
    publish(connect("registry"), "registry.events", "project_submitted", b'{"n": 1}')
    channel, message = get_one(connect("review"), EVT_REVIEW_IN)
    assert message is not None and message.body == b'{"n": 1}'
    channel.basic_ack(message.delivery_tag)


def test_a_rejected_event_goes_to_the_subscribers_dead_letter_queue_which_only_it_can_read(connect):
    publish(connect("review"), "review.events", "opinion_requested.registry", b'{"n": 2}')
    registry = connect("registry")
    channel, message = get_one(registry, EVT_REGISTRY_IN)
    assert message is not None
    channel.basic_reject(message.delivery_tag, requeue=False)
    dead = broker.wait_for(lambda: get_one(registry, "registry.dead-letters")[1], timeout=5,
                           message="the dead letter")
    assert dead.body == b'{"n": 2}'
    refused(lambda: get_one(connect("review"), "registry.dead-letters"))


def test_the_gateway_sends_rpc_requests_to_the_services_it_calls_and_they_reply_on_uuid_keys(connect, agencies):
    reply_key = str(uuid.uuid4())
    gateway = connect("gateway")
    reply_queue = f"rpc.reply-gateway-{reply_key}"
    gateway_channel = gateway.channel()
    gateway_channel.queue_declare(reply_queue, durable=True, auto_delete=False, arguments={"x-expires": 300000})
    gateway_channel.queue_bind(reply_queue, "nameko-rpc", routing_key=reply_key)
    publish(gateway, "nameko-rpc", "registry.get_project")

    channel, request = get_one(connect("registry"), "rpc-registry")
    assert request is not None and request.delivery_info["routing_key"] == "registry.get_project"
    channel.basic_ack(request.delivery_tag)
    publish(connect("registry"), "nameko-rpc", reply_key, b'{"result": 1, "error": null}')
    reply = broker.wait_for(lambda: gateway.channel().basic_get(reply_queue, no_ack=True), timeout=5,
                            message="the reply")
    assert reply.body == b'{"result": 1, "error": null}'


def test_the_runtimes_own_consumer_declarations_pass_under_an_agencys_credentials(agencies):
    """What nameko and runtime.messaging declare at start, with DECLARE_TOPOLOGY=false.

    The RPC queue and a reply queue exactly as nameko builds them; the subscriber queue
    with the arguments ``runtime.messaging`` uses, its source exchange declared passively.
    """
    rpc_exchange = Exchange("nameko-rpc", durable=True, type="topic")
    reply_key = str(uuid.uuid4())
    source = Exchange("review.events", type="topic", durable=True, auto_delete=False, passive=True)
    with Connection(agencies.uri("budget")) as conn:
        channel = conn.channel()
        Queue("rpc-budget", exchange=rpc_exchange, routing_key="budget.*", durable=True)(channel).declare()
        Queue(f"rpc.reply-budget-{reply_key}", exchange=rpc_exchange, routing_key=reply_key,
              queue_arguments={"x-expires": 300000})(channel).declare()
        Queue(EVT_BUDGET_IN, exchange=source, routing_key="opinion_requested.budget", durable=True,
              queue_arguments=queue_arguments("budget"))(channel).declare()
        Queue("budget.dead-letters", exchange=Exchange("budget.dlx", type="fanout", durable=True, auto_delete=False),
              routing_key="", durable=True, queue_arguments={"x-queue-type": "quorum"})(channel).declare()


def test_with_declare_source_exchanges_the_subscriber_may_declare_its_sources_exchange_as_runtime_does_today():
    with Agencies(declare_source_exchanges=True) as agencies, Connection(agencies.uri("budget")) as conn:
        Queue(EVT_BUDGET_IN, exchange=event_exchange("review"), routing_key="opinion_requested.budget",
              durable=True, queue_arguments=queue_arguments("budget"))(conn.channel()).declare()


# ---- refused ---------------------------------------------------------------------------

def test_an_agency_is_refused_publishing_to_another_agencys_events_exchange(connect):
    message = refused(lambda: publish(connect("registry"), "review.events", "project_approved"))
    assert "review.events" in message


def test_an_agency_is_refused_consuming_another_agencys_event_queue(connect):
    message = refused(lambda: get_one(connect("registry"), EVT_BUDGET_IN))
    assert EVT_BUDGET_IN in message
    conn = connect("security")
    refused(lambda: conn.channel().basic_consume(EVT_BUDGET_IN, callback=lambda m: None))


def test_an_agency_is_refused_consuming_another_agencys_rpc_and_dead_letter_queues(connect):
    refused(lambda: get_one(connect("registry"), "rpc-budget"))
    refused(lambda: get_one(connect("filing"), "budget.dead-letters"))


def test_an_agency_is_refused_publishing_an_event_type_it_is_not_the_source_of_on_its_own_exchange(connect):
    message = refused(lambda: publish(connect("budget"), "budget.events", "project_approved"))
    assert "access to topic 'project_approved'" in message


def test_an_agency_is_refused_rpc_requests_to_services_it_does_not_call(connect):
    message = refused(lambda: publish(connect("registry"), "nameko-rpc", "budget.set_envelope"))
    assert "access to topic 'budget.set_envelope'" in message


def test_an_agency_is_refused_binding_a_queue_to_events_addressed_to_another_agency(connect):
    channel = connect("registry").channel()
    snoop = "evt-review-opinion_requested--registry.snoop"
    channel.queue_declare(snoop, durable=True, auto_delete=False, arguments=queue_arguments("registry"))
    channel.queue_bind(snoop, "review.events", routing_key="opinion_requested.registry")  # its own key: fine
    for exchange, key in [("review.events", "opinion_requested.budget"), ("review.events", "#"),
                          ("nameko-rpc", "budget.*")]:
        message = refused(lambda: channel.queue_bind(snoop, exchange, routing_key=key))
        assert f"access to topic '{key}'" in message
        channel = connect("registry").channel()
    channel.queue_delete(snoop)


def test_an_agency_is_refused_declaring_or_deleting_another_agencys_exchanges_and_queues(connect):
    refused(lambda: connect("registry").channel().exchange_delete("review.events"))
    refused(lambda: connect("registry").channel().exchange_declare("review.events", "topic", durable=True,
                                                                   auto_delete=False))
    refused(lambda: connect("registry").channel().queue_delete(EVT_BUDGET_IN))
    refused(lambda: connect("registry").channel().queue_declare("rpc-budget", durable=True, auto_delete=False))


def test_a_user_with_the_placeholder_hash_cannot_log_in(agencies):
    document = gen.build(vhost=agencies.vhost, user_names={s: f"{u}-nopw" for s, u in agencies.users.items()})
    assert all(u["password_hash"] == "" for u in document["users"])
    name = agencies.users["filing"] + "-nopw"
    _apply({"users": [u for u in document["users"] if u["name"] == name],
            "permissions": [p for p in document["permissions"] if p["user"] == name]})
    try:
        for password in ("", "guest", name):
            with pytest.raises(Exception):
                amqp.Connection(host=f"{broker.AMQP_HOST}:{broker.AMQP_PORT}", userid=name, password=password,
                                virtual_host=agencies.vhost, connect_timeout=5).connect()
    finally:
        _delete(f"users/{quote(name, safe='')}")


def test_a_service_can_count_its_own_dead_letters_with_a_passive_declare(connect):
    """How the govpm_dead_letter_messages gauge can be refreshed under the service's own user."""
    name, messages, _consumers = connect("budget").channel().queue_declare("budget.dead-letters", passive=True)
    assert name == "budget.dead-letters" and messages >= 0
