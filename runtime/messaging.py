"""Event subscription with bounded retries and a dead-letter queue.

nameko's ``event_handler`` acks and drops a message whose handler fails, and its
``requeue_on_error`` redelivers in a hot loop. ``subscribe`` instead:

* consumes from a **quorum queue** with ``x-delivery-limit``; a failing message is
  returned to the queue after a growing pause, and after the limit the broker moves it
  to the service's dead-letter exchange ``<service>.dlx`` → queue
  ``<service>.dead-letters``, where ops can see and replay it (``runtime.deadletters``);
* loads the envelope and the payload through their contracts; a payload that does not
  fit is dead-lettered at once (retrying cannot fix it);
* takes a message that carries several events (a pack, :mod:`runtime.packs`) as those
  events, each loaded and handled on its own; the message is settled by the worst of its
  events' outcomes (a retry, then a refusal, then done);
* treats :class:`~runtime.db.AlreadyHandled` as success, so redeliveries are no-ops;
* hands the events that arrived together to one worker (``EVENT_BATCH``, at most 32 by
  default), which runs the handler once per event inside one database batch
  (:meth:`runtime.db.DatabaseCore.batch`): each event's transaction in its own savepoint,
  one commit for all, each message acked, dead-lettered or returned by its own event's
  outcome once that commit is done (the acks of consecutive messages as one,
  :mod:`runtime.acks`). ``EVENT_BATCH: 1`` gives each event its own worker.
"""
import contextlib
import functools
import logging
import sys
import time

from kombu import Exchange, Queue
from nameko import config

from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer, decode_from_headers

from contracts import ValidationFailed, load
from contracts.events import EnvelopeSchema, SUBSCRIPTIONS, queue_name, schema_for

from . import jsoncodec
from . import logs
from . import packs
from .acks import AckWindow
from .config import positive_int, setting
from .consume import JsonConsumer
from .db import AlreadyHandled, DatabaseCore, LockBusy
from .workers import spawn_if_room

log = logging.getLogger(__name__)

DEFAULT_DELIVERY_LIMIT = 5
DEFAULT_BATCH = 32  # events handled by one worker, in one transaction
# unacked messages per subscription: two batches' worth of single events, so one fills while one runs
DEFAULT_PREFETCH = 64


class Poison(Exception):
    """Raised by a handler for a message that retrying cannot fix (e.g. a forged
    signature): it is dead-lettered at once, not retried."""


def delivery_limit():
    return setting("DELIVERY_LIMIT", DEFAULT_DELIVERY_LIMIT, positive_int)


def event_fields(envelope):
    """The log fields of one event (see :mod:`runtime.logs`)."""
    return {"code": envelope.get("correlation_id"), "event_id": envelope.get("event_id"),
            "event": envelope.get("event_type")}


def queue_arguments(service_name, limit=None):
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": int(limit if limit is not None else delivery_limit()),
        "x-dead-letter-exchange": f"{service_name}.dlx",
    }


def event_exchange(source, passive=False):
    # passive when the broker's definitions own the topology: a subscriber may not
    # (re)declare another agency's exchange under per-agency credentials
    return Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False, passive=passive)


def dead_letter_names(service_name):
    return f"{service_name}.dlx", f"{service_name}.dead-letters"


