"""RPC plumbing shared by every service: the ``rpc`` entrypoint and ``ServiceRpc``.

The wire format, queues and exchange are nameko's own (``rpc-<service>`` bound to
``nameko-rpc``, replies to the caller's ``rpc.reply-<service>-<uuid>`` queue), so a
service using these classes talks to any nameko client or service. What changes is the
cost of each call, which nameko 3.0.0rc11 spends mostly on the broker:

* nameko's client (``ServiceRpc``/``Publisher``) takes a pooled producer per call, waits
  for a publisher confirm, and (the reply queue having ``x-expires``, which kombu never
  caches) re-declares the reply queue, the exchange and the binding before *every*
  request: four broker round trips before the request is even on its way. The reply
  queue is declared by the caller's reply consumer when it starts and again whenever it
  reconnects, so the re-declaration buys nothing.
* nameko's responder takes a pooled producer per reply and waits for its confirm.

Here one AMQP connection per service process (:class:`AmqpLink`) publishes requests and
replies: no declaration, no confirm wait. A request is still published ``mandatory``: a
call to a service nobody serves comes back as ``basic.return`` and fails the call at once
with :class:`~nameko.exceptions.UnknownService`, as nameko's confirm-based check does.
Requests and replies are transient (``delivery_mode=1``): the reply queue does not survive
a broker restart, so a persisted request could never be answered anyway. Replies are
consumed without acknowledgements, and a request goes straight to a worker when the pool
has room. bench/README.md has the before and after (in-service RPC 3.4 ms → 1.2 ms).
"""
import logging
import socket
import sys
import time
from functools import partial

import amqp
import eventlet
import kombu.serialization
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from nameko import config
from nameko.constants import AMQP_URI_CONFIG_KEY, DEFAULT_AMQP_URI
from nameko.exceptions import (
    ContainerBeingKilled, MalformedRequest, MethodNotFound, UnknownService, UnserializableValueError, serialize,
)
from nameko.extensions import SharedExtension
from nameko.messaging import decode_from_headers
from nameko.rpc import Client
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import RpcConsumer as NamekoRpcConsumer
from nameko.rpc import ReplyListener as NamekoReplyListener
from nameko.rpc import ServiceRpc as NamekoServiceRpc
from nameko.rpc import get_rpc_exchange

from . import jsoncodec
from .consume import JsonConsumer
from .publisher import PublishingConnection, connection_params
from .workers import SignatureOnce, spawn_if_room

log = logging.getLogger(__name__)

TRANSIENT = 1
HEARTBEAT = 60
RETURN_TTL = 300.0  # seconds: a basic.return arrives within milliseconds of the publish


