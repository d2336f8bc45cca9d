"""Prometheus metrics, recorded through this one module by every service.

Naming: one prefix ``govpm_``, base units, ``_total`` on counters, ``_seconds`` on
durations; labels are low-cardinality (service, method/event, outcome, agency...).
Never a project code or a user id as a label.
"""
import datetime as dt
import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPC_REQUESTS = Counter("govpm_rpc_requests_total", "RPC calls handled, by outcome.",
                       ["service", "method", "outcome"], registry=REGISTRY)
RPC_DURATION = Histogram("govpm_rpc_duration_seconds", "Time to handle an RPC call.",
                         ["service", "method", "outcome"], buckets=BUCKETS, registry=REGISTRY)
EVENTS_HANDLED = Counter("govpm_events_handled_total", "Events handled, by outcome.",
                         ["service", "event", "outcome"], registry=REGISTRY)
EVENT_DURATION = Histogram("govpm_event_handle_duration_seconds", "Time to handle an event.",
                           ["service", "event", "outcome"], buckets=BUCKETS, registry=REGISTRY)
HTTP_REQUESTS = Counter("govpm_http_requests_total", "HTTP requests handled, by outcome.",
                        ["service", "route", "outcome"], registry=REGISTRY)
HTTP_DURATION = Histogram("govpm_http_request_duration_seconds", "Time to handle an HTTP request.",
                          ["service", "route", "outcome"], buckets=BUCKETS, registry=REGISTRY)
EVENTS_PUBLISHED = Counter("govpm_events_published_total", "Events the outbox relay published (confirmed and routed).",
                           ["service", "event"], registry=REGISTRY)
# "not yet marked sent": a published and confirmed event waits OUTBOX_MARK_SECONDS for its mark
OUTBOX_PENDING = Gauge("govpm_outbox_pending_events", "Events written to the outbox and not yet marked sent.",
                       ["service"], registry=REGISTRY)
OUTBOX_OLDEST_AGE = Gauge("govpm_outbox_oldest_pending_age_seconds",
                          "Age of the oldest outbox event not yet marked sent.", ["service"], registry=REGISTRY)
READY = Gauge("govpm_ready", "1 when the service is ready (database answers, consumers consuming), else 0.",
              ["service"], registry=REGISTRY)
DB_COMMIT_DURATION = Histogram("govpm_db_commit_duration_seconds",
                               "Time a database COMMIT took (on SQLite with synchronous=FULL: the disk sync).",
                               ["service"], buckets=(0.0005,) + BUCKETS, registry=REGISTRY)
DB_UNITS_PER_COMMIT = Histogram("govpm_db_units_per_commit",
                                "Units of work a commit carried (an event batch; on SQLite also a group commit).",
                                ["service"], buckets=(1, 2, 4, 8, 16, 32), registry=REGISTRY)
DEAD_LETTERS = Gauge("govpm_dead_letter_messages", "Messages waiting in the service's dead-letter queue.",
                     ["service"], registry=REGISTRY)

_refreshers = []


def add_refresher(fn=None, *, service=None):
    """Register ``fn(container)`` to update gauges before each scrape.

    With ``service`` it runs only on that service's scrapes (tests run several services in
    one process, sharing this registry). Usable as ``@add_refresher`` or
    ``add_refresher(fn, service="review")``.
    """
    if fn is None:
        return lambda f: add_refresher(f, service=service)
    if not any(f is fn and s == service for f, s in _refreshers):
        _refreshers.append((fn, service))
    return fn


def refresh(container):
    for fn, service in list(_refreshers):
        if service is not None and service != container.service_name:
            continue
        try:
            fn(container)
        except Exception as exc:  # a scrape must not fail because one gauge did
            log.warning("metrics refresh failed (%s): %s", getattr(fn, "__name__", fn), exc)


def exposition():
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@add_refresher
def _ready(container):
    from .health import readiness
    ok, _ = readiness(container)
    READY.labels(container.service_name).set(1 if ok else 0)


@add_refresher
def _dead_letters(container):
    """Depth of ``<service>.dead-letters`` (a passive declare: allowed to the service's own user)."""
    from nameko import config
    import amqp
    from .messaging import dead_letter_names
    from .publisher import connection_params
    conn = amqp.Connection(**connection_params(config["AMQP_URI"]))
    conn.connect()
    try:
        channel = conn.channel()
        try:
            _, count, _ = channel.queue_declare(dead_letter_names(container.service_name)[1], passive=True)
        except amqp.exceptions.NotFound:
            count = 0
        DEAD_LETTERS.labels(container.service_name).set(count)
    finally:
        conn.close()


