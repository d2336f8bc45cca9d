"""The cyclic garbage collector of a service process: run less often.

CPython's collector of reference cycles runs its youngest generation each time 700 more
container objects (dicts, lists, objects) have been allocated than freed. A service
allocates thousands per message that stay alive while the message is handled (a pack of
seven events decodes into some 2,500 dicts, lists and strings, kept until the batch is
committed), so most of those collections find nothing to free: they traverse live objects
and move them to the older generations, whose collections traverse them again. A
subscriber draining a backlog spent 14% of its CPU in the collector (bench/README.md,
step 29).

Reference counting still frees every object outside a cycle as soon as it is dropped;
only garbage in cycles waits for a collection, which a larger threshold makes rarer.
``GC_THRESHOLD`` (config, default 10,000) is the youngest generation's threshold; the
older generations keep CPython's own (10 and 10). It is set once per process, when a
service's container is set up, and a wrong value stops the service at start.
"""
import gc

from .config import positive_int, setting

DEFAULT_THRESHOLD = 10_000


def configure():
    """Apply ``GC_THRESHOLD`` to this process; returns the threshold."""
    threshold = setting("GC_THRESHOLD", DEFAULT_THRESHOLD, positive_int)
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    return threshold