class AmqpLink(SharedExtension):
    """One AMQP connection per container that publishes RPC requests and replies.

    A managed thread is the connection's only reader: it connects, handles what the
    broker sends back (``basic.return`` of unroutable requests, heartbeats) and
    reconnects after a failure. Publishing takes a green lock, so concurrent workers never
    interleave frames; a publisher that hits a dead connection shuts its socket down (the
    reader then replaces the connection) and tries once more on the new one.
    """

    def __init__(self):
        self.conn = None
        self.channel = None
        self._lock = Semaphore(1)
        self._connected = Event()
        self._stopped = False
        self._reader = None
        self.returned = {}  # correlation id -> (sent at, fn(routing key)) if it comes back unroutable
        self._pruned = 0.0

    @property
    def amqp_uri(self):
        return config.get(AMQP_URI_CONFIG_KEY, DEFAULT_AMQP_URI)

    def start(self):
        try:
            self._connect()
        except Exception as exc:  # noqa: BLE001 - the reader keeps trying; publishers wait
            log.warning("rpc link: cannot connect yet (%s)", type(exc).__name__)
        self._reader = self.container.spawn_managed_thread(self._run, identifier="rpc.amqp_link")

    def stop(self):
        self._stopped = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.kill()
        conn, self.conn, self.channel = self.conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already gone
                _collect(conn)

    def kill(self):
        self.stop()

    # ---- connection (only the reader thread changes it after start) --------------------------
    def _connect(self):
        params = connection_params(self.amqp_uri)
        params["heartbeat"] = HEARTBEAT
        conn = PublishingConnection(**params)
        conn.connect()
        channel = conn.channel()
        channel.events["basic_return"].add(self._on_return)
        self.conn, self.channel = conn, channel
        if not self._connected.ready():
            self._connected.send(True)

    def _drop(self, conn):
        if self.conn is conn:
            self.conn = self.channel = None
            if self._connected.ready():
                self._connected.reset()
        _collect(conn)

    def _run(self):
        backoff = 0.5
        while not self._stopped:
            conn = self.conn
            if conn is None:
                try:
                    self._connect()
                    backoff = 0.5
                except Exception as exc:  # noqa: BLE001 - broker away: retry
                    log.warning("rpc link: cannot connect (%s); retrying in %.1fs", type(exc).__name__, backoff)
                    eventlet.sleep(backoff)
                    backoff = min(backoff * 2, 10)
                continue
            try:
                conn.drain_events(timeout=1)
                continue
            except socket.timeout:
                pass
            except Exception as exc:  # noqa: BLE001 - connection lost
                if not self._stopped:
                    log.warning("rpc link: connection lost (%s); reconnecting", type(exc).__name__)
                    self._drop(conn)
                continue
            try:
                conn.heartbeat_tick()
            except Exception:  # noqa: BLE001 - the broker stopped answering
                if not self._stopped:
                    self._drop(conn)

    def expect_return(self, correlation_id, callback):
        """Call ``callback(routing_key)`` if the request comes back unroutable. Entries of
        calls nobody waited for (a caller that gave up) are dropped after ``RETURN_TTL``."""
        now = time.monotonic()
        self.returned[correlation_id] = (now, callback)
        if len(self.returned) > 1000 and now - self._pruned > RETURN_TTL:
            self._pruned = now
            for cid, (at, _) in list(self.returned.items()):
                if now - at > RETURN_TTL:
                    self.returned.pop(cid, None)

    def _on_return(self, exc, exchange, routing_key, message):
        entry = self.returned.pop(message.properties.get("correlation_id"), None)
        if entry is not None:
            entry[1](routing_key)

    def _failed(self, channel):
        """A publish on ``channel`` failed: take it out of use and wake the reader."""
        if self.channel is channel and channel is not None:
            self.channel = None
            if self._connected.ready():
                self._connected.reset()
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except Exception:  # noqa: BLE001
                pass

    # ---- publishing --------------------------------------------------------------------------
    def publish(self, exchange, routing_key, body, *, mandatory=False, timeout=10.0, **properties):
        """Publish one message; tried once more on a new connection if the first try fails."""
        message = amqp.Message(body, **properties)
        for attempt in (1, 2):
            if not self._connected.ready():
                with eventlet.Timeout(timeout):
                    self._connected.wait()
            with self._lock:
                channel = self.channel
                try:
                    if channel is None:
                        raise ConnectionError("rpc link not connected")
                    channel.basic_publish(message, exchange=exchange, routing_key=routing_key, mandatory=mandatory)
                    return
                except Exception:  # noqa: BLE001
                    self._failed(channel)
                    if attempt == 2:
                        raise


def encode(payload, serializer):
    """``(content type, content encoding, body)`` as ``kombu.serialization.dumps`` gives
    them; plain JSON is encoded by orjson (:mod:`runtime.jsoncodec`), anything else, and
    every error, by kombu."""
    if serializer == "json":
        try:
            return "application/json", "utf-8", jsoncodec.plain(payload)
        except TypeError:
            pass  # a value of kombu's own types (its type markers), or one neither can encode
    return kombu.serialization.dumps(payload, serializer)


def _collect(conn):
    try:
        conn.collect()
    except Exception:  # noqa: BLE001
        pass


# ---- the client side ----------------------------------------------------------------------------

class ReplyListener(NamekoReplyListener):
    """nameko's reply listener, consuming without acknowledgements: a reply is useful
    only to the caller waiting for it now, so redelivering one buys nothing. Replies are
    decoded by :mod:`runtime.jsoncodec` (:mod:`runtime.consume`)."""

    class ReplyConsumer(NamekoReplyListener.ReplyConsumer, JsonConsumer):
        no_ack = True  # nameko's checks for lost replies, then the JSON consumer's consumer

    consumer_cls = ReplyConsumer

    def handle_message(self, body, message):
        waiter = self.pending.pop(message.properties.get("correlation_id"), None)
        if waiter is not None:
            waiter.send(body)


