"""The real RabbitMQ: vhosts through the management API, queue inspection."""
import os
import time
from urllib.parse import quote

import requests
from amqp.exceptions import InternalError, NotFound
from kombu import Connection

AMQP_HOST = os.environ.get("RABBIT_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("RABBIT_PORT", "5672"))
MGMT = os.environ.get("RABBIT_MGMT_URL", f"http://{AMQP_HOST}:15672")
USER = os.environ.get("RABBIT_USER", "guest")
PASSWORD = os.environ.get("RABBIT_PASSWORD", "guest")
AUTH = (USER, PASSWORD)


def amqp_uri(vhost):
    return f"amqp://{USER}:{PASSWORD}@{AMQP_HOST}:{AMQP_PORT}/{quote(vhost, safe='')}"


def _api(method, path, **kwargs):
    resp = requests.request(method, f"{MGMT}/api/{path}", auth=AUTH, timeout=10, **kwargs)
    if resp.status_code >= 400 and not (method == "DELETE" and resp.status_code == 404):
        raise RuntimeError(f"RabbitMQ management API {method} {path}: {resp.status_code} {resp.text}")
    return resp.json() if resp.content else None


def create_vhost(name):
    _api("PUT", f"vhosts/{quote(name, safe='')}")
    _api("PUT", f"permissions/{quote(name, safe='')}/{quote(USER, safe='')}",
         json={"configure": ".*", "write": ".*", "read": ".*"})


def delete_vhost(name):
    _api("DELETE", f"vhosts/{quote(name, safe='')}")


def queue(vhost, name):
    """The queue's management record, or None if it does not exist."""
    resp = requests.get(f"{MGMT}/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}", auth=AUTH, timeout=10)
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return resp.json()


def queues(vhost):
    return _api("GET", f"queues/{quote(vhost, safe='')}")


def vhost_of(uri):
    from urllib.parse import unquote, urlparse
    return unquote(urlparse(uri).path[1:])


def wait_for(predicate, timeout=20.0, interval=0.05, message="condition"):
    """Poll ``predicate`` until it returns a truthy value; fail with ``message``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def queue_not_ready(exc):
    """True for a queue a ``basic.get`` cannot read *yet*: not declared (404), or a quorum
    queue just declared whose Raft member has not started (541 ``noproc``)."""
    if isinstance(exc, NotFound):
        return True
    return isinstance(exc, InternalError) and "noproc" in str(exc)


def take_one(uri, queue):
    """Take one message off ``queue``; None if it is empty or not ready yet. Reads the queue
    itself: the management API's message counts lag by seconds."""
    with Connection(uri) as conn:
        channel = conn.channel()
        try:
            return channel.basic_get(queue, no_ack=True)
        except (NotFound, InternalError) as exc:
            if queue_not_ready(exc):
                return None
            raise
