"""Prometheus metrics, recorded through this one module by every service.

Naming: one prefix ``govpm_``, base units, ``_total`` on counters, ``_seconds`` on
durations; labels are low-cardinality (service, method/event, outcome, agency...).
Never a project code or a user id as a label.
"""
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
OUTBOX_PENDING = Gauge("govpm_outbox_pending_events", "Events written to the outbox and not yet published.",
                       ["service"], registry=REGISTRY)
OUTBOX_OLDEST_AGE = Gauge("govpm_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox event.",
                          ["service"], registry=REGISTRY)
READY = Gauge("govpm_ready", "1 when the service is ready (database answers, consumers consuming), else 0.",
              ["service"], registry=REGISTRY)
DEAD_LETTERS = Gauge("govpm_dead_letter_messages", "Messages waiting in the service's dead-letter queue.",
                     ["service"], registry=REGISTRY)

_refreshers = []


def add_refresher(fn):
    """Register ``fn(container)`` to update gauges before each scrape."""
    _refreshers.append(fn)
    return fn


def refresh(container):
    for fn in list(_refreshers):
        try:
            fn(container)
        except Exception as exc:  # a scrape must not fail because one gauge did
            log.warning("metrics refresh failed: %s", exc)


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
