"""The budget service: finance (财政局) and the investment review centre (投资评审中心).

Entrypoints only: the opinion desk for ``funding`` (资金审核) and ``cost`` (造价审核),
the allocation recorded when review approves a project, envelopes and cost reviews.
"""
import os

from runtime.config import profile
from runtime.dependencies import rpc_method
from runtime.messaging import subscribe
from runtime.opinions import OpinionDeskEntrypoints
from runtime.ops import Instrumentation, OpsEndpoints

from . import domain, repository
from .dependencies import BudgetDatabase
from . import metrics  # noqa: F401  (domain gauges, refreshed at each scrape)
from .models import metadata

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
DEFAULT_SOURCE = "budget"  # 本级财政预算: charged when budget never saw the application's funding


class BudgetService(OpinionDeskEntrypoints, OpsEndpoints):
    name = "budget"
    instrumentation = Instrumentation()
    db = BudgetDatabase(metadata, MIGRATIONS_DIR)

    # -- opinion desk --------------------------------------------------------------------
    @subscribe("review", "opinion_requested", routing_key="opinion_requested.budget")
    def handle_opinion_requested(self, event):
        # read what the checks need before the desk opens its write transaction: a read
        # conn inside it would wait on SQLite's single writer
        self._envelopes = {event["payload"]["request_id"]: self._envelope_for(event["payload"])}
        self.receive_opinion_request(event)

    def _envelope_for(self, request):
        funding = request["application"].get("funding")
        if request["subject"] != "funding" or not funding:
            return None
        with self.db.read() as conn:
            return repository.find_envelope(conn, request["application"]["year"], funding["source"])

    def check_opinion(self, request):
        application = request["application"]
        cite = self._cites(request)
        if request["subject"] == "funding":
            envelope = self._envelopes[request["request_id"]]
            return domain.check_funding(application, envelope, cite)
        if request["subject"] == "cost":
            return domain.check_cost(application, self._cost_rules(), cite)
        raise ValueError(f"budget does not give opinions on subject {request['subject']!r}")

    def on_opinion_issued(self, tx, request, payload):
        """Store the cost review when a cost opinion is issued (auto or signed)."""
        if payload["subject"] != "cost" or payload["data"].get("reviewed_amount") is None:
            return
        repository.store_cost_review(
            tx.conn, code=payload["code"], request_id=payload["request_id"], origin="opinion",
            review=payload["data"], cite=self._cites(request)("cost_review"),
        )

    @staticmethod
    def _cites(request):
        rules = profile()
        return lambda check_key: rules.cite(check_key, fallback=request["cite"])

    @staticmethod
    def _cost_rules():
        rules = profile()
        return domain.cost_rules(
            unbased_cut_ratio=rules.parameter(domain.COST_UNBASED_CUT_RATIO),
            unbased_cite=rules.parameter_cite(domain.COST_UNBASED_CUT_RATIO),
            price_ceilings=rules.parameter(domain.COST_PRICE_CEILINGS),
            ceilings_cite=rules.parameter_cite(domain.COST_PRICE_CEILINGS),
        )

    # -- allocation on approval ------------------------------------------------------------
    @subscribe("review", "project_approved")
    def handle_project_approved(self, event):
        """Commit the approved amount against the envelope and note the funding channel."""
        approved = event["payload"]
        ref = approved["project"]
        with self.db.transaction(event=event) as tx:
            if repository.allocation_exists(tx.conn, ref["code"]):
                return
            application = repository.latest_application(tx.conn, self._desk_table(), ref["code"]) or {}
            funding = application.get("funding") or {}
            year = application.get("year") or int(approved["approved_on"][:4])
            source = funding.get("source") or DEFAULT_SOURCE
            project = dict(application, code=ref["code"], kind=ref["kind"], amount=approved["approved_amount"],
                           pool=approved["pool"])
            channel = profile().funding_pool(project)
            within = repository.commit_to_envelope(tx.conn, year, source, approved["approved_amount"])
            repository.record_allocation(
                tx.conn,
                code=ref["code"], project_name=ref["name"], unit_id=ref["unit_id"],
                year=year, source=source, amount=approved["approved_amount"], within_envelope=within,
                pool=approved["pool"],
                channel=channel["pool"] if channel else None,
                channel_zh=channel["zh"] if channel else None,
                cite=channel["cite"] if channel else approved["cite"],
                document_no=approved["document_no"], approved_on=approved["approved_on"],
            )

    # -- RPC -------------------------------------------------------------------------------
    @rpc_method("budget.set_envelope")
    def set_envelope(self, args):
        with self.db.transaction() as tx:
            return repository.set_envelope(tx.conn, args["year"], args["source"], args["total"])

    @rpc_method("budget.list_envelopes")
    def list_envelopes(self, args):
        with self.db.read() as conn:
            return repository.list_envelopes(conn, args.get("year"))

    @rpc_method("budget.review_cost")
    def review_cost(self, args):
        cite = profile().cite("cost_review", fallback="suite rule: direct cost review (budget.review_cost)")
        review = domain.review_estimate(args["lines"], self._cost_rules())
        with self.db.transaction() as tx:
            review_id = repository.store_cost_review(tx.conn, code=args["code"], request_id=None, origin="rpc",
                                                     review=review, cite=cite)
        with self.db.read() as conn:
            return repository.cost_review(conn, review_id=review_id)

    @rpc_method("budget.get_cost_review")
    def get_cost_review(self, args):
        with self.db.read() as conn:
            return repository.cost_review(conn, code=args["code"])

    @rpc_method("budget.get_funding")
    def get_funding(self, args):
        with self.db.read() as conn:
            return repository.get_allocation(conn, args["code"])

    @rpc_method("budget.list_allocations")
    def list_allocations(self, args):
        with self.db.read() as conn:
            return repository.list_allocations(conn, args.get("year"))

