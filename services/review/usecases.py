"""Use cases of the review service: one transaction each. Load the case, hand it and the
fact to the saga (:mod:`services.review.domain`), store the new case and turn the
saga's commands into events through the outbox, in the same transaction."""
import contextlib
import logging
import os

import yaml
from sqlalchemy.exc import IntegrityError

from contracts import Conflict, Forbidden, NotFound, PolicyRefusal, ValidationFailed
from contracts.enums import AGENCY_SERVICE, DOCUMENT_TYPES

from runtime import audit, signing
from runtime.messaging import Poison

from .domain import (
    AdvanceTo, ApproveProject, RefuseProject, RequestOpinion, ReturnProject, RuleBroken, Saga,
)
from .repository import ReviewRepository
from .views import case_summary, case_view

log = logging.getLogger(__name__)

SERVICE = "review"
#: agencies whose opinions this service gives itself (no event; an officer signs here)
OWN_AGENCIES = frozenset(a for a, s in AGENCY_SERVICE.items() if s == SERVICE)
DEFAULT_EXPERTS_SEED = os.path.join(os.path.dirname(__file__), "experts_seed.yaml")


def contract_error(exc):
    """The contracts error for a broken rule (Chinese first, English second)."""
    detail = {"rule": exc.rule, "message_zh": exc.zh, "message_en": exc.en}
    if exc.field:
        detail["field"] = exc.field
    if exc.cite:
        detail["cite"] = exc.cite
    if exc.kind == "validation":
        return ValidationFailed(
            errors=[{"field": exc.field or "_schema", "rule": exc.rule, "zh": exc.zh, "en": exc.en}], **detail)
    cls = {"forbidden": Forbidden, "conflict": Conflict, "refusal": PolicyRefusal, "not_found": NotFound}[exc.kind]
    return cls(**detail)


@contextlib.contextmanager
def _rules():
    try:
        yield
    except RuleBroken as exc:
        raise contract_error(exc) from None


def _not_found(code):
    return NotFound(message_zh=f"项目 {code} 没有审批案卷（尚未受理或编号有误）",
                    message_en=f"no approval case for project {code} (not accepted yet, or a wrong code)",
                    field="code")


