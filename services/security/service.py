"""The security service: the cyberspace office (网信办), the secrecy bureau (保密局 /
保密机要局), the cryptography bureau (密码管理局) and the MIIT (经信厅).

Entrypoints only. ``opinion_requested`` from ``review`` goes to the opinion desk
(:class:`runtime.opinions.OpinionDeskEntrypoints`), which drafts by :func:`check_opinion`
and issues at once or waits for an officer of the agency asked; each issued opinion is
written to the compliance ledger in the same transaction.
"""
import os

from runtime.config import profile
from runtime.dependencies import Database, rpc_method
from runtime.messaging import subscribe
from runtime.opinions import OpinionDeskEntrypoints
from runtime.ops import Instrumentation, OpsEndpoints

from . import domain, ledger
from . import metrics  # noqa: F401  (domain gauges, refreshed at each scrape)
from .models import metadata

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


class SecurityService(OpinionDeskEntrypoints, OpsEndpoints):
    name = "security"
    instrumentation = Instrumentation()

    db = Database(metadata, MIGRATIONS_DIR)

    @subscribe("review", "opinion_requested", routing_key="opinion_requested.security")
    def handle_opinion_requested(self, event):
        self.receive_opinion_request(event)

    def check_opinion(self, request):
        """The desk's drafting hook: the rules of the request's subject."""
        return domain.check(request["subject"], request["application"], profile(), request["cite"])

    def on_opinion_issued(self, tx, request, payload):
        """The desk's issuing hook: keep the verdict in the compliance ledger."""
        ledger.record_opinion(tx.conn, request, payload)

    @rpc_method("security.check_application")
    def check_application(self, args):
        """Dry run for a unit preparing its application: the draft, nothing stored."""
        jurisdiction = profile()
        application = args["application"]
        cite = domain.subject_cite(jurisdiction, args["subject"], application["kind"])
        draft = domain.check(args["subject"], application, jurisdiction, cite)
        return {
            "jurisdiction": jurisdiction.key,
            "subject": args["subject"],
            "verdict": draft.resolved_verdict(),
            "findings": draft.findings,
            "conditions": draft.conditions,
            "data": draft.data,
        }

    @rpc_method("security.get_compliance")
    def get_compliance(self, args):
        with self.db.read() as conn:
            return ledger.compliance_of(conn, args["code"])
