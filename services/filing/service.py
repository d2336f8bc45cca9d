"""The filing service: public security (公安机关), graded protection (等保) grading and filing.

Entrypoints only: the opinion desk (``opinion_requested`` → ``opinion_issued``), the grading
record, and a pure grading calculator.
"""
import os

from runtime.config import profile
from runtime.dependencies import Database, rpc_method
from runtime.messaging import subscribe
from runtime.opinions import OpinionDeskEntrypoints
from runtime.ops import Instrumentation, OpsEndpoints

from . import domain, repository
from . import metrics  # noqa: F401  (domain gauges, refreshed at each scrape)
from .models import metadata

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


class FilingService(OpinionDeskEntrypoints, OpsEndpoints):
    name = "filing"
    instrumentation = Instrumentation()
    db = Database(metadata, MIGRATIONS_DIR)

    # -- opinion desk --------------------------------------------------------------------
    @subscribe("review", "opinion_requested", routing_key="opinion_requested.filing")
    def handle_opinion_requested(self, event):
        self.receive_opinion_request(event)

    def check_opinion(self, request):
        if request["subject"] == "grading":
            return domain.check_grading(request["application"], self._cites(request))
        raise ValueError(f"filing does not give opinions on subject {request['subject']!r}")

    def on_opinion_issued(self, tx, request, payload):
        """Record the grading when a grading opinion is issued (auto or signed)."""
        data = payload["data"]
        if payload["subject"] != "grading" or data.get("level") is None:
            return
        level = data["level"]
        repository.record_grading(
            tx.conn,
            code=payload["code"],
            request_id=payload["request_id"],
            grading=request["application"]["grading"],
            level=level,
            business_level=data["business_level"],
            service_level=data["service_level"],
            level_claimed=(request["application"].get("security_plan") or {}).get("level_claimed"),
            filing_required=level >= domain.FILING_FROM_LEVEL,
            yearly_test_required=level >= domain.YEARLY_TEST_FROM_LEVEL,
            verdict=payload["verdict"],
            signed_by=payload["signed_by"],
            cite=self._cites(request)("grading"),
        )

    @staticmethod
    def _cites(request):
        rules = profile()
        return lambda check_key: rules.cite(check_key, fallback=request["cite"])

    # -- RPC -----------------------------------------------------------------------------
    @rpc_method("filing.grade_system")
    def grade_system(self, args):
        level, business_level, service_level = domain.grade_system(args)
        return {"level": level, "business_level": business_level, "service_level": service_level,
                "cite": domain.GRADING_STANDARD}

    @rpc_method("filing.get_grading")
    def get_grading(self, args):
        with self.db.read() as conn:
            return repository.latest_grading(conn, args["code"])
