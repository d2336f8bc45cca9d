"""Readiness: the database answers and every AMQP consumer of this instance is consuming.

A consumer counts as consuming from the moment kombu has declared its consumers on a
connection (``on_consume_ready``) until its consume loop exits — the broker closed the
connection, the network dropped, the service is stopping — and as long as the loop keeps
iterating (kombu's loop wakes at least once a second; a loop silent for
``STALE_SECONDS`` is stuck). When the connection is lost, readiness fails at once and
recovers when kombu has reconnected and consumes again.
"""
import time

from nameko.amqp.consume import Consumer as AmqpConsumer

STALE_SECONDS = 5.0


def _watch(consumer):
    consumer._watched = True
    consumer._consuming = consumer.ready.is_set()
    consumer._last_iteration = time.monotonic() if consumer._consuming else 0.0

    def on_iteration(_c=consumer):
        _c._last_iteration = time.monotonic()

    ready_hook = consumer.on_consume_ready

    def on_consume_ready(connection, channel, consumers, _c=consumer, _h=ready_hook, **kw):
        _c._consuming = True
        _c._last_iteration = time.monotonic()
        return _h(connection, channel, consumers, **kw)

    consume = consumer.consume

    def consume_watched(*args, _c=consumer, _consume=consume, **kwargs):
        # kombu's run() calls consume() once per connection; when it returns or raises, the
        # connection is gone (or the consumer is stopping): not consuming until the next one
        try:
            yield from _consume(*args, **kwargs)
        finally:
            _c._consuming = False

    consumer.on_iteration = on_iteration
    consumer.on_consume_ready = on_consume_ready
    consumer.consume = consume_watched


def watch_consumers(container):
    """Hook each consumer's loop so that readiness can see it consume (idempotent).

    Called when the container starts (before the consumers' loops run) and again by each
    readiness check, for consumers created later.
    """
    watched = []
    for ext in container.extensions:
        consumer = getattr(ext, "consumer", None)
        if not isinstance(consumer, AmqpConsumer):
            continue
        if not getattr(consumer, "_watched", False):
            _watch(consumer)
        watched.append((ext, consumer))
    return watched


def consumer_checks(container):
    now = time.monotonic()
    checks = []
    seen = set()
    for ext, consumer in watch_consumers(container):
        if id(consumer) in seen:  # the RPC consumer is shared by every @rpc entrypoint
            continue
        seen.add(id(consumer))
        consuming = bool(getattr(consumer, "_consuming", False))
        fresh = (now - consumer._last_iteration) < STALE_SECONDS
        name = getattr(ext, "method_name", None) or type(ext).__name__
        check = {"check": f"consumer:{name}", "ok": consuming and fresh}
        if not consuming:
            check["error"] = "not connected"
        elif not fresh:
            check["error"] = "consume loop stalled"
        checks.append(check)
    return checks


def database_checks(container):
    from .dependencies import Database
    checks = []
    for dep in container.dependencies:
        if isinstance(dep, Database) and dep.core is not None:
            try:
                dep.core.ping()
                checks.append({"check": "database", "ok": True})
            except Exception as exc:
                checks.append({"check": "database", "ok": False, "error": type(exc).__name__})
    return checks


def readiness(service_or_container):
    """``(ok, checks)``: each check is ``{"check", "ok"[, "error"]}``."""
    container = getattr(service_or_container, "container", service_or_container)
    checks = database_checks(container) + consumer_checks(container)
    return all(c["ok"] for c in checks), checks
