"""One ``basic.ack`` for many messages of a subscription.

A subscription settles its messages a batch at a time (:mod:`runtime.messaging`). An ack
per message costs a frame and a socket write in the service, and a settle command in the
quorum queue's log on the broker. ``basic.ack`` with ``multiple`` set settles, in one frame,
every message of the channel up to a delivery tag (one plain consumer of a quorum queue
took 40–120% more messages a second acking every 8th or 32nd message so than acking each:
``python -m bench.floor acks``, bench/README.md, step 27).

The broker acks *every* unacked message of the channel up to that tag, so the window sends
it only for a tag below which each message of the channel is done with: acked here, or
dead-lettered or returned to the queue on its own. It keeps the channel's unsettled
messages in the order they came, which is the order of their tags:

* a message being handled is *busy*: the acks of the messages after it wait for it;
* a message waiting out its pause before it returns to the queue is *parked*: the acks of
  the messages after it do not wait for it (a pause lasts up to seconds), they are sent one
  by one;
* a message whose events are committed is *ready*. The ready messages before the first
  busy or parked one are acked by one ``multiple`` ack of the last of them.

A new channel (after a reconnect) numbers its deliveries from 1 again; the old channel's
unsettled messages went back to the queue when it closed, and the window forgets them.
"""
import collections

from amqp.exceptions import ConnectionError as AmqpConnectionError

BUSY, PARKED, READY = 0, 1, 2


class AckWindow:
    """The unsettled messages of one consuming channel, in the order of their tags."""

    __slots__ = ("channel", "_order", "_entries")

    def __init__(self):
        self.channel = None
        self._order = collections.deque()  # unsettled delivery tags, oldest first
        self._entries = {}  # delivery tag -> [state, message]

    def __len__(self):
        return len(self._order)

    def received(self, message):
        """``message`` came from the broker; it is busy until it is settled."""
        if message.channel is not self.channel:
            self.channel = message.channel
            self._order.clear()
            self._entries.clear()
        self._order.append(message.delivery_tag)
        self._entries[message.delivery_tag] = [BUSY, message]

    def ack(self, messages, parked=()):
        """Each of ``messages`` may be acked: now, or with the first ack that may cover it.
        Each of ``parked`` waits before it returns to the queue: the acks after it go on."""
        for state, some in ((READY, messages), (PARKED, parked)):
            for message in some:
                entry = self._entry(message)
                if entry is not None:
                    entry[0] = state
        self._flush()

    def reject(self, message, requeue):
        """Dead-letter ``message`` (or return it to the queue) on its own, then forget it."""
        entry = self._entry(message)
        _send(message.channel, message.reject, requeue=requeue)
        if entry is not None:  # only once the broker has it: a multiple ack must not cover it
            del self._entries[message.delivery_tag]
            self._order.remove(message.delivery_tag)
            self._flush()

    def _entry(self, message):
        if message.channel is not self.channel:
            return None  # a closed channel's message: the broker took it back
        return self._entries.get(message.delivery_tag)

    def _flush(self):
        """Ack what may be acked: the ready run at the front with one multiple ack, and the
        ready messages after a parked one (with nothing busy before them) one by one."""
        top = None
        alone = []
        parked = False
        for tag in self._order:
            state = self._entries[tag][0]
            if state == BUSY:
                break
            if state == PARKED:
                parked = True
            elif parked:
                alone.append(tag)
            else:
                top = tag
        if top is None and not alone:
            return
        last = None
        if top is not None:
            while self._order and self._order[0] <= top:
                last = self._entries.pop(self._order.popleft())[1]
        singles = []
        for tag in alone:
            self._order.remove(tag)
            singles.append(self._entries.pop(tag)[1])
        if last is not None:
            _send(self.channel, last.ack, multiple=True)
        for message in singles:
            _send(self.channel, message.ack)


def _send(channel, settle, **kwargs):
    """``settle(**kwargs)`` (an ack or a reject) unless ``channel``'s connection is gone: the
    broker then has the channel's unsettled messages back."""
    if channel.connection:
        try:
            settle(**kwargs)
        except AmqpConnectionError:  # it closed meanwhile
            pass
