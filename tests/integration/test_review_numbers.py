"""Approval document numbers (批复文号) on SQLite and PostgreSQL: one upsert per number,
counted per year, unique and gapless when workers take numbers at the same time."""
import os

import eventlet
import pytest

from services.review.models import metadata
from services.review.repository import ReviewRepository
from tests.support.databases import migrated_core

pytestmark = [pytest.mark.integration, pytest.mark.db]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def core(make_db_url):
    with migrated_core(make_db_url("review"), metadata, "review",
                       os.path.join(ROOT, "services", "review", "migrations")) as db:
        yield db


def _take(core, year):
    with core.transaction() as tx:
        return ReviewRepository(tx.conn).next_document_number(year)


def test_numbers_count_up_per_year(core):
    assert [_take(core, 2026) for _ in range(3)] == [1, 2, 3]
    assert _take(core, 2027) == 1
    assert _take(core, 2026) == 4


def test_numbers_taken_at_the_same_time_are_unique_and_gapless(core):
    # green threads, each in its own transaction: on PostgreSQL the upsert's row lock makes
    # them wait for each other; on SQLite they queue for the single writer
    pool = eventlet.GreenPool(8)
    numbers = list(pool.imap(lambda _: _take(core, 2026), range(40)))
    assert sorted(numbers) == list(range(1, 41))


def test_a_rolled_back_number_is_given_again(core):
    assert _take(core, 2026) == 1
    with pytest.raises(RuntimeError):
        with core.transaction() as tx:
            assert ReviewRepository(tx.conn).next_document_number(2026) == 2
            raise RuntimeError("the decision failed after taking its number")
    assert _take(core, 2026) == 2


def test_a_cases_listing_columns_follow_its_saves(core):
    """The columns beside the case document (what listing and the unique document number
    use): set when the case is created, and the ones that change kept in step with each
    save. The jurisdiction and unit are written once; the document number once it exists."""
    from sqlalchemy import select

    from services.review.models import cases

    case = {"code": "C-1", "jurisdiction": "jinjiang", "unit_id": "unit-edu", "name": "n", "kind": "build",
            "amount": 500_000, "state": "in_progress", "current_stage": "pre_review", "revision": 1, "returns": 0,
            "expert_failures": 0, "stages": [], "approval": None}

    def save(new=False, **changes):
        case.update(changes)
        with core.transaction() as tx:
            ReviewRepository(tx.conn).save_case(case, new=new)

    def row():
        with core.read() as conn:
            found = conn.execute(select(cases).where(cases.c.code == "C-1")).one()
        return (found.jurisdiction, found.unit_id, found.name, found.amount, found.state, found.current_stage,
                found.document_no)

    save(new=True)
    assert row() == ("jinjiang", "unit-edu", "n", 500_000, "in_progress", "pre_review", None)
    save(name="n2", amount=400_000, current_stage="decision")
    assert row() == ("jinjiang", "unit-edu", "n2", 400_000, "in_progress", "decision", None)
    save(state="approved", approval={"document_no": "锦发改审〔2026〕1号"})
    assert row() == ("jinjiang", "unit-edu", "n2", 400_000, "approved", "decision", "锦发改审〔2026〕1号")
    save(current_stage=None)
    assert row()[-2:] == (None, "锦发改审〔2026〕1号")
