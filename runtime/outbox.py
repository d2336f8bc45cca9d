"""The outbox relay: publishes committed events, in order (for each routing key:
:mod:`runtime.packs`), with publisher confirms.

A row leaves the outbox (``published_at`` set) only after the broker confirmed it and
routed it to at least one queue. A batch's rows with the same routing key go out
together, several events in one message (:mod:`runtime.packs`). On a broker outage the
rows wait; nothing is lost. Several replicas may relay the same outbox: a row may then be
published twice, which the consumers' inbox turns into a no-op.

Confirmed rows are marked sent a little later (``mark_delay``, config
``OUTBOX_MARK_SECONDS``, 0.05 s by default), the confirms of that time in one write: the
write (a synced commit on SQLite) then stays off the path of the event just published,
whose subscriber is working on the same CPUs at that moment (bench/README.md, step 31),
and a stream of small commits costs one mark per interval instead of one per confirm. A
full batch's rows are marked at once, and so is every row before the relay reads the table
(on PostgreSQL, at the next commit's wake) and when it stops. A crash in between publishes
those rows again, with their ids: the subscribers' inbox makes that a no-op, as for any
redelivery.

Two ways in. The table is the truth: the relay scans it for unsent rows, oldest first,
when it starts, after any failure, on every poll, and (on PostgreSQL) whenever a commit
wakes it. On SQLite a commit also hands its events to the relay in memory
(``DatabaseCore.committed``), and while the relay knows the table holds nothing older, it
publishes those at once without reading them back — the scan would only return the same
rows, a read later. SQLite's single writer makes the hand-over order the commit order
(the next writer cannot start before the callbacks ran); PostgreSQL's concurrent commits
give no such order, so there the scan keeps deciding. Any doubt (a failure, a full batch,
the relay far behind) sends the relay back to scanning until the table is drained.
"""
import collections
import logging
import threading
import time

from sqlalchemy import LargeBinary, bindparam, cast, func, select, update

from . import jsoncodec, packs
from .db import OutboxRecord, utcnow
from .publisher import ConfirmingPublisher

log = logging.getLogger(__name__)

RECENT = 20000  # ids published by a scan, remembered so the fast path does not repeat them
DEFAULT_MARK_SECONDS = 0.05  # OUTBOX_MARK_SECONDS: how long confirmed rows wait to be marked sent