def declare_dead_letters(channel, service_name):
    exchange, queue = dead_letter_names(service_name)
    channel.exchange_declare(exchange, "fanout", durable=True, auto_delete=False)
    channel.queue_declare(queue, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(queue, exchange, routing_key="")


def declare_subscription(channel, source, event_type, routing_key, subscriber, method, limit=None):
    """Declare one subscriber queue and its binding on a raw amqp channel."""
    declare_dead_letters(channel, subscriber)
    channel.exchange_declare(f"{source}.events", "topic", durable=True, auto_delete=False)
    name = queue_name(source, event_type, subscriber, method)
    channel.queue_declare(name, durable=True, auto_delete=False, arguments=queue_arguments(subscriber, limit))
    channel.queue_bind(name, f"{source}.events", routing_key=routing_key)


def declare_topology_for_publisher(publisher, source, limit=None):
    """Declare every queue that listens to ``source``'s events, so none is unroutable."""
    for sub in SUBSCRIPTIONS:
        if sub[0] == source:
            declare_subscription(publisher.channel, *sub, limit=limit)


def load_envelope(raw):
    """An event as decoded from its message, loaded through the envelope's contract and its
    payload through the event's. The decoded data is this load's to keep: where it already
    is what the load gives, it is taken as it is (``contracts.load(..., in_place=True)``)."""
    envelope = load(EnvelopeSchema, raw, in_place=True)
    envelope["payload"] = load(schema_for(envelope["event_type"]), envelope["payload"], in_place=True)
    return envelope


# a message's fate, by the worst of its events' outcomes
_ACK, _DEAD, _RETRY = 0, 1, 2


class _EventConsumer(JsonConsumer):
    """The JSON consumer, handing the entrypoint each message undecoded: the entrypoint
    decodes it, and dead-letters a message that is not JSON. Its messages are settled
    through its :class:`~runtime.acks.AckWindow`: one ack for many where it may."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.window = AckWindow()

    def on_raw_message(self, message):
        self.window.received(message)
        self.on_message(None, message)

    # nameko's settling, through the window: an ack or a requeue sent past it would leave
    # it waiting for a message the broker no longer holds
    def ack_message(self, message):
        self.window.ack([message])

    def requeue_message(self, message):
        self.window.reject(message, requeue=True)


class _Delivery:
    """One message from the broker: how many of its events have no outcome yet, and the
    worst outcome so far (an event refused when it was loaded counts as dead)."""

    __slots__ = ("message", "pending", "fate")

    def __init__(self, message):
        self.message = message
        self.pending = 0
        self.fate = _ACK


class _Item:
    """One event of a batch: its envelope and the message it came in, then its outcome
    and time."""

    __slots__ = ("envelope", "delivery", "exc_info", "elapsed")

    def __init__(self, envelope, delivery):
        self.envelope = envelope
        self.delivery = delivery
        self.exc_info = None
        self.elapsed = 0.0


class _Spoiled(Exception):
    """An event failed in a trusting batch: the batch is rolled back and runs again."""


def _never():
    return False


class EventBatch:
    """Events handed to one worker. Until the worker starts (``claimed``), events that
    arrive join it; the worker handles them one after another in one database batch. The
    events of a pack always join the same batch."""

    __slots__ = ("entrypoint", "items", "claimed", "committed")

    def __init__(self, entrypoint):
        self.entrypoint = entrypoint
        self.items = []
        self.claimed = False
        self.committed = 0  # the first events, whose work was committed in an earlier batch

    def run(self, service, handler):
        """Call ``handler(service, envelope)`` for each event; each event's exception is
        kept on its item. Raises only what fails the batch as a whole (its commit).

        On PostgreSQL an event whose unit would wait for a row lock while the batch holds
        locks (:class:`runtime.db.LockBusy`) ends the batch there: the events before it are
        committed, and it runs again first in a new batch. That relies on what every
        handler does anyway: all of an event's work in its one ``transaction(event=…)``,
        whose inbox row makes a second run a no-op."""
        self.claimed = True
        core = self.entrypoint.database()
        # first a trusting batch, without a savepoint per event where the database allows it
        # (runtime.db.DatabaseCore.batch: SQLite); if an event spoils it, the batch is rolled
        # back whole and runs again with a savepoint per event
        trusting = True
        while self.committed < len(self.items):
            try:
                with core.batch(trusting=trusting) if core is not None else contextlib.nullcontext():
                    end = self._run_from(self.committed, service, handler,
                                         core.batch_spoiled if core is not None else _never)
            except _Spoiled:
                trusting = False
                continue
            self.committed = end

    def _run_from(self, start, service, handler, spoiled):
        """Handle the events from ``start`` on; the index of the event that found its lock
        busy, or the number of events. Raises :class:`_Spoiled` as soon as ``spoiled()``
        says an event has spoiled the trusting batch it runs in."""
        for index in range(start, len(self.items)):
            item = self.items[index]
            logs.update_context(**event_fields(item.envelope))
            item.exc_info = None
            started = time.perf_counter()
            try:
                handler(service, item.envelope)
            except Exception as exc:  # noqa: BLE001 - this event's outcome, settled after the commit
                if spoiled():
                    raise _Spoiled() from None
                if isinstance(exc, LockBusy) and index > start:  # (a batch's first unit may wait)
                    log.info("event waits for a lock another transaction holds; "
                             "the batch commits first and runs it again")
                    return index
                item.exc_info = sys.exc_info()
                if not isinstance(exc, self.entrypoint.expected_exceptions):
                    log.error("error handling event: %s", exc, exc_info=item.exc_info)
            finally:
                item.elapsed = time.perf_counter() - started
            if spoiled():  # the handler went on after its unit failed
                raise _Spoiled()
        return len(self.items)

    def outcomes(self, exc_info=None):
        """``(item, exc_info)`` for each event; ``exc_info`` of the whole batch stands for
        every event that did not fail on its own and was not committed before it."""
        return [(item, item.exc_info or (exc_info if index >= self.committed else None))
                for index, item in enumerate(self.items)]


class Subscribe(Consumer):
    """``@subscribe(source, event_type, routing_key=None)``: the handler gets the envelope
    dict with ``payload`` loaded through the event's contract."""

    consumer_cls = _EventConsumer

    def __init__(self, source, event_type, routing_key=None, **kwargs):
        self.source = source
        self.event_type = event_type
        self.routing_key = routing_key or event_type
        self.batch_max = None  # config EVENT_BATCH, read in setup
        self._open = None  # the batch events join until its worker starts
        self._core = None
        # a duplicate is a success, not an error to log with a stack trace
        kwargs.setdefault("expected_exceptions", (AlreadyHandled, Poison))
        super().__init__(queue=None, requeue_on_error=True, **kwargs)

    @classmethod
    def decorator(cls, *args, **kwargs):
        register = super().decorator(*args, **kwargs)

        def decorate(fn):
            @functools.wraps(fn)
            def handler(self, event):
                if isinstance(event, EventBatch):
                    return event.run(self, fn)
                return fn(self, event)
            return register(handler)

        return decorate

    def setup(self):
        service = self.container.service_name
        known = [s for s in SUBSCRIPTIONS
                 if s[:4] == (self.source, self.event_type, self.routing_key, service) and s[4] == self.method_name]
        if not known:
            raise RuntimeError(
                f"subscription {self.source}.{self.event_type} → {service}.{self.method_name} "
                "is not listed in contracts.events.SUBSCRIPTIONS"
            )
        self.batch_max = setting("EVENT_BATCH", DEFAULT_BATCH, positive_int)
        self.consumer_options.setdefault(
            "prefetch_count", setting("EVENT_PREFETCH", DEFAULT_PREFETCH, positive_int))
        dlx_name, dlq_name = dead_letter_names(service)
        dlx = Exchange(dlx_name, type="fanout", durable=True, auto_delete=False)
        self.dead_letter_queue = Queue(dlq_name, exchange=dlx, routing_key="", durable=True,
                                       queue_arguments={"x-queue-type": "quorum"})
        self.queue = Queue(
            queue_name(self.source, self.event_type, service, self.method_name),
            exchange=event_exchange(self.source, passive=not config.get("DECLARE_TOPOLOGY", True)),
            routing_key=self.routing_key,
            durable=True,
            queue_arguments=queue_arguments(service),
        )
        super().setup()

    def database(self):
        """The service's database (its ``runtime.dependencies.Database``), if it has one."""
        if self._core is None:
            self._core = next((dep.core for dep in self.container.dependencies
                               if isinstance(getattr(dep, "core", None), DatabaseCore)), None)
        return self._core

    def start(self):
        # declare the dead-letter queue before consuming so nothing dead-letters into the void
        from kombu import Connection
        with Connection(self.amqp_uri) as conn:
            self.dead_letter_queue.bind(conn.default_channel).declare()
        super().start()

    def handle_message(self, body, message):
        try:
            if message.content_type != "application/json":
                raise ValueError(f"content type {message.content_type!r} is not application/json")
            decoded = jsoncodec.loads(message.body)
        except ValueError as exc:
            log.error("event refused, not JSON; dead-lettered: %s", exc,
                      extra={"event": self.event_type, "source": self.source})
            self._dead_letter(message)
            return
        delivery = _Delivery(message)
        items = []
        for raw in packs.envelopes(decoded):
            try:
                envelope = load_envelope(raw)
            except (ValidationFailed, KeyError, ValueError) as exc:
                log.error("event refused by its contract; dead-lettered: %s", exc,
                          extra={"event": self.event_type, "source": self.source})
                delivery.fate = _DEAD
                continue
            items.append(_Item(envelope, delivery))
        if not items:
            self._dead_letter(message)
            return
        delivery.pending = len(items)
        if self.batch_max == 1:  # a worker and a commit for each event, a pack's too
            for item in items:
                self._spawn((item.envelope,), functools.partial(self._handle_one, item), message)
            return
        batch = self._open
        if batch is None or batch.claimed or len(batch.items) >= self.batch_max:
            batch = self._open = EventBatch(self)
            batch.items.extend(items)
            self._spawn((batch,), functools.partial(self._handle_batch, batch), message)
        else:
            batch.items.extend(items)

    def _spawn(self, args, handle_result, message):
        """As nameko's Consumer, except while the container is being killed: nameko then
        requeues the message, and the quorum queue counts every such requeue against the
        delivery limit, dead-lettering messages no handler ever failed. Left unacked, the
        message returns once, when the dying connection closes. A worker is spawned at
        once when the pool has room; only when it is full does a thread wait for room."""
        context_data = decode_from_headers(message.headers)
        try:
            if spawn_if_room(self, args, {}, context_data, handle_result):
                return
        except ContainerBeingKilled:
            return

        def spawn_worker():
            try:
                self.container.spawn_worker(self, args, {}, context_data=context_data,
                                            handle_result=handle_result)
            except ContainerBeingKilled:
                pass

        self.container.spawn_managed_thread(
            spawn_worker, identifier=f"Subscribe.wait_for_worker_pool[{self.container.service_name}.{self.method_name}]")

    def kill(self):
        self.consumer.should_stop = True
        super().kill()

    def _dead_letter(self, message):
        self.consumer.window.reject(message, requeue=False)

    def _handle_one(self, item, worker_ctx, result=None, exc_info=None):
        self._settle([(item, exc_info)])
        return result, exc_info

    def _handle_batch(self, batch, worker_ctx, result=None, exc_info=None):
        self._settle(batch.outcomes(exc_info))
        return result, exc_info

    def _settle(self, outcomes):
        """Ack, dead-letter or return each message once all its events have an outcome:
        back to the queue if one of them failed (after one growing pause: no hot loop),
        else dead-lettered if one was refused, else acked."""
        done = []
        for item, exc_info in outcomes:
            fields = event_fields(item.envelope)
            delivery = item.delivery
            if exc_info is None or isinstance(exc_info[1], AlreadyHandled):
                if exc_info is not None:
                    log.info("duplicate event ignored", extra=fields)
                fate = _ACK
            elif isinstance(exc_info[1], Poison):
                log.error("event refused and dead-lettered: %s", exc_info[1], extra=dict(fields, source=self.source))
                fate = _DEAD
            else:
                log.warning("event handler failed (delivery %d): %s", _deliveries(delivery.message) + 1,
                            exc_info[1], extra=dict(fields, source=self.source))
                fate = _RETRY
            delivery.fate = max(delivery.fate, fate)
            delivery.pending -= 1
            if delivery.pending == 0:
                done.append(delivery)
        acks, retry = [], []
        for delivery in done:
            if delivery.fate == _ACK:
                acks.append(delivery.message)
            elif delivery.fate == _DEAD:
                self._dead_letter(delivery.message)
            else:
                retry.append(delivery.message)
        self.consumer.window.ack(acks, parked=retry)
        if retry:
            time.sleep(min(0.2 * (2 ** max(_deliveries(message) for message in retry)), 5.0))
            for message in retry:
                self.consumer.requeue_message(message)


def _deliveries(message):
    """How many times the broker delivered ``message`` before."""
    return int(message.headers.get("x-delivery-count", 0) or 0)


subscribe = Subscribe.decorator