@add_refresher
def _outbox(container):
    from .dependencies import Database
    for dep in container.dependencies:
        if isinstance(dep, Database) and dep.relay is not None:
            count, age = dep.relay.pending()
            OUTBOX_PENDING.labels(container.service_name).set(count)
            OUTBOX_OLDEST_AGE.labels(container.service_name).set(age)


# ---- domain gauges (each owning service sets its own; the names are shared) --------------
PROJECTS = Gauge("govpm_projects", "Projects in the registry ledger by jurisdiction, state and pool.",
                 ["jurisdiction", "state", "pool"], registry=REGISTRY)
OPINIONS_PENDING = Gauge("govpm_opinions_pending", "Opinion requests not yet answered, by agency and timeliness.",
                         ["service", "agency", "timeliness"], registry=REGISTRY)  # timeliness: on_time | overdue
OPINION_OLDEST_AGE = Gauge("govpm_opinion_pending_oldest_age_seconds", "Age of the oldest unanswered opinion request.",
                           ["service", "agency"], registry=REGISTRY)
ITEMS_DUE = Gauge("govpm_items_due", "Deadlines not yet met and not yet passed, by kind.",
                  ["service", "kind"], registry=REGISTRY)
ITEMS_OVERDUE = Gauge("govpm_items_overdue", "Deadlines passed without the item being done, by kind.",
                      ["service", "kind"], registry=REGISTRY)
HOLDS_IN_FORCE = Gauge("govpm_holds_in_force", "Sanction holds in force, by kind.",
                       ["service", "kind"], registry=REGISTRY)


# ---- helpers for the domain gauges ----------------------------------------------------------

from .clock import CHINA, now_china, today  # noqa: E402,F401  (shared clock)


def age_seconds(iso_day, now=None):
    """Seconds since the start of ``iso_day`` (a date, China time), never negative."""
    now = now or now_china()
    start = dt.datetime.combine(dt.date.fromisoformat(iso_day), dt.time(0), tzinfo=CHINA)
    return max((now - start).total_seconds(), 0.0)


def database(container):
    """The container's :class:`runtime.db.DatabaseCore` (None before it is set up)."""
    from .dependencies import Database
    for dep in container.dependencies:
        if isinstance(dep, Database) and dep.core is not None:
            return dep.core
    return None


def replace_samples(gauge, samples, **match):
    """Make ``samples`` (``{(label values...): value}``) the gauge's whole state for ``match``.

    Label sets of ``gauge`` whose labels equal ``match`` (e.g. ``service="review"``) and that
    are not in ``samples`` are removed, so a combination that vanished (a state no project
    is in any more) disappears instead of keeping its last value. Computed first, applied
    without yielding: a concurrent scrape never sees half of it.
    """
    names = list(gauge._labelnames)
    positions = {names.index(k): str(v) for k, v in match.items()}
    wanted = {tuple(str(v) for v in key): value for key, value in samples.items()}
    for key in list(gauge._metrics):
        if all(key[i] == v for i, v in positions.items()) and key not in wanted:
            gauge.remove(*key)
    for key, value in wanted.items():
        gauge.labels(*key).set(value)


def desk_signature_gauges(container):
    """An agency desk's opinions waiting for an officer's signature (``runtime.opinions``):
    ``govpm_items_due``/``govpm_items_overdue`` ``{service, kind="signature"}`` by ``due_on``
    against today. One indexed COUNT (``ix_opinion_requests_status_agency``)."""
    from sqlalchemy import case, func, select
    core = database(container)
    if core is None:
        return
    table = core.metadata.tables["opinion_requests"]
    overdue = case((table.c.due_on < today().isoformat(), 1), else_=0)
    with core.read() as conn:
        total, late = conn.execute(
            select(func.count(), func.coalesce(func.sum(overdue), 0))
            .where(table.c.status == "pending_signature")
        ).one()
    service = container.service_name
    ITEMS_DUE.labels(service, "signature").set(total - late)
    ITEMS_OVERDUE.labels(service, "signature").set(late)


def register_desk(service):
    """Register the signature gauges for an agency service that runs the opinion desk."""
    add_refresher(desk_signature_gauges, service=service)
