"""The review service (发展改革委): runs each project's approval pipeline as a saga.

Entrypoints only: each loads its input through a contract, calls one use case of
:class:`services.review.usecases.ReviewCases`, and dumps the result.
"""
import logging
import os
import random

from nameko import config

from runtime import clock
from runtime.config import profile
from runtime.dependencies import Database, rpc_method
from runtime.messaging import subscribe
from runtime.ops import Instrumentation, OpsEndpoints

from . import metrics  # noqa: F401  (domain gauges, refreshed at each scrape)
from .models import metadata
from .usecases import ReviewCases, seed_experts

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")

log = logging.getLogger(__name__)



def today():
    """config TODAY (tests and demos) or the date in Asia/Shanghai."""
    return clock.today()


def panel_rng():
    """Panels are drawn with SystemRandom; config PANEL_SEED makes draws repeatable in tests."""
    seed = config.get("PANEL_SEED")
    if seed is not None and seed != "":
        return random.Random(seed)
    return random.SystemRandom()


class ReviewDatabase(Database):
    """The service's database; after migrating, seeds an empty expert pool (专家库)."""

    def start(self):
        super().start()
        path = config.get("EXPERTS_SEED")
        if path == "none":
            return
        added = seed_experts(self.core, path or None)
        if added:
            log.info("expert pool seeded with %d experts", added)


class ReviewService(OpsEndpoints):
    name = "review"
    instrumentation = Instrumentation()
    db = ReviewDatabase(metadata, MIGRATIONS_DIR)

    def _cases(self):
        return ReviewCases(self.db, profile(), today(), panel_rng())

    # -- events ----------------------------------------------------------------------------
    @subscribe("registry", "project_submitted")
    def handle_project_submitted(self, event):
        self._cases().project_submitted(event)

    @subscribe("registry", "opinion_issued")
    def handle_registry_opinion_issued(self, event):
        self._cases().opinion_issued(event)

    @subscribe("budget", "opinion_issued")
    def handle_budget_opinion_issued(self, event):
        self._cases().opinion_issued(event)

    @subscribe("security", "opinion_issued")
    def handle_security_opinion_issued(self, event):
        self._cases().opinion_issued(event)

    @subscribe("filing", "opinion_issued")
    def handle_filing_opinion_issued(self, event):
        self._cases().opinion_issued(event)

    # -- reading ---------------------------------------------------------------------------
    @rpc_method("review.get_case")
    def get_case(self, args):
        return self._cases().get_case(args["code"])

    @rpc_method("review.list_cases")
    def list_cases(self, args):
        return self._cases().list_cases(args)

    @rpc_method("review.list_pending_opinions")
    def list_pending_opinions(self, args):
        return self._cases().list_pending_opinions(args)

    @rpc_method("review.list_experts")
    def list_experts(self, args):
        return self._cases().list_experts(args)

    # -- acting ----------------------------------------------------------------------------
    @rpc_method("review.submit_document")
    def submit_document(self, args):
        return self._cases().submit_document(args)

    @rpc_method("review.redraw_panel")
    def redraw_panel(self, args):
        return self._cases().redraw_panel(args)

    @rpc_method("review.record_vote")
    def record_vote(self, args):
        return self._cases().record_vote(args)

    @rpc_method("review.sign_decision")
    def sign_decision(self, args):
        return self._cases().sign_decision(args)

    @rpc_method("review.sign_opinion")
    def sign_opinion(self, args):
        return self._cases().sign_opinion(args)

    @rpc_method("review.add_expert")
    def add_expert(self, args):
        return self._cases().add_expert(args)
