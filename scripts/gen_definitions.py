"""Generate the RabbitMQ definitions (users, permissions, topology, policies) from the contracts.

``deploy/rabbitmq/definitions.json`` is *generated*: never edit it by hand, run this script
(a test fails when the committed file differs from what the script produces now).

Everything is derived, so the file cannot drift from the code:

* event exchanges, subscriber queues and bindings from ``contracts.events.SUBSCRIPTIONS``
  (queue names via ``queue_name()``, arguments via ``runtime.messaging.queue_arguments()``);
* dead-letter exchanges/queues from ``runtime.messaging.dead_letter_names()``;
* which service may send RPC requests to which, by reading the source of each service
  package for ``ServiceRpc("<target>")`` (a service package using ``ClusterRpc`` is
  refused: its targets cannot be known);
* nameko's own names (``nameko-rpc``, ``rpc-<service>``, ``rpc.reply-<service>-<uuid>``)
  from ``nameko.rpc``.

One broker user per agency service (registry, review, budget, security, filing, gateway).
Each user may

* configure (declare/delete) only its own queues and exchanges — plus ``nameko-rpc``,
  which nameko declares (non-passively) on every RPC consumer and client;
* write (publish, or bind a queue as destination) only to its own ``<service>.events``
  exchange, to ``nameko-rpc``, to its own queues and to its own ``<service>.dlx`` (RabbitMQ
  requires it to declare a queue whose ``x-dead-letter-exchange`` it is);
* read (consume, or bind from an exchange) only its own queues, ``nameko-rpc``, its own
  ``<service>.dlx`` and the ``<source>.events`` exchanges it subscribes to;

and RabbitMQ *topic permissions* narrow the routing keys:

* on ``nameko-rpc``: publish ``<target>.<method>`` only to the services it calls, and
  replies (nameko's reply routing key is the caller's bare reply-queue UUID); bind only
  ``<service>.*`` (its RPC queue) and UUIDs (its reply queues);
* on its own ``<service>.events``: publish only the event types it is the source of
  (optionally addressed ``<event_type>.<service>``);
* on each ``<source>.events`` it listens to: bind only the routing keys of its own
  subscriptions, so it cannot bind a queue to read another agency's traffic.

``--declare-source-exchanges`` also lets a subscriber configure the ``<source>.events``
exchanges it listens to: needed while ``runtime.messaging.Subscribe`` declares them
non-passively (it then may delete them too); not needed once it declares them passively
when ``DECLARE_TOPOLOGY`` is false.

Passwords. By default every user gets an **empty password hash**: RabbitMQ then refuses
password log-in for that user (fail closed) until an operator sets the password
(``rabbitmqctl change_password <user> <password>``) or re-generates the file with
``--passwords-from-env``: ``GOVPM_AMQP_PASSWORD_<SERVICE>`` (e.g.
``GOVPM_AMQP_PASSWORD_REGISTRY``) is hashed here (rabbit_password_hashing_sha256, random
salt) and only the hash is written. Write such a file outside the repository (``--out``).

Usage::

    python scripts/gen_definitions.py                  # rewrite deploy/rabbitmq/definitions.json
    python scripts/gen_definitions.py --check          # exit 1 if the committed file is stale
    GOVPM_AMQP_PASSWORD_REGISTRY=... (one per service) \\
      python scripts/gen_definitions.py --passwords-from-env --vhost govpm --out /secure/definitions.json

The vhost is ``govpm``; a jurisdiction may rename it (``--vhost govpm-jinjiang``) when
several suites share one broker, and may suffix the user names (``--user-suffix -jinjiang``).
"""
import argparse
import ast
import base64
import hashlib
import json
import os
import re
import sys
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # printed by nameko's import

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from nameko.rpc import RPC_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TEMPLATE  # noqa: E402

from contracts.enums import SERVICES  # noqa: E402
from contracts.events import EVENTS, SUBSCRIPTIONS, queue_name  # noqa: E402
from runtime.messaging import DEFAULT_DELIVERY_LIMIT, dead_letter_names, queue_arguments  # noqa: E402

