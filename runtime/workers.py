"""What the suite's entrypoints share: handing a message to a worker at once, and checking
a call's arguments against a signature read once.

nameko's entrypoints pass every message to a waiter thread that spawns the worker when the
pool has room, so that a full pool never blocks the consumer. The suite's RPC and event
entrypoints spawn the worker directly when the pool has room and keep the waiter only for
a full pool: one green thread less per message (bench/README.md, steps 2 and 7)."""
import inspect

from nameko.exceptions import IncorrectSignature


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
    on a signature read once. nameko reads it again (``inspect``) for every call."""

    _signature = None

    def check_signature(self, args, kwargs):
        if self._signature is None:
            self._signature = inspect.signature(getattr(self.container.service_cls, self.method_name),
                                                follow_wrapped=False)  # as nameko: the method itself
        try:
            self._signature.bind(None, *args, **kwargs)  # None: the unbound method's ``self``
        except TypeError as exc:
            raise IncorrectSignature(str(exc))
