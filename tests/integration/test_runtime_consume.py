"""runtime.consume on the real RabbitMQ: a JSON message reaches its callback as the bytes
that were sent, decoded once, by runtime.jsoncodec."""
import eventlet
import pytest
from kombu import Connection, Exchange, Producer, Queue

from runtime.consume import JsonConsumer

pytestmark = pytest.mark.integration


class Recording(JsonConsumer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.got = eventlet.event.Event()

    def on_message(self, body, message):
        message.ack()
        self.got.send((body, message.body))


def test_a_json_body_arrives_as_the_bytes_sent_and_is_decoded_from_them(vhost_uri):
    queue = Queue("consume.json", exchange=Exchange("consume", type="direct"), routing_key="k")
    consumer = Recording(vhost_uri, queues=[queue], prefetch_count=1)
    runner = eventlet.spawn(consumer.run)
    try:
        consumer.wait_until_consumer_ready()
        sent = '{"项目":"政务云平台","金额":1250000,"code":"CD-2026-0001"}'.encode("utf-8")
        with Connection(vhost_uri) as conn:
            Producer(conn).publish(sent, exchange=queue.exchange, routing_key="k",
                                   content_type="application/json", content_encoding="utf-8")
        with eventlet.Timeout(10):
            body, raw = consumer.got.wait()
        assert raw == sent and isinstance(raw, bytes)  # not made text on the way
        assert body == {"项目": "政务云平台", "金额": 1250000, "code": "CD-2026-0001"}
    finally:
        consumer.should_stop = True
        runner.wait()
