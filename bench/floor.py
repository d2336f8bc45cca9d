"""The broker's own floor, measured with plain kombu/amqp (no nameko, no eventlet).

* ``round_trip``: a request/reply round trip over one reused connection and one reused
  reply queue, to a responder in another process (``python -m bench.floor responder``).
* ``confirmed_delivery``: publish one message with publisher confirms to a quorum queue
  until the consumer in the responder process has it (one-way; the consumer stamps the
  moment it received the message and sends the stamp back out of band).
* ``publish_rate_sync``: publishes with a confirm awaited after each message (what
  nameko's dispatcher does) to a quorum queue.
* ``publish_rate_async``: publishes with asynchronous confirms (a window of outstanding
  confirms) to a quorum queue.
* ``consume_rate``: one plain consumer process draining a quorum queue as the suite's
  subscribers do (their prefetch, decode each JSON body, ack each message): what one Python
  process does with events when it does nothing else with them.

Every figure of the suite is reported as a ratio to one of these, measured in the same run.
"""
import json
import os
import socket
import subprocess
import sys
import time
import uuid

import amqp
from kombu import Connection, Consumer, Exchange, Producer, Queue

#: the suite's subscriptions' prefetch (``runtime.messaging.DEFAULT_PREFETCH``; this process
#: imports no nameko, a unit test keeps the two equal)
PREFETCH = 64
RPC_QUEUE = "bench.floor.rpc"
QUORUM_QUEUE = "bench.floor.quorum"
BULK_QUEUE = "bench.floor.quorum-bulk"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def quorum_args():
    return {"x-queue-type": "quorum"}


# ---- the responder (runs in its own process) ---------------------------------------------

def responder(uri):
    """Answer RPC_QUEUE requests at once; stamp and answer QUORUM_QUEUE deliveries."""
    with Connection(uri, heartbeat=0) as conn:
        channel = conn.channel()
        producer = Producer(channel, exchange=Exchange(""), auto_declare=False)
        rpc_q = Queue(RPC_QUEUE, exchange=Exchange(""), routing_key=RPC_QUEUE, durable=False, auto_delete=False)
        quorum_q = Queue(QUORUM_QUEUE, exchange=Exchange(""), routing_key=QUORUM_QUEUE, durable=True,
                         queue_arguments=quorum_args())

        def on_rpc(body, message):
            producer.publish(message.body, routing_key=message.properties["reply_to"],
                             correlation_id=message.properties.get("correlation_id"),
                             serializer=None, content_type="application/json", content_encoding="utf-8",
                             delivery_mode=1, retry=False)
            message.ack()

        def on_quorum(body, message):
            received = time.time()
            producer.publish(json.dumps({"received": received}), routing_key=message.properties["reply_to"],
                             correlation_id=message.properties.get("correlation_id"),
                             content_type="application/json", content_encoding="utf-8", delivery_mode=1, retry=False)
            message.ack()

        c1 = Consumer(channel, queues=[rpc_q], callbacks=[on_rpc], accept=["json"])
        c1.qos(prefetch_count=16)
        c2 = Consumer(conn.channel(), queues=[quorum_q], callbacks=[on_quorum], accept=["json"])
        c2.qos(prefetch_count=16)
        with c1, c2:
            print("ready", flush=True)
            while True:
                try:
                    conn.drain_events(timeout=1)
                except socket.timeout:
                    pass


def start_responder(uri, log_path):
    """Start the responder process; returns the Popen once it consumes."""
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "bench.floor", "responder", uri], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    line = proc.stdout.readline()
    if not line.startswith(b"ready"):
        raise RuntimeError(f"floor responder did not start (see {log_path})")
    return proc


# ---- the client ------------------------------------------------------------------------------

