"""The benchmark's own AMQP client (plain kombu, no eventlet): nameko's RPC wire format over
one connection and one reply queue, many calls in flight at once, and taps on the
services' event exchanges. The bench drives the suite with it the way a unit's or an
officer's client would, without paying a new connection per call."""
import json
import socket
import time
import uuid

from kombu import Connection, Consumer, Exchange, Producer, Queue

from runtime.packs import envelopes

RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)


class RemoteError(Exception):
    def __init__(self, error):
        self.error = error
        super().__init__(f"{error.get('exc_type')}: {error.get('value')}")


class Client:
    def __init__(self, uri):
        self.uri = uri
        self.conn = Connection(uri, heartbeat=0)
        self.conn.connect()
        self.channel = self.conn.channel()
        self.routing_key = uuid.uuid4().hex
        self.reply_queue = Queue(f"bench.reply-{self.routing_key[:12]}", exchange=RPC_EXCHANGE,
                                 routing_key=self.routing_key, exclusive=True, auto_delete=True, durable=False)
        self.reply_queue(self.channel).declare()
        self.producer = Producer(self.channel, exchange=RPC_EXCHANGE, auto_declare=False)
        self.replies = {}
        self.callbacks = {}  # correlation id -> fn(result, error)
        self.consumers = [Consumer(self.channel, queues=[self.reply_queue], callbacks=[self._on_reply],
                                   accept=["json"], no_ack=True)]
        self.consumers[0].consume()

    # ---- RPC -----------------------------------------------------------------------------
    def _on_reply(self, body, message):
        cid = message.properties.get("correlation_id")
        callback = self.callbacks.pop(cid, None)
        if callback is not None:
            callback(body.get("result"), body.get("error"))
        else:
            self.replies[cid] = body

    def send(self, service, method, /, _callback=None, **kwargs):
        """Publish a request; returns its correlation id. ``callback(result, error)`` runs
        when the reply arrives (inside :meth:`poll`)."""
        cid = uuid.uuid4().hex
        if _callback is not None:
            self.callbacks[cid] = _callback
        self.producer.publish(
            json.dumps({"args": [], "kwargs": kwargs}), routing_key=f"{service}.{method}",
            reply_to=self.routing_key, correlation_id=cid, content_type="application/json",
            content_encoding="utf-8", delivery_mode=2, retry=False,
        )
        return cid

    def wait(self, cid, timeout=60.0):
        deadline = time.monotonic() + timeout
        while cid not in self.replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {cid} within {timeout}s")
            self.poll(remaining)
        body = self.replies.pop(cid)
        if body.get("error"):
            raise RemoteError(body["error"])
        return body.get("result")

    def call(self, service, method, /, _timeout=60.0, **kwargs):
        return self.wait(self.send(service, method, **kwargs), _timeout)

    def poll(self, timeout=0.05):
        """Handle whatever arrives within ``timeout`` seconds (replies, tapped events)."""
        try:
            self.conn.drain_events(timeout=timeout)
        except socket.timeout:
            return False
        return True

    # ---- events ----------------------------------------------------------------------------
    def tap(self, source, routing_keys, callback):
        """Copy ``source``'s events with these routing keys to ``callback(envelope)``.
        The tap is an exclusive queue of the bench's own; the services never see it."""
        exchange = Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False)
        name = f"bench.tap-{source}-{uuid.uuid4().hex[:8]}"
        queue = Queue(name, exchange=exchange, routing_key=routing_keys[0], exclusive=True, auto_delete=True,
                      durable=False)
        bound = queue(self.channel)
        bound.declare()
        for key in routing_keys[1:]:
            bound.bind_to(exchange, routing_key=key)

        def on_event(body, message):
            for envelope in envelopes(body if isinstance(body, (dict, list)) else json.loads(body)):
                callback(envelope)  # each event of a pack (runtime.packs)

        consumer = Consumer(self.channel, queues=[queue], callbacks=[on_event], accept=["json"], no_ack=True)
        consumer.consume()
        self.consumers.append(consumer)

    def close(self):
        try:
            self.conn.release()
        except Exception:  # noqa: BLE001
            pass
