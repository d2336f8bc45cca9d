"""Run several services in this process against the real RabbitMQ.

Each service gets its own database (``DATABASES`` config); all share one vhost.
A service can be killed (as a crash would: unacked messages go back to the broker)
and started again, with the same database, to show that nothing is lost.
"""
import importlib

from nameko import config
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcClient

SERVICE_CLASSES = {
    "registry": "services.registry.service:RegistryService",
    "review": "services.review.service:ReviewService",
    "budget": "services.budget.service:BudgetService",
    "security": "services.security.service:SecurityService",
    "filing": "services.filing.service:FilingService",
    "gateway": "gateway.service:GatewayService",
}


def service_class(name):
    module, cls = SERVICE_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


class Suite:
    def __init__(self, amqp_uri, jurisdiction, db_urls, extra_config=None):
        self.amqp_uri = amqp_uri
        self.jurisdiction = jurisdiction
        self.db_urls = dict(db_urls)
        self.containers = {}
        self.config = {
            "AMQP_URI": amqp_uri,
            "JURISDICTION": jurisdiction,
            "DATABASES": self.db_urls,
            "OUTBOX_POLL_SECONDS": 0.2,
            "DELIVERY_LIMIT": 5,
        }
        self.config.update(extra_config or {})
        self._patch = None

    def __enter__(self):
        self._patch = config.patch(self.config)
        self._patch.start()
        return self

    def __exit__(self, *exc):
        for name in list(self.containers):
            self.stop(name)
        self._patch.stop()

    def start(self, *names):
        for name in names:
            container = ServiceContainer(service_class(name))
            container.start()
            self.containers[name] = container
        return self

    def stop(self, name):
        container = self.containers.pop(name, None)
        if container is not None:
            container.stop()

    def kill(self, name):
        """Kill as a crash would: no graceful shutdown."""
        container = self.containers.pop(name, None)
        if container is not None:
            container.kill()

    def rpc(self, service, method, **kwargs):
        with ClusterRpcClient(uri=self.amqp_uri, timeout=30) as client:
            return getattr(getattr(client, service), method)(**kwargs)