class FloorClient:
    """One connection, one exclusive reply queue, reused for every request."""

    def __init__(self, uri):
        self.conn = Connection(uri, heartbeat=0)
        self.conn.connect()
        self.channel = self.conn.channel()
        self.reply_queue = Queue(f"bench.floor.reply-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True,
                                 durable=False)
        self.reply_queue(self.channel).declare()
        self.producer = Producer(self.channel, exchange=Exchange(""), auto_declare=False)
        self.replies = {}
        self.consumer = Consumer(self.channel, queues=[self.reply_queue], callbacks=[self._on_reply],
                                 accept=["json"], no_ack=True)
        self.consumer.consume()
        # a confirm-mode channel for the confirmed publishes (py-amqp's basic_publish_confirm)
        self.confirm_channel = self.conn.channel()
        Queue(QUORUM_QUEUE, durable=True, queue_arguments=quorum_args())(self.channel).declare()
        Queue(RPC_QUEUE, durable=False, auto_delete=False)(self.channel).declare()

    def _on_reply(self, body, message):
        self.replies[message.properties.get("correlation_id")] = (time.time(), body)

    def _wait(self, correlation_id, timeout=10.0):
        deadline = time.monotonic() + timeout
        while correlation_id not in self.replies:
            self.conn.drain_events(timeout=max(deadline - time.monotonic(), 0.001))
        return self.replies.pop(correlation_id)

    def round_trip(self, body):
        cid = uuid.uuid4().hex
        started = time.perf_counter()
        self.producer.publish(body, routing_key=RPC_QUEUE, reply_to=self.reply_queue.name, correlation_id=cid,
                              serializer=None, content_type="application/json", content_encoding="utf-8",
                              delivery_mode=1, retry=False)
        self._wait(cid)
        return time.perf_counter() - started

    def round_trip_rate(self, body, count, in_flight=16):
        """Requests per second with ``in_flight`` requests outstanding at any time."""
        outstanding = set()
        sent = done = 0
        started = time.perf_counter()
        while done < count:
            while sent < count and len(outstanding) < in_flight:
                cid = uuid.uuid4().hex
                self.producer.publish(body, routing_key=RPC_QUEUE, reply_to=self.reply_queue.name,
                                      correlation_id=cid, serializer=None, content_type="application/json",
                                      content_encoding="utf-8", delivery_mode=1, retry=False)
                outstanding.add(cid)
                sent += 1
            self.conn.drain_events(timeout=10)
            for cid in [c for c in outstanding if c in self.replies]:
                outstanding.discard(cid)
                self.replies.pop(cid)
                done += 1
        return count / (time.perf_counter() - started)

    def confirmed_delivery(self, body):
        """(one-way seconds until the consumer had it, seconds until the confirm came back)."""
        cid = uuid.uuid4().hex
        sent = time.time()
        self.confirm_channel.basic_publish_confirm(
            amqp.Message(body, delivery_mode=2, content_type="application/json", content_encoding="utf-8",
                         reply_to=self.reply_queue.name, correlation_id=cid),
            exchange="", routing_key=QUORUM_QUEUE)
        confirmed = time.time()
        _, reply = self._wait(cid)
        reply = json.loads(reply) if isinstance(reply, (str, bytes)) else reply
        return reply["received"] - sent, confirmed - sent

    def close(self):
        try:
            self.conn.release()
        except Exception:  # noqa: BLE001
            pass


def _amqp_connection(uri):
    from runtime.publisher import connection_params
    conn = amqp.Connection(**connection_params(uri))
    conn.connect()
    return conn


def publish_rate_sync(uri, body, count):
    """Messages per second, one confirm awaited per message, to a quorum queue."""
    conn = _amqp_connection(uri)
    try:
        ch = conn.channel()
        ch.queue_declare(BULK_QUEUE, durable=True, auto_delete=False, arguments=quorum_args())
        ch.queue_purge(BULK_QUEUE)
        started = time.perf_counter()
        for _ in range(count):
            # py-amqp's basic_publish_confirm waits for the broker's ack of this message
            ch.basic_publish_confirm(amqp.Message(body, delivery_mode=2, content_type="application/json"),
                                     exchange="", routing_key=BULK_QUEUE)
        elapsed = time.perf_counter() - started
        ch.queue_purge(BULK_QUEUE)
        return count / elapsed
    finally:
        conn.close()