OUTPUT = os.path.join(ROOT, "deploy", "rabbitmq", "definitions.json")
DEFAULT_VHOST = "govpm"
RPC_EXCHANGE = "nameko-rpc"  # nameko's default (config key RPC_EXCHANGE is not set by any service)
USERS = tuple(SERVICES) + ("gateway",)
PACKAGES = {**{s: os.path.join("services", s) for s in SERVICES}, "gateway": "gateway"}
PASSWORD_ENV = "GOVPM_AMQP_PASSWORD_{}"
HASHING = "rabbit_password_hashing_sha256"

UUID_RE = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
METHOD_RE = "[A-Za-z_][A-Za-z0-9_]*"
PART_RE = "[a-z0-9_]+"  # a service, event type or method name: no '-' and no '.'


# ---- what the code says ----------------------------------------------------------------

def rpc_targets(root=ROOT):
    """``{caller: sorted targets}`` read from ``ServiceRpc("<target>")`` in each package."""
    found = {}
    for caller, package in PACKAGES.items():
        targets = set()
        base = os.path.join(root, package)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d not in ("migrations", "__pycache__")]
            for filename in sorted(filenames):
                if not filename.endswith(".py"):
                    continue
                path = os.path.join(dirpath, filename)
                with open(path, encoding="utf-8") as fh:
                    tree = ast.parse(fh.read(), path)
                for node in ast.walk(tree):
                    if not isinstance(node, ast.Call):
                        continue
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                    if name in ("ClusterRpc", "ClusterRpcClient", "ServiceRpcClient"):
                        raise SystemExit(
                            f"{os.path.relpath(path, root)}:{node.lineno}: {name} hides its targets; "
                            "use ServiceRpc(\"<service>\") so the broker permissions can name them")
                    if name == "ServiceRpc":
                        if not node.args or not isinstance(node.args[0], ast.Constant):
                            raise SystemExit(f"{os.path.relpath(path, root)}:{node.lineno}: "
                                             "ServiceRpc needs the target service as a string literal")
                        targets.add(node.args[0].value)
        unknown = targets - set(USERS)
        if unknown:
            raise SystemExit(f"{caller} calls unknown service(s) {sorted(unknown)}")
        found[caller] = sorted(targets)
    return found


def event_sources():
    """``{service: sorted event types it publishes}`` (EVENTS, and SUBSCRIPTIONS for events
    that any agency may publish, e.g. ``opinion_issued``)."""
    sources = {s: set() for s in USERS}
    for event_type, (source, _schema) in EVENTS.items():
        if source is not None:
            sources[source].add(event_type)
    for source, event_type, _key, _sub, _method in SUBSCRIPTIONS:
        sources[source].add(event_type)
    return {s: sorted(v) for s, v in sources.items()}


def subscribers():
    return sorted({sub[3] for sub in SUBSCRIPTIONS})


def rpc_servers(targets):
    """Services that consume ``rpc-<service>``: every agency service, and any RPC target."""
    called = {t for ts in targets.values() for t in ts}
    return sorted(set(SERVICES) | called)


# ---- permissions -------------------------------------------------------------------------

def _alt(names):
    return "^(" + "|".join(names) + ")$"


def own_queue_patterns(service):
    s = re.escape(service)
    return [
        re.escape(RPC_QUEUE_TEMPLATE.format(service)),
        re.escape(RPC_REPLY_QUEUE_TEMPLATE.format(service, "")) + UUID_RE,
        re.escape(dead_letter_names(service)[1]),
        f"evt-{PART_RE}-{PART_RE}--{s}\\.{METHOD_RE}",
    ]


def own_exchange_names(service):
    return [f"{service}.events", dead_letter_names(service)[0]]


def permissions_for(service, declare_source_exchanges=False):
    """The configure/write/read regular expressions of one service's user."""
    queues = own_queue_patterns(service)
    events_exchange, dlx = (re.escape(n) for n in own_exchange_names(service))
    rpc = re.escape(RPC_EXCHANGE)
    sources = sorted({sub[0] for sub in SUBSCRIPTIONS if sub[3] == service})
    source_exchanges = [re.escape(f"{src}.events") for src in sources]
    configure = [rpc, events_exchange, dlx] + queues
    if declare_source_exchanges:
        configure += source_exchanges
    write = [rpc, events_exchange, dlx] + queues  # a queue declared with x-dead-letter-exchange needs write on it
    read = [rpc, dlx] + source_exchanges + queues
    return {"configure": _alt(configure), "write": _alt(write), "read": _alt(read)}


