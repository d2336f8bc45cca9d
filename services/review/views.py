"""What the review service shows of a case (contracts.rpc_review.CaseViewSchema), as plain
Python over the case dict the saga keeps."""
import datetime as dt


def _overdue(opinion, today):
    return opinion["status"] == "requested" and dt.date.fromisoformat(opinion["due_on"]) < today


def opinion_view(opinion, today):
    return {
        "request_id": opinion["request_id"],
        "agency": opinion["agency"],
        "agency_name": opinion["agency_name"],
        "subject": opinion["subject"],
        "sign": opinion["sign"],
        "status": opinion["status"],
        "verdict": opinion.get("verdict"),
        "requested_on": opinion["requested_on"],
        "due_on": opinion["due_on"],
        "overdue": _overdue(opinion, today),
        "findings": opinion.get("findings") or [],
        "conditions": opinion.get("conditions") or [],
        "data": opinion.get("data") or {},
        "signed_by": opinion.get("signed_by"),
        "cite": opinion["cite"],
    }


def document_view(document, names):
    return {
        "doc_type": document["doc_type"],
        "name": names.get(document["doc_type"], document["doc_type"]),
        "version": document["version"],
        "title": document["title"],
        "summary": document.get("summary", ""),
        "submitted_on": document["submitted_on"],
        "submitted_by": document["submitted_by"],
    }


def panel_view(panel):
    if not panel:
        return None
    return {
        "size": panel["size"],
        "pass_fraction": panel["pass_fraction"],
        "directed_max_fraction": panel["directed_max_fraction"],
        "organizer": panel["organizer"],
        "drawn_on": panel["drawn_on"],
        "cite": panel["cite"],
        "experts": [
            {"expert_id": m["expert_id"], "name": m["name"], "unit_id": m["unit_id"], "field": m["field"],
             "directed": m["directed"]}
            for m in panel["experts"]
        ],
        "votes": [dict(v) for v in panel["votes"]],
        "approvals": sum(1 for v in panel["votes"] if v["vote"] == "approve"),
        "rejections": sum(1 for v in panel["votes"] if v["vote"] == "reject"),
    }


def stage_view(case, stage, today, names):
    latest = []
    if stage["type"] == "documents":
        for doc_type in stage["documents_required"]:
            versions = case["documents"].get(doc_type) or []
            if versions:
                latest.append(document_view(versions[-1], names))
    return {
        "key": stage["key"],
        "name": stage["name"],
        "type": stage["type"],
        "status": stage["status"],
        "cite": stage["cite"],
        "requires_stages": stage.get("requires_stages") or [],
        "entered_on": stage.get("entered_on"),
        "closed_on": stage.get("closed_on"),
        "opinions": [opinion_view(o, today) for o in stage["opinions"]],
        "documents_required": stage.get("documents_required") or [],
        "documents_cite": stage.get("documents_cite"),
        "documents": latest,
        "panel": panel_view(stage.get("panel")),
        "decision": stage.get("decision"),
        "note": stage.get("note"),
        "rounds": len(stage.get("attempts") or []),
    }


def _case_head(case):
    """What a case view and a case summary both start with: the project reference
    (ProjectRefSchema), the revision and where the case stands."""
    current = next((s for s in case["stages"] if s["key"] == case.get("current_stage")), None)
    return {
        "code": case["code"],
        "jurisdiction": case["jurisdiction"],
        "unit_id": case["unit_id"],
        "unit_name": case["unit_name"],
        "name": case["name"],
        "kind": case["kind"],
        "amount": case["amount"],
        "revision": case["revision"],
        "state": case["state"],
        "current_stage": case.get("current_stage"),
        "current_stage_name": current["name"] if current else None,
        "returns": case["returns"],
        "barred_until": case.get("barred_until"),
    }


def case_view(case, today, names=None):
    names = names or {}
    documents = [document_view(d, names) for versions in case["documents"].values() for d in versions]
    return dict(
        _case_head(case),
        declared_on=case["declared_on"],
        stages=[stage_view(case, s, today, names) for s in case["stages"]],
        documents=documents,
        expert_failures=case["expert_failures"],
        bar_cite=case.get("bar_cite"),
        conditions=case.get("conditions") or [],
        approval=case.get("approval"),
        history=case.get("history") or [],
    )


def case_summary(case):
    return dict(_case_head(case), document_no=(case.get("approval") or {}).get("document_no"))
