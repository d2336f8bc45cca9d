"""nameko's consumer, with JSON message bodies decoded by :mod:`runtime.jsoncodec`.

kombu decodes a JSON body with the json module and a Python object hook called for every
object, for kombu's own type markers, which the suite's messages never carry (a 2.2 KB
event: 18 µs; the json module alone 14 µs, ``runtime.jsoncodec`` 7 µs, ``python -m
bench.micro``). Here the kombu consumer hands over the message undecoded (``on_message``)
and :func:`json_body` decodes it. A body of another content type is still decoded by
kombu, which refuses the types not accepted.

py-amqp decodes every body with a ``content_encoding`` to text when the message arrives
(a channel's ``auto_decode``); the JSON decoder wants the bytes, and encoded the text back
to them. The consumer's channel leaves the body as the bytes that came (``python -m
bench.micro``, "JSON", decoding a pack of seven events from bytes and from text).
"""
from nameko.amqp.consume import Consumer

from . import jsoncodec


def json_body(message):
    """The message's body: by :mod:`runtime.jsoncodec` if it is JSON, else as kombu decodes it."""
    if message.content_type == "application/json":
        return jsoncodec.loads(message.body)
    return message.decode()


class JsonConsumer(Consumer):
    """nameko's consumer; its callbacks get the body as :func:`json_body` decodes it."""

    no_ack = False  # True: the broker forgets a message once it is sent (RPC replies)

    def get_consumers(self, consumer_cls, channel):
        channel.auto_decode = False  # bodies stay bytes (the module's docstring)
        consumer = consumer_cls(queues=self.queues, on_message=self.on_raw_message, accept=self.accept,
                                no_ack=self.no_ack, **self.consumer_options)
        consumer.qos(prefetch_count=self.prefetch_count)
        return [consumer]

    def on_raw_message(self, message):
        self.on_message(json_body(message), message)
