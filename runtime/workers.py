"""What the suite's entrypoints share: handing a message to a worker at once, checking a
call's arguments against a signature read once, and nameko's timing of each worker's steps
only when its DEBUG lines are written (installed on import: every entrypoint imports this
module).

nameko's entrypoints pass every message to a waiter thread that spawns the worker when the
pool has room, so that a full pool never blocks the consumer. The suite's RPC and event
entrypoints spawn the worker directly when the pool has room and keep the waiter only for
a full pool: one green thread less per message (bench/README.md, steps 2 and 7)."""
import contextlib
import inspect
import logging

import nameko.containers
from nameko.exceptions import IncorrectSignature
from nameko.log_helpers import make_timing_logger


def quiet_timing(logger, level=logging.DEBUG):
    """nameko's timing logger (``nameko.log_helpers.make_timing_logger``), timing only when
    ``logger`` writes ``level``: nameko times four steps of every worker (set-up, handler,
    result, teardown) for a DEBUG line each, and at INFO and above the timing, its context
    manager and the message were made for nothing."""
    timed = make_timing_logger(logger, level=level)
    quiet = contextlib.nullcontext()

    def log_time(msg, *args):
        return timed(msg, *args) if logger.isEnabledFor(level) else quiet

    return log_time


nameko.containers._log_time = quiet_timing(nameko.containers._log)


def spawn_if_room(entrypoint, args, kwargs, context_data, handle_result):
    """Spawn the worker now and return True, or return False when the pool is full (the
    caller then waits its own way). ``ContainerBeingKilled`` reaches the caller."""
    container = entrypoint.container
    pool = getattr(container, "_worker_pool", None)
    if pool is None or pool.free() <= 0:
        return False
    container.spawn_worker(entrypoint, args, kwargs, context_data=context_data, handle_result=handle_result)
    return True


class SignatureOnce:
    """For an entrypoint: nameko's check of a call's arguments against the service method,
    on a signature read once. nameko reads it again (``inspect``) for every call.

    Whether arguments bind depends only on how many are positional and on the keywords'
    names, never on their values: a call shaped as one that bound before is not bound
    again. Up to ``SHAPES`` shapes are remembered (a method taking ``**kwargs`` binds any
    names a caller sends)."""

    SHAPES = 64
    _signature = None
    _shapes = None

    def check_signature(self, args, kwargs):
        shape = (len(args), *kwargs)
        shapes = self._shapes
        if shapes is not None and shape in shapes:
            return
        if self._signature is None:
            self._signature = inspect.signature(getattr(self.container.service_cls, self.method_name),
                                                follow_wrapped=False)  # as nameko: the method itself
            self._shapes = shapes = set()
        try:
            self._signature.bind(None, *args, **kwargs)  # None: the unbound method's ``self``
        except TypeError as exc:
            raise IncorrectSignature(str(exc))
        if len(shapes) < self.SHAPES:
            shapes.add(shape)
