"""Handing a message to a worker at once.

nameko's entrypoints pass every message to a waiter thread that spawns the worker when the
pool has room, so that a full pool never blocks the consumer. The suite's RPC and event
entrypoints spawn the worker directly when the pool has room and keep the waiter only for
a full pool: one green thread less per message (bench/README.md, steps 2 and 7)."""


def spawn_if_room(entrypoint, args, kwargs, context_data, handle_result):
    """Spawn the worker now and return True, or return False when the pool is full (the
    caller then waits its own way). ``ContainerBeingKilled`` reaches the caller."""
    container = entrypoint.container
    pool = getattr(container, "_worker_pool", None)
    if pool is None or pool.free() <= 0:
        return False
    container.spawn_worker(entrypoint, args, kwargs, context_data=context_data, handle_result=handle_result)
    return True