def publish_rate_async(uri, body, count, window=1000, keep=False):
    """Messages per second with asynchronous confirms (up to ``window`` unconfirmed).
    With ``keep`` the messages stay in the queue (for :func:`consume_rate`)."""
    conn = _amqp_connection(uri)
    try:
        ch = conn.channel()
        ch.queue_declare(BULK_QUEUE, durable=True, auto_delete=False, arguments=quorum_args())
        ch.queue_purge(BULK_QUEUE)
        ch.confirm_select()
        state = {"acked": 0}

        def on_ack(tag, multiple):
            state["acked"] = max(state["acked"], tag)

        ch.events["basic_ack"].add(on_ack)
        started = time.perf_counter()
        for sent in range(1, count + 1):
            ch.basic_publish(amqp.Message(body, delivery_mode=2, content_type="application/json"),
                             exchange="", routing_key=BULK_QUEUE)
            while sent - state["acked"] >= window:
                conn.drain_events(timeout=10)
        while state["acked"] < count:
            conn.drain_events(timeout=10)
        elapsed = time.perf_counter() - started
        if not keep:
            ch.queue_purge(BULK_QUEUE)
        return count / elapsed
    finally:
        conn.close()


def consume_rate(uri, count, prefetch=PREFETCH, ack_every=1):
    """Messages per second one plain consumer takes from the quorum queue that
    ``publish_rate_async(..., keep=True)`` left ``count`` messages in: the suite's
    subscriptions' prefetch, each body decoded, each acked (the queue is empty afterwards).
    With ``ack_every`` n > 1, every n-th message (and the last) is acked with ``multiple``
    set, which settles those before it too (``runtime.acks``)."""
    conn = _amqp_connection(uri)
    try:
        ch = conn.channel()
        ch.basic_qos(0, prefetch, False)
        state = {"n": 0}

        def on_message(message):
            json.loads(message.body)
            state["n"] += 1
            if ack_every == 1:
                ch.basic_ack(message.delivery_tag)
            elif state["n"] % ack_every == 0 or state["n"] == count:
                ch.basic_ack(message.delivery_tag, multiple=True)

        started = time.perf_counter()
        ch.basic_consume(BULK_QUEUE, callback=on_message)
        while state["n"] < count:
            conn.drain_events(timeout=10)
        return count / (time.perf_counter() - started)
    finally:
        conn.close()


def cleanup(uri):
    conn = _amqp_connection(uri)
    try:
        ch = conn.channel()
        for name in (RPC_QUEUE, QUORUM_QUEUE, BULK_QUEUE):
            try:
                ch.queue_delete(name)
            except Exception:  # noqa: BLE001
                ch = conn.channel()
    finally:
        conn.close()


def acks(uri, count=20000, rounds=3):
    """One plain consumer's rate acking each message, and acking every 8th and every 32nd
    with ``multiple`` (a 2.2 KB body, as the suite's events), ``rounds`` times in turn."""
    body = json.dumps({"event_id": "0" * 32, "payload": {"summary": "政务信息化项目" * 100}},
                      ensure_ascii=False).encode("utf-8")
    try:
        for r in range(rounds):
            for every in (1, 8, 32):
                publish_rate_async(uri, body, count, keep=True)
                print(f"round {r + 1}: ack every {every:>2}: {consume_rate(uri, count, ack_every=every):,.0f} msg/s",
                      flush=True)
    finally:
        cleanup(uri)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "responder":
        sys.path.insert(0, ROOT)
        responder(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "acks":
        acks(sys.argv[2])
    else:
        print("usage: python -m bench.floor responder <amqp-uri>\n"
              "       python -m bench.floor acks <amqp-uri>   # one consumer, acks one by one and multiple")
        sys.exit(2)
