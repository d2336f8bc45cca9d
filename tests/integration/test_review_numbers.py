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