class ServiceRpc(NamekoServiceRpc):
    """``ServiceRpc("<service>")`` as nameko's, publishing through the container's
    :class:`AmqpLink`: no per-call declaration, no confirm wait."""

    link = AmqpLink()
    reply_listener = ReplyListener()

    def setup(self):
        # the reply listener defines its queue in its own setup, concurrently
        while self.reply_listener.queue is None:
            eventlet.sleep(0.01)
        self.exchange = get_rpc_exchange().name
        self.reply_to = self.reply_listener.queue.routing_key
        self.serializer = self.container.serializer

    def _publish(self, payload, *, routing_key, mandatory, correlation_id, extra_headers):
        content_type, content_encoding, body = encode(payload, self.serializer)
        if mandatory:
            service = routing_key.split(".", 1)[0]
            self.link.expect_return(correlation_id, lambda _key, cid=correlation_id: self._unroutable(cid, service))
        try:
            self.link.publish(
                self.exchange, routing_key, body, mandatory=mandatory, content_type=content_type,
                content_encoding=content_encoding, correlation_id=correlation_id, reply_to=self.reply_to,
                application_headers=extra_headers, delivery_mode=TRANSIENT,
            )
        except Exception:
            self.link.returned.pop(correlation_id, None)
            raise

    def _unroutable(self, correlation_id, service):
        waiter = self.reply_listener.pending.pop(correlation_id, None)
        if waiter is not None:
            waiter.send_exception(UnknownService(service))

    def _forget(self, correlation_id):
        self.link.returned.pop(correlation_id, None)

    def get_dependency(self, worker_ctx):
        client = Client(self._publish, self._register_for_reply, worker_ctx.context_data)
        return getattr(client, self.target_service)

    def _register_for_reply(self, correlation_id):
        wait = self.reply_listener.register_for_reply(correlation_id)

        def get_response():
            try:
                return wait()
            finally:
                self._forget(correlation_id)

        return get_response


# ---- the server side ----------------------------------------------------------------------------

class RpcConsumer(NamekoRpcConsumer):
    """nameko's RPC consumer, replying through the container's :class:`AmqpLink`;
    requests are decoded by :mod:`runtime.jsoncodec` (:mod:`runtime.consume`)."""

    consumer_cls = JsonConsumer
    link = AmqpLink()
    _by_key = None  # routing key -> entrypoint

    def register_provider(self, provider):
        self._by_key = None
        super().register_provider(provider)

    def unregister_provider(self, provider):
        self._by_key = None
        super().unregister_provider(provider)

    def get_provider_for_method(self, routing_key):
        """As nameko's lookup, from a table: nameko formats every entrypoint's routing key
        and compares, for each request."""
        by_key = self._by_key
        if by_key is None:
            service = self.container.service_name
            by_key = self._by_key = {f"{service}.{p.method_name}": p for p in self._providers}
        try:
            return by_key[routing_key]
        except KeyError:
            raise MethodNotFound(routing_key.split(".")[-1]) from None

    def handle_result(self, message, result, exc_info):
        error = None
        if exc_info is not None:
            error = serialize(exc_info[1])
        content_type = message.properties["content_type"]
        serializer = kombu.serialization.registry.type_to_name[content_type]
        try:  # as nameko: an unserializable result becomes an error, never a dead worker
            content_type, content_encoding, body = encode({"result": result, "error": error}, serializer)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            content_type, content_encoding, body = encode({"result": None, "error": error}, serializer)
        self.link.publish(
            self.queue.exchange.name, message.properties["reply_to"], body, content_type=content_type,
            content_encoding=content_encoding, correlation_id=message.properties.get("correlation_id"),
            delivery_mode=TRANSIENT,
        )
        self.consumer.ack_message(message)
        return result, exc_info


class Rpc(SignatureOnce, NamekoRpc):
    """nameko's ``@rpc`` entrypoint on :class:`RpcConsumer` (same queue, same wire format).

    nameko hands every request to a waiter thread that then spawns the worker, so that a
    full worker pool never blocks the consumer; here the worker is spawned at once when
    the pool has room, and only a request that finds the pool full takes the waiter."""

    rpc_consumer = RpcConsumer()

    def handle_message(self, body, message):
        if not isinstance(body, dict):
            return super().handle_message(body, message)
        try:
            args = body["args"]
            kwargs = body["kwargs"]
        except KeyError:
            raise MalformedRequest("Message missing `args` or `kwargs`")
        self.check_signature(args, kwargs)
        try:
            if not spawn_if_room(self, args, kwargs, decode_from_headers(message.headers),
                                 partial(self.handle_result, message)):
                return super().handle_message(body, message)  # a full pool: nameko's waiter thread
        except ContainerBeingKilled:
            self.rpc_consumer.consumer.requeue_message(message)


rpc = Rpc.decorator

__all__ = ["AmqpLink", "ReplyListener", "Rpc", "RpcConsumer", "ServiceRpc", "rpc"]