class ReviewCases:
    """What the service's entrypoints call. ``today`` is a date; ``rng`` draws panels."""

    def __init__(self, db, profile, today, rng=None):
        self.db = db
        self.profile = profile
        self.today = today
        self.rng = rng

    def _saga(self, repo):
        return Saga(
            self.profile, self.today,
            experts=repo.experts, rng=self.rng, next_number=repo.next_document_number,
            own_agencies=OWN_AGENCIES, document_names=DOCUMENT_TYPES,
            takes_cases=True,  # each case handed to it was just read from its row, and dropped after
        )

    # -- events --------------------------------------------------------------------------
    def project_submitted(self, event):
        payload = event["payload"]
        code = payload["project"]["code"]
        with self.db.transaction(event=event) as tx:
            repo = ReviewRepository(tx.conn)
            case = repo.get_case(code, for_update=True)
            outcome = self._saga(repo).submit(
                case, project=payload["project"], application=payload["application"],
                revision=payload["revision"], declared_on=payload["declared_on"],
            )
            self._store(tx, repo, outcome, new=case is None)

    def opinion_issued(self, event):
        """A signed opinion arrives: verify the issuing agency service's signature, keep it
        in the audit chain and advance the case — in one transaction."""
        opinion = event["payload"]
        signer = AGENCY_SERVICE.get(opinion["agency"])
        if signer != event["source"]:
            raise Poison(f"opinion for agency {opinion['agency']} came from {event['source']}, not {signer}")
        try:
            signing.keyring(SERVICE).verify(opinion, expected_signer=signer)
        except signing.SignatureInvalid as exc:
            raise Poison(f"opinion {opinion['request_id']} refused: {exc}") from None
        with self.db.transaction(event=event) as tx:
            audit.append(tx.conn, self.db.metadata.tables["audit_log"], action="opinion_received",
                         ref=opinion["request_id"], code=opinion["code"], actor=signer,
                         digest=signing.digest(opinion))
            repo = ReviewRepository(tx.conn)
            case = repo.get_case(opinion["code"], for_update=True)
            if case is None:
                log.warning("opinion for an unknown case ignored", extra={"code": opinion["code"]})
                return
            outcome = self._saga(repo).opinion_issued(case, opinion)
            self._store(tx, repo, outcome)

    # -- commands (RPC) ------------------------------------------------------------------
    def _act(self, code, act, view=True):
        """Run ``act(saga, case)`` on a locked case; store; return the case view (if
        ``view``)."""
        with _rules(), self.db.transaction() as tx:
            repo = ReviewRepository(tx.conn)
            case = repo.get_case(code, for_update=True)
            if case is None:
                raise _not_found(code)
            outcome = act(self._saga(repo), case)
            self._store(tx, repo, outcome)
        return case_view(outcome.case, self.today, DOCUMENT_TYPES) if view else None

    def submit_document(self, args):
        result = {}

        def act(saga, case):
            outcome, document = saga.submit_document(
                case, unit_id=args["unit_id"], doc_type=args["doc_type"], title=args["title"],
                summary=args.get("summary") or "")
            # a document produces commands only when it completes the documents stage
            result.update(document, code=args["code"], name=DOCUMENT_TYPES[document["doc_type"]],
                          stage_completed=bool(outcome.commands))
            return outcome

        self._act(args["code"], act, view=False)
        return result

    def redraw_panel(self, args):
        return self._act(args["code"], lambda saga, case: saga.redraw_panel(
            case, directed=args.get("directed") or [], officer_id=args["officer_id"],
            officer_agency=args["officer_agency"]))

    def record_vote(self, args):
        return self._act(args["code"], lambda saga, case: saga.record_vote(
            case, expert_id=args["expert_id"], vote=args["vote"], comment=args.get("comment") or "",
            officer_id=args["officer_id"], officer_agency=args["officer_agency"]))

    def sign_decision(self, args):
        return self._act(args["code"], lambda saga, case: saga.sign_decision(
            case, officer_id=args["officer_id"], officer_agency=args["officer_agency"],
            verdict=args["verdict"], comment=args.get("comment") or ""))

    def sign_opinion(self, args):
        with self.db.read() as conn:
            rows = ReviewRepository(conn).pending_opinions()
        row = next((r for r in rows if r["request_id"] == args["request_id"]), None)
        if row is None:
            raise NotFound(message_zh=f"没有待出具的意见请求 {args['request_id']}",
                           message_en=f"no pending opinion request {args['request_id']}", field="request_id")
        return self._act(row["code"], lambda saga, case: saga.sign_own_opinion(
            case, request_id=args["request_id"], officer_id=args["officer_id"],
            officer_agency=args["officer_agency"], verdict=args["verdict"],
            conditions=args.get("conditions") or [], comment=args.get("comment") or ""))

    def add_expert(self, args):
        with self.db.transaction() as tx:
            return ReviewRepository(tx.conn).add_expert(
                name=args["name"], unit_id=args["unit_id"], field=args["field"], directed=args["directed"])

    # -- queries -------------------------------------------------------------------------
    def get_case(self, code):
        with self.db.read() as conn:
            case = ReviewRepository(conn).get_case(code)
        if case is None:
            raise _not_found(code)
        return case_view(case, self.today, DOCUMENT_TYPES)

    def list_cases(self, args):
        with self.db.read() as conn:
            found = ReviewRepository(conn).list_cases(
                state=args.get("state"), unit_id=args.get("unit_id"), limit=args["limit"], offset=args["offset"])
        return [case_summary(c) for c in found]

    def list_pending_opinions(self, args):
        with self.db.read() as conn:
            rows = ReviewRepository(conn).pending_opinions(code=args.get("code"), agency=args.get("agency"))
        today = self.today.isoformat()
        return [dict(row, overdue=row["due_on"] < today) for row in rows]

    def list_experts(self, args):
        with self.db.read() as conn:
            return ReviewRepository(conn).experts(include_inactive=args["include_inactive"])

    # -- storing and emitting ------------------------------------------------------------
    def _store(self, tx, repo, outcome, new=False):
        if outcome.ignored:
            log.info("fact ignored: %s", outcome.ignored, extra={"code": outcome.case["code"]})
            if new:
                repo.save_case(outcome.case, new=True)
            return
        repo.save_case(outcome.case, new=new)
        case = outcome.case
        for command in outcome.commands:
            self._emit(tx, case, command)

    def _emit(self, tx, case, command):
        code = case["code"]
        project = case["project"]
        if isinstance(command, RequestOpinion):
            tx.emit("opinion_requested", {
                "request_id": command.request_id,
                "project": project,
                "application": case["application"],
                "stage": command.stage,
                "stage_name": command.stage_name,
                "agency": command.agency,
                "agency_name": command.agency_name,
                "subject": command.subject,
                "sign": command.sign,
                "due_on": command.due_on,
                "cite": command.cite,
                "context": {"revision": case["revision"], "declared_on": case["declared_on"],
                            "returns": case["returns"]},
            }, correlation_id=code, routing_key=f"opinion_requested.{AGENCY_SERVICE[command.agency]}")
        elif isinstance(command, AdvanceTo):
            tx.emit("stage_advanced", {"project": project, "stage": command.stage, "stage_name": command.stage_name,
                                       "cite": command.cite}, correlation_id=code)
        elif isinstance(command, ReturnProject):
            tx.emit("project_returned", {"project": project, "stage": command.stage, "reasons": command.reasons,
                                         "returns": command.returns, "cite": command.cite}, correlation_id=code)
        elif isinstance(command, RefuseProject):
            tx.emit("project_refused", {"project": project, "stage": command.stage, "reasons": command.reasons,
                                        "barred_until": command.barred_until, "cite": command.cite},
                    correlation_id=code)
        elif isinstance(command, ApproveProject):
            tx.emit("project_approved", {
                "project": project, "approved_amount": command.approved_amount, "document_no": command.document_no,
                "decision_body": command.decision_body, "pool": command.pool, "approved_on": command.approved_on,
                "conditions": command.conditions, "cite": command.cite,
            }, correlation_id=code)
        else:  # pragma: no cover - a new command without an event is a programming error
            raise TypeError(f"unknown command {command!r}")


def load_expert_seed(path=None):
    path = path or DEFAULT_EXPERTS_SEED
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return data.get("experts", [])


def seed_experts(db, path=None):
    """Fill an empty expert pool from ``experts_seed.yaml`` (so a fresh deployment works)."""
    entries = load_expert_seed(path)
    try:
        with db.transaction() as tx:
            repo = ReviewRepository(tx.conn)
            if repo.count_experts():
                return 0
            for entry in entries:
                repo.add_expert(expert_id=entry["expert_id"], name=entry["name"], unit_id=entry["unit_id"],
                                field=entry["field"], directed=entry.get("directed", False))
    except IntegrityError:
        return 0  # another replica seeded the pool at the same moment
    return len(entries)
