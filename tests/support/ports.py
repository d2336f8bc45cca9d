"""A free TCP port for a server that another process will bind later.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from the ephemeral
range, the same range outgoing connections draw from. Between choosing it and the
child process binding it, any of the suite's own broker or database connections may
take it ("Address already in use"). Ports below the ephemeral range are never given to
outgoing connections, so one that is free now stays free unless a listener takes it.
"""
import random
import socket

_FALLBACK_RANGE = (32768, 60999)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = (int(part) for part in fh.read().split())
            return low, high
    except (OSError, ValueError):
        return _FALLBACK_RANGE


def free_port(host="127.0.0.1", attempts=200):
    low, high = _ephemeral_range()
    candidates = [p for p in range(10000, 65536) if not (low <= p <= high)]
    for port in random.sample(candidates, min(attempts, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port outside the ephemeral range {low}-{high}")
