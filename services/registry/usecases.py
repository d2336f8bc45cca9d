"""The registry's use cases: one transaction each, events through the outbox.

Each function gets the database core (``transaction()``/``read()``), the jurisdiction's
profile and what the entrypoint loaded; the rules come from :mod:`.domain`, the
reads and writes from :mod:`.ledger`.
"""
import datetime as dt
import logging

from sqlalchemy.exc import IntegrityError

from contracts import Conflict, Forbidden, load
from contracts.application import ApplicationSchema
from contracts.enums import PROJECT_STATES
from contracts.errors import refusal
from runtime.opinions import Draft

from . import domain, ledger

log = logging.getLogger(__name__)

ONE_JURISDICTION_CITE = "suite rule: one deployment serves one jurisdiction (config JURISDICTION)"


def _project_ref(row_or_values):
    get = (row_or_values.get if isinstance(row_or_values, dict)
           else lambda key: getattr(row_or_values, key))
    return {key: get(key) for key in ("code", "jurisdiction", "unit_id", "unit_name", "name", "kind", "amount")}


def _emit_submitted(tx, ref, application, revision, declared_on):
    tx.emit("project_submitted", {
        "project": ref,
        "application": application,
        "revision": revision,
        "declared_on": declared_on,
    }, correlation_id=ref["code"])


# ---- declaring and revising -----------------------------------------------------------

def complete_application(application):
    """A raw application loaded through its contract: every section the unit left out
    comes back with its defaults (``flags``, ``facts``, the plans …), so a profile rule
    such as ``{not: {fact: materials_complete}}`` never fires on a fact the unit never
    denied. The RPC arguments of ``declare_project``/``revise_project`` are loaded so
    already; this is for applications from elsewhere (tests, seeds, the benchmarks)."""
    return load(ApplicationSchema, application)


def declare_project(db, profile, today, args):
    """申报: give the project its code, run intake, and (if accepted) submit it to review."""
    if args.get("jurisdiction") and args["jurisdiction"] != profile.key:
        raise refusal(
            "wrong_jurisdiction",
            f"本系统服务于{profile.name}（{profile.key}），不受理辖区 {args['jurisdiction']} 的项目",
            f"This deployment serves {profile.key}; it does not take projects for {args['jurisdiction']}.",
            ONE_JURISDICTION_CITE, field="jurisdiction",
        )
    application = args["application"]  # loaded, defaults filled, by the args contract
    intake = domain.run_intake(profile, application, today)
    declaration = profile.data["declaration"]
    if intake.refused:
        state, pool = "intake_refused", None
    else:
        state, pool = "in_approval", declaration["initial_pool"]
    with db.transaction() as tx:
        sequence = ledger.next_sequence(tx.conn, today.year, profile.admin_code)
        if sequence > domain.MAX_SEQUENCE:
            raise Conflict(message_zh=f"{today.year} 年度项目编号已用尽", field="code",
                           message_en=f"no project sequence numbers left for {today.year}")
        code = domain.project_code(today.year, profile.admin_code, sequence)
        values = {
            "code": code,
            "jurisdiction": profile.key,
            "unit_id": args["unit_id"],
            "unit_name": args["unit_name"],
            "name": application["name"],
            "kind": application["kind"],
            "amount": application["amount"],
            "year": application["year"],
            "state": state,
            "pool": pool,
            "revision": 0,
            "declared_on": today.isoformat(),
            "batch": intake.batch.key if intake.batch else None,
            "batch_name": intake.batch.name if intake.batch else None,
            "intake_findings": intake.findings,
            "application": application,
        }
        ledger.insert_project(tx.conn, values)
        ledger.add_history(tx.conn, code, domain.declaration_entries(
            code, today.isoformat(), intake, state, pool, declaration["initial_pool_cite"],
        ))
        if not intake.refused:
            _emit_submitted(tx, _project_ref(values), application, 0, today.isoformat())
    return get_project(db, code)


