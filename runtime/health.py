"""Readiness: the database answers and every AMQP consumer of this instance is consuming.

A consumer counts as consuming when its loop iterated within the last few seconds
(kombu's loop wakes at least once a second); when the broker drops the connection, the loop stops iterating
until kombu reconnects, so readiness fails and recovers with it.
"""
import time

from nameko.amqp.consume import Consumer as AmqpConsumer

STALE_SECONDS = 5.0


def watch_consumers(container):
    """Hook each consumer's loop so that readiness can see it iterate (idempotent)."""
    watched = []
    for ext in container.extensions:
        consumer = getattr(ext, "consumer", None)
        if not isinstance(consumer, AmqpConsumer):
            continue
        if not getattr(consumer, "_watched", False):
            consumer._watched = True
            consumer._last_iteration = time.monotonic() if consumer.ready.is_set() else 0.0

            def on_iteration(_c=consumer):
                _c._last_iteration = time.monotonic()

            ready_hook = consumer.on_consume_ready

            def on_consume_ready(connection, channel, consumers, _c=consumer, _h=ready_hook, **kw):
                _c._last_iteration = time.monotonic()
                return _h(connection, channel, consumers, **kw)

            consumer.on_iteration = on_iteration
            consumer.on_consume_ready = on_consume_ready
        watched.append((ext, consumer))
    return watched


def consumer_checks(container):
    now = time.monotonic()
    checks = []
    for ext, consumer in watch_consumers(container):
        fresh = (now - consumer._last_iteration) < STALE_SECONDS
        name = getattr(ext, "method_name", None) or type(ext).__name__
        checks.append({"check": f"consumer:{name}", "ok": bool(fresh)})
    return checks


def readiness(service_or_container):
    container = getattr(service_or_container, "container", service_or_container)
    checks = []
    from .dependencies import Database
    for dep in container.dependencies:
        if isinstance(dep, Database) and dep.core is not None:
            try:
                dep.core.ping()
                checks.append({"check": "database", "ok": True})
            except Exception as exc:
                checks.append({"check": "database", "ok": False, "error": type(exc).__name__})
    checks.extend(consumer_checks(container))
    return all(c["ok"] for c in checks), checks
