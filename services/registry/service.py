"""The registry service (数据主管部门): project ledger and code, intake (受理), pools,
history, the system catalog (系统目录), and the data bureau's opinion desk.

Entrypoints only: each loads its input through the contract (``rpc_method`` /
``subscribe``), calls one use case and returns what the contract dumps.
"""
import os


from runtime import clock
from runtime.config import profile
from runtime.dependencies import Database, rpc_method
from runtime.messaging import subscribe
from runtime.opinions import OpinionDeskEntrypoints
from runtime.ops import Instrumentation, OpsEndpoints

from . import usecases
from . import metrics  # noqa: F401  (domain gauges, refreshed at each scrape)
from .models import metadata

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def today():
    """The date in China, or config ``TODAY`` when set (tests, replays)."""
    return clock.today()


class RegistryService(OpinionDeskEntrypoints, OpsEndpoints):
    name = "registry"
    instrumentation = Instrumentation()
    db = Database(metadata, MIGRATIONS_DIR)

    # -- the project ledger --------------------------------------------------------------
    @rpc_method("registry.declare_project")
    def declare_project(self, args):
        return usecases.declare_project(self.db, profile(), today(), args)

    @rpc_method("registry.revise_project")
    def revise_project(self, args):
        return usecases.revise_project(self.db, profile(), args)

    @rpc_method("registry.get_project")
    def get_project(self, args):
        return usecases.get_project(self.db, args["code"])

    @rpc_method("registry.list_projects")
    def list_projects(self, args):
        return usecases.list_projects(self.db, args)

    @rpc_method("registry.get_history")
    def get_history(self, args):
        return usecases.get_history(self.db, args["code"])

    # -- the system catalog --------------------------------------------------------------
    @rpc_method("registry.register_system")
    def register_system(self, args):
        return usecases.register_system(self.db, profile(), args)

    @rpc_method("registry.list_systems")
    def list_systems(self, args):
        return usecases.list_systems(self.db, args)

    # -- what review tells us ------------------------------------------------------------
    @subscribe("review", "project_returned")
    def handle_project_returned(self, event):
        usecases.record_returned(self.db, event)

    @subscribe("review", "project_refused")
    def handle_project_refused(self, event):
        usecases.record_refused(self.db, event)

    @subscribe("review", "project_approved")
    def handle_project_approved(self, event):
        usecases.record_approved(self.db, profile(), event)

    @subscribe("review", "stage_advanced")
    def handle_stage_advanced(self, event):
        usecases.record_stage(self.db, event)

    # -- the opinion desk (意见办理) -------------------------------------------------------
    @subscribe("review", "opinion_requested", routing_key="opinion_requested.registry")
    def handle_opinion_requested(self, event):
        # nameko gives each worker its own instance: the facts belong to this event only
        self.ledger_facts = usecases.ledger_facts(self.db, event["payload"]["project"]["code"])
        self.receive_opinion_request(event)

    def check_opinion(self, request):
        return usecases.draft_opinion(profile(), today(), request, getattr(self, "ledger_facts", None))

    def on_opinion_issued(self, tx, request, payload):
        usecases.opinion_issued(tx, profile(), request, payload)
