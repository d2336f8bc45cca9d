"""The outbox relay: publishes committed events, in order, with publisher confirms.

A row leaves the outbox (``published_at`` set) only after the broker confirmed it and
routed it to at least one queue. On a broker outage the rows wait; nothing is lost.
Several replicas may relay the same outbox: a row may then be published twice, which
the consumers' inbox turns into a no-op.
"""
import json
import logging
import threading
import time

from sqlalchemy import select, update

from .db import utcnow
from .publisher import ConfirmingPublisher

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, core, amqp_uri, *, batch_size=500, poll_interval=1.0, on_published=None):
        self.core = core
        self.amqp_uri = amqp_uri
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.exchange = f"{core.service_name}.events"
        self.publisher = ConfirmingPublisher(amqp_uri)
        self.on_published = on_published or (lambda rows: None)
        self._wake = threading.Event()
        self._stopped = False
        self.before_publish = []  # callbacks(publisher) run after each (re)connect
        self._connected_once = False
        core.after_commit.append(self.wake)

    def wake(self):
        self._wake.set()

    def stop(self):
        self._stopped = True
        self._wake.set()

    def run(self):
        backoff = 0.5
        while not self._stopped:
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stopped:
                break
            try:
                while not self._stopped and self.flush() >= self.batch_size:
                    pass
                backoff = 0.5
            except Exception as exc:  # broker or database trouble: keep rows, retry
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                self.publisher.close()
                self._connected_once = False
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
                self._wake.set()
        self.publisher.close()

    def _ensure_connected(self):
        if not self._connected_once or self.publisher.conn is None or not self.publisher.conn.connected:
            self.publisher.connect()
            self.publisher.declare_exchange(self.exchange)
            for callback in self.before_publish:
                callback(self.publisher)
            self._connected_once = True

    def flush(self):
        """Publish one batch of pending rows; returns how many rows were tried."""
        outbox = self.core.outbox
        with self.core.read() as session:
            rows = session.execute(
                select(outbox.c.id, outbox.c.event_id, outbox.c.routing_key, outbox.c.body, outbox.c.created_at,
                       outbox.c.event_type, outbox.c.correlation_id)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self.batch_size)
            ).all()
        if not rows:
            return 0
        self._ensure_connected()
        messages = [
            (self.exchange, row.routing_key, row.body.encode("utf-8"), row.event_id,
             {"correlation_id": row.correlation_id, "event_type": row.event_type})
            for row in rows
        ]
        delivered = self.publisher.publish_batch(messages)
        ids = [row.id for row in rows if row.event_id in delivered]
        if ids:
            now = utcnow()
            with self.core.transaction() as tx:
                for start in range(0, len(ids), 500):
                    tx.session.execute(
                        update(outbox).where(outbox.c.id.in_(ids[start:start + 500])).values(published_at=now)
                    )
            self.on_published([row for row in rows if row.event_id in delivered])
        if len(ids) < len(rows):
            # unroutable: nobody bound yet; wait for the poll to try again
            time.sleep(0.2)
            return 0
        return len(rows)

    def pending(self):
        """(count, age in seconds of the oldest unsent event) for metrics and health."""
        from sqlalchemy import func
        outbox = self.core.outbox
        with self.core.read() as session:
            count, oldest = session.execute(
                select(func.count(outbox.c.id), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
            ).one()
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        return count, max(age, 0.0)


def decode_body(body):
    return json.loads(body)