class OutboxRelay:
    def __init__(self, core, amqp_uri, *, batch_size=500, poll_interval=1.0, on_published=None,
                 pack_size=packs.DEFAULT_PACK, mark_delay=DEFAULT_MARK_SECONDS):
        self.core = core
        self.pack_size = pack_size
        self.amqp_uri = amqp_uri
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.mark_delay = mark_delay
        self._unmarked = []  # ids the broker confirmed, not yet marked sent in the table
        self._mark_due = 0.0  # monotonic time by which they are marked
        self.exchange = f"{core.service_name}.events"
        self.publisher = ConfirmingPublisher(amqp_uri)
        self.on_published = on_published or (lambda rows: None)
        self._wake = threading.Event()
        self._stopped = False
        self._mark_when_stopped = True
        self.before_publish = []  # callbacks(publisher) run after each (re)connect
        self._connected_once = False
        self._fresh = collections.deque()  # records committed since the table was last drained
        self._backlog = True  # the table may hold unsent rows that are not in _fresh
        self._hand_over = core.is_sqlite  # see the module docstring
        self._recent = collections.OrderedDict()
        outbox = core.outbox
        # the body as the message's bytes: SQLite gives a text column's UTF-8 bytes as they
        # are stored (CAST AS BLOB), instead of text that would be encoded back
        body = cast(outbox.c.body, LargeBinary).label("body") if core.is_sqlite else outbox.c.body
        self._scan = (
            select(outbox.c.event_id, outbox.c.routing_key, body, outbox.c.event_type, outbox.c.correlation_id)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.id)
            .limit(batch_size)
        )
        self._mark = update(outbox).where(outbox.c.event_id.in_(bindparam("ids", expanding=True))).values(
            published_at=bindparam("now"))
        core.committed.append(self.enqueue)

    def enqueue(self, records):
        """A commit's events (called after the commit); the relay is woken."""
        if self._hand_over:
            if len(self._fresh) > 10 * self.batch_size:
                # far behind (e.g. the broker is away): the table has them all; scan until drained
                self._fresh.clear()
                self._backlog = True
            self._fresh.extend(records)
        self._wake.set()
        time.sleep(0)  # let the relay publish now, before the committing worker goes on

    def wake(self):
        self._wake.set()

    def stop(self, mark=True):
        """Stop the relay. With ``mark``, the rows the broker confirmed are marked sent now
        (the container may kill the relay's thread before it wakes); a kill passes
        ``mark=False`` and leaves them to be published again."""
        self._stopped = True
        self._mark_when_stopped = mark
        self._wake.set()
        if mark:
            self._mark_at_stop()

    def run(self):
        backoff = 0.5
        while not self._stopped:
            wait = self.poll_interval
            if self._unmarked:
                wait = min(wait, max(self._mark_due - time.monotonic(), 0.0))
            woken = self._wake.wait(wait)
            self._wake.clear()
            if self._stopped:
                break
            try:
                if not woken:
                    if self._marks_due():
                        self._mark_sent()  # woken for the marks; the poll waits its turn
                        continue
                    self._backlog = True  # a poll: look at the table (other replicas, anything missed)
                while not self._stopped and self.flush() >= self.batch_size:
                    pass
                backoff = 0.5
            except Exception as exc:  # broker or database trouble: keep rows, retry
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                self._backlog = True
                self.publisher.close()
                self._connected_once = False
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
                self._wake.set()
        if self._mark_when_stopped:
            self._mark_at_stop()
        self.publisher.close()

    def _ensure_connected(self):
        if not self._connected_once or self.publisher.conn is None or not self.publisher.conn.connected:
            self.publisher.connect()
            self.publisher.declare_exchange(self.exchange)
            for callback in self.before_publish:
                callback(self.publisher)
            self._connected_once = True

    def flush(self):
        """Publish one batch of pending events; returns how many were tried."""
        if self._backlog or not self._hand_over:
            return self._flush_table()
        return self._flush_fresh()

    def _flush_table(self):
        self._mark_sent()  # the scan must not find rows the broker already has
        fresh_before = len(self._fresh)
        rows = self._read_unsent()
        if len(rows) < self.batch_size:
            # the table is drained by this batch: what was committed before the scan is in
            # ``rows`` (or was sent before), what is committed after it arrives in ``_fresh``
            self._backlog = False
            for _ in range(fresh_before):
                self._fresh.popleft()
        if not rows:
            return 0
        sent = self._publish(rows)
        for row in rows:
            if row.event_id in sent:
                self._remember(row.event_id)
        if len(sent) < len(rows):
            self._backlog = True
            # unroutable: nobody bound yet; wait for the poll to try again
            time.sleep(0.2)
            return 0
        return len(rows)

    def _read_unsent(self):
        """The oldest unsent rows, as records (a named tuple's fields are read faster than
        a result row's) whose bodies are the messages' bytes: on SQLite as stored, and
        PostgreSQL's text encoded here."""
        with self.core.read() as conn:
            result = conn.execute(self._scan)
            if self.core.is_sqlite:
                return [OutboxRecord._make(row) for row in result]
            return [OutboxRecord(event_id, key, body.encode("utf-8"), event_type, code)
                    for event_id, key, body, event_type, code in result]

    def _flush_fresh(self):
        records = []
        while self._fresh and len(records) < self.batch_size:
            record = self._fresh.popleft()
            if self._recent.pop(record.event_id, None) is None:
                records.append(record)
        if not records:
            return 0
        try:
            sent = self._publish(records)
        except Exception:
            self._fresh.clear()  # they are in the table; the scan takes over
            raise
        if len(sent) < len(records):
            self._fresh.clear()
            self._backlog = True
            time.sleep(0.2)
            return 0
        return len(records)

    def _publish(self, rows):
        """Publish ``rows`` (records), those with the same routing key in packs
        (:mod:`runtime.packs`); mark and count the ones delivered."""
        self._ensure_connected()
        groups = packs.group([(row.routing_key, row.body, row) for row in rows], self.pack_size)
        messages = []
        for group in groups:
            first = group[0][1]
            headers = {"event_type": first.event_type}
            if len(group) == 1:
                headers["correlation_id"] = first.correlation_id
            else:
                headers["events"] = len(group)
            messages.append((self.exchange, first.routing_key, packs.body([body for body, _ in group]),
                             first.event_id, headers))
        delivered = self.publisher.publish_batch(messages)  # a pack is known by its first event's id
        sent = [row for group in groups if group[0][1].event_id in delivered for _, row in group]
        if sent:
            self.on_published(sent)
            if not self._unmarked:
                self._mark_due = time.monotonic() + self.mark_delay
            self._unmarked.extend(row.event_id for row in sent)
            if len(self._unmarked) >= self.batch_size or self._marks_due():
                self._mark_sent()
        return {row.event_id for row in sent}

    def _marks_due(self):
        return bool(self._unmarked) and time.monotonic() >= self._mark_due

    def _mark_sent(self):
        """Mark the confirmed rows sent, in one transaction; on failure they stay to mark."""
        ids, self._unmarked = self._unmarked, []
        if not ids:
            return
        try:
            now = utcnow()
            with self.core.transaction() as tx:
                for start in range(0, len(ids), 500):
                    tx.conn.execute(self._mark, {"ids": ids[start:start + 500], "now": now})
        except BaseException:
            self._unmarked[:0] = ids
            raise

    def _mark_at_stop(self):
        try:
            self._mark_sent()
        except Exception as exc:  # they go out again at the next start; the inbox drops them
            log.warning("outbox relay: confirmed events not marked sent at stop: %s", exc)

    def _remember(self, event_id):
        self._recent[event_id] = True
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    def pending(self):
        """(count, age in seconds of the oldest unsent event) for metrics and health."""
        outbox = self.core.outbox
        with self.core.read() as conn:
            count, oldest = conn.execute(
                select(func.count(outbox.c.id), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
            ).one()
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        return count, max(age, 0.0)


def decode_body(body):
    return jsoncodec.loads(body)


__all__ = ["OutboxRelay", "OutboxRecord", "decode_body"]
