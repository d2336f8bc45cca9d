"""nameko dependency providers shared by every service."""
import collections
import functools
import logging
import os

from nameko import config
from nameko.extensions import DependencyProvider

from contracts import dump, load
from contracts.errors import EXPECTED
from contracts.rpc import contract

from .config import one_of, positive_int, seconds, setting
from .db import DatabaseCore
from .messaging import declare_dead_letters, declare_topology_for_publisher
from .outbox import DEFAULT_MARK_SECONDS, OutboxRelay
from .packs import DEFAULT_PACK
from .rpc import rpc

log = logging.getLogger(__name__)

#: ``CONTRACT_CHECKS`` (config key, else environment variable):
#: ``events`` (the default) re-validates what a service *stores and sends on*: every event
#: payload, checked in the transaction that writes it to the outbox; RPC results are
#: dumped through their contract without loading them again. ``strict`` also re-validates
#: every RPC result (the test suite runs so: every answer of every call in the tests is
#: checked against its contract).
CONTRACT_CHECK_MODES = ("events", "strict")


def contract_checks():
    mode = config.get("CONTRACT_CHECKS") or os.environ.get("CONTRACT_CHECKS") or "events"
    return one_of("CONTRACT_CHECKS", mode, CONTRACT_CHECK_MODES)


class Database(DependencyProvider):
    """Hands each worker a :class:`DatabaseCore` (``transaction()``, ``read()``).

    Nothing happens in ``__init__``; the engine is built in ``setup`` from the
    ``DB_URL`` config key, migrations run in ``start``, and the outbox relay runs
    as a managed thread of the container.
    """

    def __init__(self, metadata, migrations=None):
        self.metadata = metadata
        self.migrations = migrations
        self.core = None
        self.relay = None

    def setup(self):
        service = self.container.service_name
        # DATABASES lets several services share one process (tests); DB_URL is the usual key
        url = (config.get("DATABASES") or {}).get(service) or config.get("DB_URL") \
            or "sqlite:///var/{}.db".format(service)
        # a wrong SQLITE_SYNCHRONOUS, OUTBOX_BATCH, OUTBOX_POLL_SECONDS, OUTBOX_MARK_SECONDS or
        # EVENT_PACK stops the service here, at start
        self.core = DatabaseCore(url, self.metadata, self.container.service_name, self.migrations,
                                 synchronous=config.get("SQLITE_SYNCHRONOUS"))
        self.relay = OutboxRelay(
            self.core, config["AMQP_URI"],
            batch_size=setting("OUTBOX_BATCH", 500, positive_int),
            poll_interval=setting("OUTBOX_POLL_SECONDS", 1.0, seconds, positive=True),
            on_published=self._count_published,
            pack_size=setting("EVENT_PACK", DEFAULT_PACK, positive_int),
            mark_delay=setting("OUTBOX_MARK_SECONDS", DEFAULT_MARK_SECONDS, seconds),
        )
        if config.get("DECLARE_TOPOLOGY", True):
            def _declare(publisher):
                declare_dead_letters(publisher.channel, service)
                declare_topology_for_publisher(publisher, service)
            self.relay.before_publish.append(_declare)

    def _count_published(self, rows):
        from .metrics import EVENTS_PUBLISHED
        for event_type, count in collections.Counter(row.event_type for row in rows).items():
            EVENTS_PUBLISHED.labels(self.container.service_name, event_type).inc(count)

    def start(self):
        self.core.migrate()
        self.container.spawn_managed_thread(self.relay.run, identifier=f"{self.container.service_name}.outbox_relay")
        self.relay.wake()

    def stop(self):
        if self.relay:
            self.relay.stop()

    def kill(self):
        # no database work while the container dies: rows confirmed but not yet marked are
        # published again at the next start, and the subscribers' inbox drops them
        if self.relay:
            self.relay.stop(mark=False)

    def get_dependency(self, worker_ctx):
        return self.core


def rpc_method(name=None, **rpc_kwargs):
    """``@rpc_method("registry.declare_project")``: a nameko ``@rpc`` whose keyword
    arguments are loaded through the contract's args schema and whose result is dumped
    through its result schema. Expected errors travel back as their own classes."""

    def decorator(fn):
        contract_name = name or fn.__name__
        args_schema, result_schema = contract(contract_name)

        @functools.wraps(fn)
        def wrapper(self, **kwargs):
            # the arguments were decoded for this call: taken as they are where already loaded
            data = load(args_schema, kwargs, in_place=True) if args_schema is not None else kwargs
            result = fn(self, data)
            if result_schema is None:
                return result
            check = contract_checks() == "strict"
            if isinstance(result, list):
                return [dump(result_schema, item, check=check) for item in result]
            return dump(result_schema, result, check=check)

        # nameko checks the call signature against the wrapped function; accept **kwargs
        wrapper.__signature__ = None
        del wrapper.__wrapped__
        rpc_kwargs.setdefault("expected_exceptions", EXPECTED)
        return rpc(**rpc_kwargs)(wrapper)

    return decorator