def topic_permissions_for(service, targets, sources):
    """``[(exchange, write, read)]`` routing-key restrictions on topic exchanges."""
    rules = []
    uuid = f"^{UUID_RE}$"
    if targets:
        rpc_write = "^(" + "|".join(re.escape(t) for t in targets) + f")\\.{METHOD_RE}$|{uuid}"
    else:
        rpc_write = uuid  # replies only
    rpc_read = f"^{re.escape(service)}\\.\\*$|{uuid}"
    rules.append((RPC_EXCHANGE, rpc_write, rpc_read))
    if sources:
        addressed = "|".join(re.escape(s) for s in USERS)
        write = "^(" + "|".join(re.escape(e) for e in sources) + f")(\\.({addressed}))?$"
        rules.append((f"{service}.events", write, "^$"))
    by_source = {}
    for source, _event, key, sub, _method in SUBSCRIPTIONS:
        if sub == service:
            by_source.setdefault(source, set()).add(key)
    for source in sorted(by_source):
        keys = sorted(by_source[source])
        rules.append((f"{source}.events", "^$", "^(" + "|".join(re.escape(k) for k in keys) + ")$"))
    return rules


# ---- passwords ---------------------------------------------------------------------------

def hash_password(password, salt=None):
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def passwords_from_env(environ=os.environ):
    missing = [PASSWORD_ENV.format(s.upper()) for s in USERS if not environ.get(PASSWORD_ENV.format(s.upper()))]
    if missing:
        raise SystemExit("missing password variable(s): " + ", ".join(missing))
    return {s: environ[PASSWORD_ENV.format(s.upper())] for s in USERS}


# ---- the document ------------------------------------------------------------------------

