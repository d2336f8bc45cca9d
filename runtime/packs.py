"""Several events in one AMQP message: a pack.

On the wire an event is its envelope, a JSON object, in a message of its own. When the
outbox relay has several events in a row for the same exchange and routing key, it may
send them as one message whose body is a JSON array of their envelopes, in outbox order.
A subscriber gets exactly the queues' worth of events it would get one by one (the
routing key is the same for every event of a pack), with the broker's and the consumer's
per-message work done once per pack: framing, routing, the quorum queue's log entry, the
delivery and the ack. A lone event is always sent on its own, so a quiet system's events
are the plain envelopes they always were.

Each event of a pack is still loaded, handled, logged and counted on its own (its own
inbox row, in its own savepoint: :mod:`runtime.messaging`). What a pack shares is its
fate at the broker: it is acked when all its events are done (handled, or already
handled before), returned to its queue when any of them failed and may succeed later
(the ones done are then no-ops on the next delivery), and dead-lettered when any is
refused for good while none waits for a retry. ``python -m runtime.deadletters`` lists
the events inside a dead-lettered pack one by one.

``EVENT_PACK`` (config, default 8) caps the events of one pack; ``EVENT_PACK: 1`` sends
every event in a message of its own. A pack also stays under ``MAX_PACK_BYTES``. The cap
bounds what a subscriber holds: the broker pushes it ``EVENT_PREFETCH`` messages (64),
so up to 512 events at the default, against 64 without packs.
"""
DEFAULT_PACK = 8  # events per message at most: a subscriber holds up to EVENT_PREFETCH messages' worth
MAX_PACK_BYTES = 256 * 1024  # a pack's body; far below the broker's message size limit


def group(messages, size, max_bytes=MAX_PACK_BYTES):
    """``messages``, a list of ``(routing_key, body_bytes, item)`` in the order to send,
    cut into packs: runs of consecutive messages with the same routing key, at most
    ``size`` of them and ``max_bytes`` of bodies in all. Order is kept within and across
    packs."""
    packs = []
    current, key, used = None, None, 0
    for routing_key, body, item in messages:
        if current is not None and routing_key == key and len(current) < size \
                and used + len(body) + 1 <= max_bytes:
            current.append((body, item))
            used += len(body) + 1
            continue
        current, key, used = [(body, item)], routing_key, len(body) + 2
        packs.append(current)
    return packs


def body(bodies):
    """The message body of a pack: one envelope as it is, several as a JSON array."""
    if len(bodies) == 1:
        return bodies[0]
    return b"[" + b",".join(bodies) + b"]"


def envelopes(decoded):
    """The envelopes a decoded message body carries: one, or each of a pack's."""
    return decoded if isinstance(decoded, list) else [decoded]
