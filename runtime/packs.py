"""Several events in one AMQP message: a pack.

On the wire an event is its envelope, a JSON object, in a message of its own. When one
batch of the outbox relay holds several events with the same routing key, it sends them
as one message whose body is a JSON array of their envelopes, in outbox order. Every queue
gets exactly the events it would get one by one, since all the events of a pack have the
same routing key, with the broker's and the consumer's per-message work done once per
pack: framing, routing, the quorum queue's log entry, the delivery and the ack. A lone
event is always sent on its own, so a quiet system's events are the plain envelopes they
always were.

Order. The events of one routing key leave in outbox order, within a pack and from one
pack to the next. Events of different keys in the same batch may leave in another order
than they were committed: ``[A1, B1, A2]`` goes out as ``[A1, A2]``, ``[B1]``. No
subscription can see that: each subscriber queue is bound to exactly one routing key,
without wildcards (``contracts.events.SUBSCRIPTIONS``; a test keeps it so), and two queues
are consumed independently anyway. A queue bound with a wildcard to several keys (an
archive tap, say) gets each key's events in order, but not the keys' interleaving.

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
    """``messages``, a list of ``(routing_key, body_bytes, item)`` in outbox order, cut
    into packs of messages with the same routing key, at most ``size`` of them and
    ``max_bytes`` of bodies in all. Each routing key's messages keep their order, within
    and across packs; packs come in the order of their first message."""
    packs, filling = [], {}  # routing key → [its last pack, that pack's bytes]
    for routing_key, body, item in messages:
        current = filling.get(routing_key)
        if current is not None and len(current[0]) < size and current[1] + len(body) + 1 <= max_bytes:
            current[0].append((body, item))
            current[1] += len(body) + 1
            continue
        pack = [(body, item)]
        filling[routing_key] = [pack, len(body) + 2]
        packs.append(pack)
    return packs


def body(bodies):
    """The message body of a pack: one envelope as it is, several as a JSON array."""
    if len(bodies) == 1:
        return bodies[0]
    return b"[" + b",".join(bodies) + b"]"


def envelopes(decoded):
    """The envelopes a decoded message body carries: one, or each of a pack's."""
    return decoded if isinstance(decoded, list) else [decoded]