def revise_project(db, profile, args):
    """修改重报: the owning unit resubmits a returned project; intake runs again.

    A revision that intake would refuse is refused (PolicyRefusal with the findings)
    and changes nothing: the project stays returned, so the unit can fix it."""
    code = args["code"]
    application = args["application"]  # loaded, defaults filled, by the args contract
    with db.transaction() as tx:
        row = ledger.lock_project(tx.conn, code)
        if row.unit_id != args["unit_id"]:
            raise Forbidden(message_zh=f"只有项目建设单位可以修改项目 {code}",
                            message_en=f"only the unit that declared {code} may revise it", field="unit_id")
        if row.state != "returned":
            raise Conflict(
                message_zh=f"项目 {code} 当前状态为「{PROJECT_STATES.get(row.state, row.state)}」，"
                           "只有「退回修改」状态的项目可以修改重报",
                message_en=f"project {code} is {row.state}; only a returned project can be revised",
                field="code", state=row.state,
            )
        intake = domain.run_intake(profile, application, dt.date.fromisoformat(row.declared_on))
        if intake.refused:
            blocking = [f for f in intake.findings if f["severity"] == "blocking"]
            raise refusal(
                "intake", "修改后的申报不予受理：" + "；".join(f["zh"] for f in blocking),
                "The revised application is refused at intake: " + "; ".join(f["en"] for f in blocking),
                blocking[0]["cite"], findings=blocking, field="application",
            )
        revision = row.revision + 1
        values = {
            "name": application["name"],
            "kind": application["kind"],
            "amount": application["amount"],
            "year": application["year"],
            "state": "in_approval",
            "revision": revision,
            "batch": intake.batch.key if intake.batch else None,
            "batch_name": intake.batch.name if intake.batch else None,
            "intake_findings": intake.findings,
            "application": application,
        }
        ledger.update_project(tx.conn, code, **values)
        ledger.add_history(tx.conn, code, [
            domain.revision_entry(row.revision, revision),
            domain.intake_entry(intake.findings, False),
            domain.state_entry(row.state, "in_approval", None, "修改后重新报送审批", "resubmitted for approval"),
        ])
        ref = _project_ref(row)
        ref.update(name=application["name"], kind=application["kind"], amount=application["amount"])
        _emit_submitted(tx, ref, application, revision, row.declared_on)
    return get_project(db, code)


# ---- reading -------------------------------------------------------------------------

def get_project(db, code):
    with db.read() as conn:
        return ledger.get_view(conn, code)


def list_projects(db, args):
    with db.read() as conn:
        return ledger.list_summaries(
            conn, unit_id=args.get("unit_id"), state=args.get("state"), pool=args.get("pool"),
            limit=args["limit"], offset=args["offset"],
        )


def get_history(db, code):
    with db.read() as conn:
        return ledger.history(conn, code)


# ---- what review tells us ------------------------------------------------------------

def record_returned(db, event):
    """review returned the project for revision (退回修改)."""
    p = event["payload"]
    code = p["project"]["code"]
    with db.transaction(event=event) as tx:
        row = ledger.lock_project(tx.conn, code)
        ledger.update_project(tx.conn, code, state="returned", returns=p["returns"], reasons=p["reasons"],
                              stage=p["stage"])
        ledger.add_history(tx.conn, code, domain.returned_entries(
            row.state, p["returns"], p["reasons"], p["stage"], p["cite"]))


def record_refused(db, event):
    """review refused the project (不予批准); it may be barred until a date."""
    p = event["payload"]
    code = p["project"]["code"]
    with db.transaction(event=event) as tx:
        row = ledger.lock_project(tx.conn, code)
        ledger.update_project(tx.conn, code, state="refused", reasons=p["reasons"],
                              barred_until=p.get("barred_until"), stage=p["stage"])
        ledger.add_history(tx.conn, code, domain.refused_entries(
            row.state, p["reasons"], p.get("barred_until"), p["stage"], p["cite"]))


def record_approved(db, profile, event):
    """review approved the project (批复): store the approval, move it to its pool and
    enter its system in the catalog as planned."""
    p = event["payload"]
    code = p["project"]["code"]
    with db.transaction(event=event) as tx:
        row = ledger.lock_project(tx.conn, code)
        ledger.update_project(
            tx.conn, code, state="approved", pool=p["pool"], reasons=[],
            approval_document_no=p["document_no"], approval_amount=p["approved_amount"],
            approval_decision_body=p["decision_body"], approved_on=p["approved_on"],
            approval_conditions=p.get("conditions") or [],
        )
        ledger.add_history(tx.conn, code, domain.approved_entries(
            row.state, row.pool, p["pool"], p["document_no"], p["decision_body"], p["approved_amount"], p["cite"]))
        _catalog_planned_system(tx.conn, profile, row)


def _catalog_planned_system(conn, profile, row):
    if ledger.find_system(conn, project_code=row.code) is not None:
        return
    same_name = ledger.find_system(conn, unit_id=row.unit_id, name=row.name)
    if same_name is not None:
        if same_name.project_code is None:
            ledger.update_system(conn, same_name.id, project_code=row.code)
        return
    ledger.insert_system(conn, row.unit_id, row.name, row.code, "planned", catalog_cite(profile))


