"""Signed opinions and the hash-chained audit log (no network)."""
import pytest
from sqlalchemy import MetaData, update

from runtime import audit, signing
from runtime.db import DatabaseCore, runtime_tables

pytestmark = pytest.mark.unit


def opinion(**overrides):
    payload = {"request_id": "r-1", "code": "2026-510104-00001-X", "stage": "joint_review", "agency": "cac",
               "subject": "security", "verdict": "approve", "findings": [], "conditions": [],
               "signed_by": "officer-1", "signed_at": "2026-11-24T08:00:00Z", "data": {}}
    payload.update(overrides)
    return payload


@pytest.fixture
def rings(tmp_path):
    return signing.KeyRing(str(tmp_path), "security"), signing.KeyRing(str(tmp_path), "review")


def test_a_signed_opinion_verifies_against_the_issuers_public_key(rings):
    security, review = rings
    payload = opinion()
    payload["signature"] = security.sign(payload)
    assert review.verify(payload, expected_signer="security")


def test_an_altered_opinion_fails_verification(rings):
    security, review = rings
    payload = opinion()
    payload["signature"] = security.sign(payload)
    payload["verdict"] = "reject"
    with pytest.raises(signing.SignatureInvalid, match="does not match"):
        review.verify(payload, expected_signer="security")


def test_an_opinion_signed_by_another_agency_service_is_refused(tmp_path, rings):
    _, review = rings
    registry = signing.KeyRing(str(tmp_path), "registry")
    payload = opinion()
    payload["signature"] = registry.sign(payload)
    with pytest.raises(signing.SignatureInvalid, match="expected 'security'"):
        review.verify(payload, expected_signer="security")


def test_an_unsigned_opinion_or_an_unknown_key_is_refused(tmp_path, rings):
    _, review = rings
    with pytest.raises(signing.SignatureInvalid, match="not signed"):
        review.verify(opinion(), expected_signer="security")
    payload = opinion()
    payload["signature"] = {"key_id": "filing", "algorithm": "ed25519", "value": "AAAA"}
    with pytest.raises(signing.SignatureInvalid, match="no trusted public key"):
        review.verify(payload, expected_signer="filing")


@pytest.fixture
def audit_db(tmp_path):
    metadata = MetaData()
    runtime_tables(metadata)
    table = audit.audit_table(metadata)
    core = DatabaseCore(f"sqlite:///{tmp_path}/audit.db", metadata, "security")
    core.migrate()
    return core, table


def test_the_audit_chain_links_every_entry_to_the_one_before(audit_db):
    core, table = audit_db
    for i in range(5):
        with core.transaction() as tx:
            audit.append(tx.conn, table, action="opinion_issued", ref=f"r-{i}", code="C", actor="auto",
                         digest=signing.digest(opinion(request_id=f"r-{i}")))
    with core.read() as conn:
        assert audit.verify(conn, table) == (True, 5, None)


def test_altering_an_entry_breaks_the_chain_there(audit_db):
    core, table = audit_db
    for i in range(4):
        with core.transaction() as tx:
            audit.append(tx.conn, table, action="opinion_issued", ref=f"r-{i}", code="C", actor="auto",
                         digest=signing.digest(opinion(request_id=f"r-{i}")))
    with core.transaction() as tx:
        tx.conn.execute(update(table).where(table.c.seq == 3).values(actor="someone-else"))
    with core.read() as conn:
        assert audit.verify(conn, table) == (False, 3, 3)


def test_removing_an_entry_breaks_the_chain(audit_db):
    core, table = audit_db
    for i in range(3):
        with core.transaction() as tx:
            audit.append(tx.conn, table, action="opinion_issued", ref=f"r-{i}", code="C", actor="auto",
                         digest="d")
    with core.transaction() as tx:
        tx.conn.execute(table.delete().where(table.c.seq == 2))
    with core.read() as conn:
        ok, _, broken = audit.verify(conn, table)
    assert not ok and broken == 3