def build(vhost=DEFAULT_VHOST, user_names=None, passwords=None, delivery_limit=DEFAULT_DELIVERY_LIMIT,
          declare_source_exchanges=False, admin=None, root=ROOT):
    """The definitions document.

    ``user_names``: ``{service: broker user name}`` (default: the service name);
    ``passwords``: ``{service (or the admin name): plain password}`` hashed here (default: none, empty hash);
    ``admin``: also add an ``administrator`` user of that name (for the management UI).
    """
    user_names = {s: (user_names or {}).get(s, s) for s in USERS}
    passwords = passwords or {}
    targets = rpc_targets(root)
    sources = event_sources()

    def user(name, key, tags):
        return {"name": name, "password_hash": hash_password(passwords[key]) if passwords.get(key) else "",
                "hashing_algorithm": HASHING, "tags": tags, "limits": {}}

    users = [user(user_names[s], s, []) for s in USERS]
    permissions = [{"user": user_names[s], "vhost": vhost, **permissions_for(s, declare_source_exchanges)}
                   for s in USERS]
    topic_permissions = [
        {"user": user_names[s], "vhost": vhost, "exchange": exchange, "write": write, "read": read}
        for s in USERS for exchange, write, read in topic_permissions_for(s, targets[s], sources[s])
    ]
    if admin:
        users.append(user(admin, admin, ["administrator"]))
        permissions.append({"user": admin, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"})

    def exchange(name, type_):
        return {"name": name, "vhost": vhost, "type": type_, "durable": True, "auto_delete": False,
                "internal": False, "arguments": {}}

    def queue(name, arguments):
        return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": arguments}

    def binding(source, destination, routing_key):
        return {"source": source, "vhost": vhost, "destination": destination, "destination_type": "queue",
                "routing_key": routing_key, "arguments": {}}

    exchanges = {RPC_EXCHANGE: exchange(RPC_EXCHANGE, "topic")}
    queues, bindings = {}, []
    for service in rpc_servers(targets):
        name = RPC_QUEUE_TEMPLATE.format(service)
        queues[name] = queue(name, {})  # classic: nameko re-declares it without arguments
        bindings.append(binding(RPC_EXCHANGE, name, f"{service}.*"))
    for service in subscribers():
        dlx, dlq = dead_letter_names(service)
        exchanges[dlx] = exchange(dlx, "fanout")
        queues[dlq] = queue(dlq, {"x-queue-type": "quorum"})
        bindings.append(binding(dlx, dlq, ""))
    for source, event_type, routing_key, subscriber, method in SUBSCRIPTIONS:
        exchanges.setdefault(f"{source}.events", exchange(f"{source}.events", "topic"))
        name = queue_name(source, event_type, subscriber, method)
        queues[name] = queue(name, dict(sorted(queue_arguments(subscriber, delivery_limit).items())))
        bindings.append(binding(f"{source}.events", name, routing_key))

    policies = [
        {"vhost": vhost, "name": f"govpm-evt-{s}", "pattern": f"^evt-{PART_RE}-{PART_RE}--{re.escape(s)}\\.",
         "apply-to": "queues", "priority": 10,
         "definition": {"delivery-limit": delivery_limit, "dead-letter-exchange": dead_letter_names(s)[0]}}
        for s in subscribers()
    ]
    # any other evt-* queue (a subscriber not yet known here) still gets a bounded redelivery
    policies.append({"vhost": vhost, "name": "govpm-evt-any", "pattern": "^evt-", "apply-to": "queues",
                     "priority": 0, "definition": {"delivery-limit": delivery_limit}})

    return {
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        "parameters": [],
        "global_parameters": [],
        "policies": policies,
        "exchanges": sorted(exchanges.values(), key=lambda e: e["name"]),
        "queues": sorted(queues.values(), key=lambda q: q["name"]),
        "bindings": sorted(bindings, key=lambda b: (b["source"], b["destination"], b["routing_key"])),
    }


def render(document):
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=OUTPUT, help="where to write (default: deploy/rabbitmq/definitions.json)")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs from what would be written")
    parser.add_argument("--vhost", default=DEFAULT_VHOST)
    parser.add_argument("--user-suffix", default="", help="appended to every user name, e.g. -jinjiang")
    parser.add_argument("--passwords-from-env", action="store_true",
                        help="hash GOVPM_AMQP_PASSWORD_<SERVICE> (and the admin's) into the file")
    parser.add_argument("--admin", default=None,
                        help="also create an administrator user of this name (password GOVPM_AMQP_PASSWORD_ADMIN)")
    parser.add_argument("--delivery-limit", type=int, default=DEFAULT_DELIVERY_LIMIT,
                        help="must equal the services' DELIVERY_LIMIT (queues are re-declared with it)")
    parser.add_argument("--declare-source-exchanges", action="store_true",
                        help="also let subscribers configure the <source>.events exchanges they bind to "
                             "(needed while runtime.messaging declares them non-passively)")
    args = parser.parse_args(argv)

    passwords = None
    if args.passwords_from_env:
        passwords = passwords_from_env()
        if args.admin:
            admin_password = os.environ.get(PASSWORD_ENV.format("ADMIN"))
            if not admin_password:
                raise SystemExit("missing password variable: " + PASSWORD_ENV.format("ADMIN"))
            passwords[args.admin] = admin_password
        if os.path.abspath(args.out) == OUTPUT and not args.check:
            raise SystemExit("refusing to write password hashes into the repository; pass --out")
    text = render(build(vhost=args.vhost, user_names={s: s + args.user_suffix for s in USERS},
                        passwords=passwords, delivery_limit=args.delivery_limit,
                        declare_source_exchanges=args.declare_source_exchanges, admin=args.admin))
    if args.check:
        try:
            current = open(args.out, encoding="utf-8").read()
        except OSError:
            current = None
        if current != text:
            print(f"{os.path.relpath(args.out, ROOT)} is stale: run python scripts/gen_definitions.py")
            return 1
        print(f"{os.path.relpath(args.out, ROOT)} is up to date")
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    if passwords:
        os.chmod(args.out, 0o600)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