def record_stage(db, event):
    """review moved the case to another stage (history only, and the current stage)."""
    p = event["payload"]
    code = p["project"]["code"]
    with db.transaction(event=event) as tx:
        row = ledger.lock_project(tx.conn, code)
        ledger.update_project(tx.conn, code, stage=p["stage"], stage_name=p["stage_name"])
        ledger.add_history(tx.conn, code, [domain.stage_entry(row.stage, p["stage"], p["stage_name"], p["cite"])])


# ---- the data bureau's opinions ------------------------------------------------------

def ledger_facts(db, code):
    """What the opinion checks need from the ledger (read *before* the desk opens its
    transaction: on SQLite a read inside it would wait for the writer, i.e. itself)."""
    with db.read() as conn:
        row = ledger.find_project(conn, code)
    return {"declared_on": row.declared_on} if row is not None else {}


def draft_opinion(profile, today, request, facts=None):
    """The automatic checks for one opinion request → a Draft.

    The plan check needs the declaration date: the ledger's, else the request's
    context, else today."""
    if request["agency"] != "data_bureau" or request["subject"] not in domain.REGISTRY_SUBJECTS:
        raise ValueError(f"registry answers data_bureau opinions on {domain.REGISTRY_SUBJECTS}, "
                         f"not {request['agency']}/{request['subject']}")
    declared_on = (facts or {}).get("declared_on") or (request.get("context") or {}).get("declared_on")
    findings, data = domain.check_opinion(
        request["subject"], request["application"], domain.Cites(profile, request["cite"]),
        declaration=profile.data["declaration"],
        declared_on=dt.date.fromisoformat(declared_on) if declared_on else today,
    )
    return Draft(findings=findings, data=data)


def opinion_issued(tx, profile, request, payload):
    """After the data bureau issues an opinion: note it in the history; an approving
    plan opinion puts the project in the yearly plan (年度计划)."""
    code = payload["code"]
    row = ledger.find_project(tx.conn, code)
    if row is None:
        log.warning("opinion issued for a project not in the ledger", extra={"code": code})
        return
    entries = [domain.opinion_entry(request["agency_name"], payload["subject"], payload["verdict"],
                                    payload["signed_by"], request["cite"])]
    if domain.plan_admitted(payload["subject"], payload["verdict"]) and row.pool != "yearly_plan":
        entries.append(domain.pool_entry(row.pool, "yearly_plan", request["cite"],
                                         "数据主管部门同意纳入年度计划", "the data bureau admitted it to the yearly plan"))
        ledger.update_project(tx.conn, code, pool="yearly_plan")
    ledger.add_history(tx.conn, code, entries)


# ---- the system catalog (系统目录) -----------------------------------------------------

def catalog_cite(profile):
    return profile.cite("catalog", "suite rule: every information system is kept in its unit's system catalog")


def register_system(db, profile, args):
    try:
        system_id = _register_system(db, profile, args)
    except IntegrityError:  # the same name registered concurrently
        raise _system_exists(args) from None
    with db.read() as conn:
        return ledger.get_system(conn, system_id)


def _system_exists(args):
    return Conflict(message_zh=f"单位 {args['unit_id']} 的系统目录中已有「{args['name']}」",
                    message_en=f"unit {args['unit_id']} already has a system named {args['name']!r}",
                    field="name")


def _register_system(db, profile, args):
    with db.transaction() as tx:
        if args.get("project_code"):
            project = ledger.find_project(tx.conn, args["project_code"])
            if project is None:
                raise ledger.not_found(args["project_code"])
            if project.unit_id != args["unit_id"]:
                raise Forbidden(message_zh=f"项目 {project.code} 不属于单位 {args['unit_id']}",
                                message_en=f"project {project.code} does not belong to unit {args['unit_id']}",
                                field="project_code")
        if ledger.find_system(tx.conn, unit_id=args["unit_id"], name=args["name"]) is not None:
            raise _system_exists(args)
        return ledger.insert_system(tx.conn, args["unit_id"], args["name"], args.get("project_code"),
                                    args["status"], catalog_cite(profile))


def list_systems(db, args):
    with db.read() as conn:
        return ledger.list_systems(conn, unit_id=args.get("unit_id"), project_code=args.get("project_code"),
                                   limit=args["limit"])
