"""runtime.acks on the real RabbitMQ: one ``multiple`` ack for a run of consecutive
messages, and never an ack, single or multiple, that covers a message still being handled
or waiting to return to the queue.

What the broker kept is read back by closing the consuming connection: every message it
still counts as unacked returns to the queue, where the test reads it."""
import random

import pytest
from kombu import Connection, Consumer, Queue

from runtime.acks import AckWindow
from tests.support.broker import wait_for

pytestmark = pytest.mark.integration

QUEUE = "acks.work"
DLX = "acks.dlx"
DEAD = "acks.dead"


def declare(channel):
    channel.exchange_declare(DLX, "fanout", durable=True, auto_delete=False)
    channel.queue_declare(DEAD, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(DEAD, DLX, routing_key="")
    channel.queue_declare(QUEUE, durable=True, auto_delete=False,
                          arguments={"x-queue-type": "quorum", "x-dead-letter-exchange": DLX})


class Delivered:
    """``count`` messages (bodies "0".."count-1") published and then taken by one consumer
    with a prefetch of all of them; each taken message is registered with a window, and
    every ack frame the channel sends is recorded (and sent)."""

    def __init__(self, uri, count):
        self.conn = Connection(uri)
        channel = self.conn.channel()
        declare(channel)
        channel.queue_purge(QUEUE)
        channel.queue_purge(DEAD)
        for index in range(count):
            message = channel.prepare_message(str(index).encode(), content_type="text/plain")
            channel.basic_publish(message, exchange="", routing_key=QUEUE)
        self.window = AckWindow()
        self.messages = []
        self.frames = []
        channel.basic_qos(0, count, False)
        real_ack = channel.basic_ack

        def recorded_ack(delivery_tag, multiple=False):
            self.frames.append((delivery_tag, multiple))
            return real_ack(delivery_tag, multiple=multiple)

        channel.basic_ack = recorded_ack

        def on_message(message):
            self.window.received(message)
            self.messages.append(message)

        self.consumer = Consumer(channel, queues=[Queue(QUEUE, no_declare=True)], on_message=on_message)
        self.consumer.consume()
        while len(self.messages) < count:
            self.conn.drain_events(timeout=5)
        assert [m.body for m in self.messages] == [str(i).encode() for i in range(count)]

    def at(self, *indexes):
        return [self.messages[i] for i in indexes]

    def unacked(self, expected):
        """Close the connection; the indexes of the messages the broker had not settled
        (once as many as ``expected`` are back in the queue)."""
        self.conn.close()
        return taken(self.conn.clone(), QUEUE, len(expected))


def taken(conn, name, count):
    """The indexes of the messages in queue ``name``, taken off it once it holds ``count``
    (a closed channel's messages and dead letters reach their queue shortly after)."""
    with conn:
        channel = conn.channel()
        wait_for(lambda: channel.queue_declare(name, passive=True).message_count == count,
                 message=f"{count} messages in {name}")
        bodies = []
        while (message := channel.basic_get(name, no_ack=True)) is not None:
            bodies.append(int(message.body))
        return sorted(bodies)


def test_batches_settled_in_order_take_one_ack_frame_each(vhost_uri):
    d = Delivered(vhost_uri, 30)
    for start in (0, 10, 20):
        d.window.ack(d.at(*range(start, start + 10)))
    assert d.frames == [(10, True), (20, True), (30, True)]
    assert len(d.window) == 0
    assert d.unacked([]) == []


def test_a_later_batch_waits_for_an_earlier_one_still_being_handled(vhost_uri):
    d = Delivered(vhost_uri, 20)
    d.window.ack(d.at(*range(10, 20)))
    assert d.frames == []  # an ack of 20 would settle 1..10 too, which are still busy
    d.window.ack(d.at(*range(0, 10)))
    assert d.frames == [(20, True)]
    assert d.unacked([]) == []


def test_nothing_busy_is_ever_acked(vhost_uri):
    d = Delivered(vhost_uri, 10)
    d.window.ack(d.at(0, 1, 2, 5, 6, 7))
    assert d.frames == [(3, True)]
    # 3 and 4 are busy, so 5..7 wait; the broker gives back the busy ones and the waiting ones
    assert d.unacked([3, 4, 5, 6, 7, 8, 9]) == [3, 4, 5, 6, 7, 8, 9]


def test_acks_after_a_parked_message_go_out_one_by_one_and_it_returns_alone(vhost_uri):
    d = Delivered(vhost_uri, 8)
    d.window.ack(d.at(0, 1, 2, 4, 5, 6, 7), parked=d.at(3))
    assert d.frames == [(3, True), (5, False), (6, False), (7, False), (8, False)]
    d.window.reject(d.messages[3], requeue=True)
    assert len(d.window) == 0
    assert d.unacked([3]) == [3]


def test_a_dead_lettered_message_is_never_covered_by_a_multiple_ack(vhost_uri):
    d = Delivered(vhost_uri, 6)
    d.window.reject(d.messages[2], requeue=False)
    d.window.ack(d.at(0, 1, 3, 4, 5))
    assert d.frames == [(6, True)]
    assert d.unacked([]) == []
    assert taken(Connection(vhost_uri), DEAD, 1) == [2]


def test_a_message_that_held_back_the_others_is_dead_lettered_before_they_are_acked(vhost_uri):
    d = Delivered(vhost_uri, 6)
    d.window.ack(d.at(1, 2, 3, 4, 5))
    assert d.frames == []
    d.window.reject(d.messages[0], requeue=False)
    assert d.frames == [(6, True)]
    assert d.unacked([]) == []
    assert taken(Connection(vhost_uri), DEAD, 1) == [0]


def test_a_message_of_a_closed_channel_is_left_to_the_broker(vhost_uri):
    d = Delivered(vhost_uri, 4)
    old = d.at(0, 1)
    assert d.unacked([0, 1, 2, 3]) == [0, 1, 2, 3]
    d.window.ack(old)  # its channel is gone: nothing is sent, nothing fails
    d.window.reject(old[0], requeue=False)
    assert d.frames == []


@pytest.mark.parametrize("seed", range(12))
def test_any_order_of_outcomes_acks_exactly_what_nothing_busy_holds_back(vhost_uri, seed):
    """Random outcomes settled in random groups, as batches of a subscription settle them.
    At a random point the connection closes: the broker gives back exactly the busy,
    parked and returned messages, and the ready ones behind a busy one; the dead-lettered
    ones are in the dead-letter queue."""
    rng = random.Random(seed)
    count = 16
    d = Delivered(vhost_uri, count)
    fates = {i: rng.choice(["ack", "ack", "ack", "dead", "retry"]) for i in range(count)}
    pending = list(range(count))
    rng.shuffle(pending)
    state = {i: "busy" for i in range(count)}
    stop = rng.randrange(count + 1)  # how many outcomes are settled before the connection closes
    parked_now = []
    settled = 0
    while pending and settled < stop:
        group = pending[:rng.randint(1, 4)]
        group = group[:stop - settled]
        del pending[:len(group)]
        settled += len(group)
        for i in group:
            if fates[i] == "dead":
                d.window.reject(d.messages[i], requeue=False)
                state[i] = "dead"
        d.window.ack(d.at(*[i for i in group if fates[i] == "ack"]),
                     parked=d.at(*[i for i in group if fates[i] == "retry"]))
        for i in group:
            if fates[i] != "dead":
                state[i] = "ready" if fates[i] == "ack" else "parked"
        parked_now += [i for i in group if fates[i] == "retry"]
        if parked_now and rng.random() < 0.5:  # a pause ends: the message returns
            i = parked_now.pop(rng.randrange(len(parked_now)))
            d.window.reject(d.messages[i], requeue=True)
            state[i] = "returned"
    busy = [i for i in range(count) if state[i] == "busy"]
    held = [i for i in range(count) if state[i] == "ready" and any(b < i for b in busy)]
    expected = sorted(busy + held + [i for i in range(count) if state[i] in ("parked", "returned")])
    # every frame names a message that was ready; what a multiple frame covered besides
    # is what the broker gives back (a busy or parked message covered would be missing,
    # and returning a parked one already acked would fail the channel)
    assert all(state[tag - 1] == "ready" for tag, multiple in d.frames)
    assert d.unacked(expected) == expected
    dead_letters = [i for i in range(count) if state[i] == "dead"]
    assert taken(Connection(vhost_uri), DEAD, len(dead_letters)) == dead_letters
