"""Stand-ins for other agencies' services in single-service tests."""
import json

from sqlalchemy import Column, MetaData, String, Table, Text

from runtime.db import runtime_tables
from runtime.dependencies import Database
from runtime.messaging import subscribe


def fake_review(agency_service):
    """A service named ``review`` that emits through its own outbox and records the
    ``opinion_issued`` events of ``agency_service`` from the very queue the real review
    service uses. Returns (service class, its metadata, its ``received`` table)."""
    metadata = MetaData()
    runtime_tables(metadata)
    received = Table(
        "received", metadata,
        Column("request_id", String(64), primary_key=True),
        Column("payload", Text, nullable=False),
    )

    def handle(self, event):
        payload = event["payload"]
        with self.db.transaction(event=event) as tx:
            tx.conn.execute(received.insert().values(
                request_id=payload["request_id"], payload=json.dumps(payload, ensure_ascii=False)))

    method = f"handle_{agency_service}_opinion_issued"
    handle.__name__ = method
    cls = type("FakeReview", (), {
        "__doc__": "Stands in for the review service: emits through its outbox, records opinions.",
        "name": "review",
        "db": Database(metadata),
        method: subscribe(agency_service, "opinion_issued")(handle),
    })
    return cls, metadata, received


def submitted(code):
    """The smallest valid ``project_submitted`` payload for project ``code``."""
    app = {"name": "n", "kind": "build", "amount": 1, "year": 2026, "summary": "s"}
    return {
        "project": {"code": code, "jurisdiction": "jinjiang", "unit_id": "u", "unit_name": "U",
                    "name": "n", "kind": "build", "amount": 1},
        "application": app, "revision": 0, "declared_on": "2026-11-24",
    }
