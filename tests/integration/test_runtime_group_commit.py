"""Units of work that queue for the database share a commit (SQLite group commit), and
each still behaves as its own transaction: it returns only once its work is committed,
a failing unit rolls back alone, and a failed commit fails every unit it carried.

The behaviour every caller relies on is checked on both backends; what is particular to
the group (fewer commits, a commit failure spreading to the group) on SQLite, where
groups form.
"""
import eventlet
import eventlet.event
import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from runtime import metrics
from runtime.db import AlreadyHandled, GroupCommit, runtime_tables
from tests.support.databases import migrated_core

md = MetaData()
runtime_tables(md)
notes = Table("notes", md, Column("id", Integer, primary_key=True), Column("text", String(50), nullable=False))


@pytest.fixture
def core(make_db_url):
    with migrated_core(make_db_url("groups"), md, "registry") as core:
        yield core


def count_commits(core):
    commits = []
    event.listen(core.engine, "commit", lambda conn: commits.append(1))
    return commits


def visible(core, text):
    with core.read() as conn:
        return conn.execute(select(func.count()).select_from(notes).where(notes.c.text == text)).scalar()


def write(core, text, seen_after_return, fail=False, event_id=None):
    envelope = None
    if event_id:
        envelope = {"event_id": event_id, "event_type": "x", "source": "review"}
    with core.transaction(event=envelope) as tx:
        tx.conn.execute(insert(notes), {"text": text})
        eventlet.sleep(0)  # other workers run meanwhile and queue for the writer
        if fail:
            raise ValueError(text)
    # the caller is answered (or the event acked) only now: the row must be on disk
    seen_after_return[text] = visible(core, text)


def run_all(jobs):
    threads = [eventlet.spawn(fn, *args, **kwargs) for fn, args, kwargs in jobs]
    outcomes = []
    for gt in threads:
        try:
            gt.wait()
            outcomes.append(None)
        except Exception as exc:  # noqa: BLE001 - each outcome is asserted
            outcomes.append(exc)
    return outcomes


def test_concurrent_units_each_return_after_their_commit(core):
    seen = {}
    outcomes = run_all([(write, (core, f"n{i}", seen), {}) for i in range(20)])
    assert outcomes == [None] * 20
    assert seen == {f"n{i}": 1 for i in range(20)}


def sample(name, service):
    return metrics.REGISTRY.get_sample_value(name, {"service": service}) or 0.0


@pytest.fixture
def metered_core(make_db_url):
    with migrated_core(make_db_url("metered"), md, "metered") as core:
        yield core


def test_commits_and_the_units_they_carry_are_metered(metered_core):
    commits = count_commits(metered_core)
    before = {name: sample(name, "metered") for name in (
        "govpm_db_units_per_commit_sum", "govpm_db_units_per_commit_count", "govpm_db_commit_duration_seconds_count")}
    seen = {}
    assert run_all([(write, (metered_core, f"m{i}", seen), {}) for i in range(12)]) == [None] * 12
    assert sample("govpm_db_units_per_commit_sum", "metered") - before["govpm_db_units_per_commit_sum"] == 12
    for name in ("govpm_db_units_per_commit_count", "govpm_db_commit_duration_seconds_count"):
        assert sample(name, "metered") - before[name] == len(commits)


def test_a_failing_unit_rolls_back_alone(core):
    seen = {}
    jobs = [(write, (core, f"n{i}", seen), {"fail": i % 3 == 1}) for i in range(12)]
    outcomes = run_all(jobs)
    for i, outcome in enumerate(outcomes):
        if i % 3 == 1:
            assert isinstance(outcome, ValueError)
            assert visible(core, f"n{i}") == 0
        else:
            assert outcome is None
            assert seen[f"n{i}"] == 1


def test_a_duplicate_event_in_the_same_group_is_already_handled(core):
    seen = {}
    outcomes = run_all([(write, (core, f"d{i}", seen), {"event_id": "same-event"}) for i in range(4)])
    assert sum(outcome is None for outcome in outcomes) == 1
    assert sum(isinstance(outcome, AlreadyHandled) for outcome in outcomes) == 3
    with core.read() as conn:
        assert conn.execute(select(func.count()).select_from(notes)).scalar() == 1


@pytest.fixture
def sqlite_core(tmp_path):
    with migrated_core(f"sqlite:///{tmp_path}/groups.db", md, "registry") as core:
        yield core


def test_sqlite_queued_units_share_commits(sqlite_core):
    commits = count_commits(sqlite_core)
    seen = {}
    assert run_all([(write, (sqlite_core, f"n{i}", seen), {}) for i in range(40)]) == [None] * 40
    assert seen == {f"n{i}": 1 for i in range(40)}
    # 40 units, at most MAX_MEMBERS to a commit: far fewer commits than units
    assert -(-40 // GroupCommit.MAX_MEMBERS) <= len(commits) < 20


def test_sqlite_events_reach_the_relay_once_per_group_in_commit_order(sqlite_core):
    handed = []
    sqlite_core.committed.append(lambda records: handed.append([r.correlation_id for r in records]))
    codes = [f"2026-150621-{i + 1:05d}-0" for i in range(10)]

    def emit(code):
        from tests.support.fakes import submitted
        with sqlite_core.transaction() as tx:
            tx.emit("project_submitted", submitted(code), correlation_id=code)
            eventlet.sleep(0)

    assert run_all([(emit, (code,), {}) for code in codes]) == [None] * 10
    assert [code for batch in handed for code in batch] == codes
    assert len(handed) < 10


deferred = MetaData()
runtime_tables(deferred)
Table("parents", deferred, Column("id", Integer, primary_key=True))
Table("children", deferred, Column("id", Integer, primary_key=True),
      Column("parent_id", Integer, ForeignKey("parents.id", deferrable=True, initially="DEFERRED"), nullable=False))


@pytest.fixture
def deferred_core(tmp_path):
    with migrated_core(f"sqlite:///{tmp_path}/deferred.db", deferred, "registry") as core:
        yield core


def test_sqlite_a_failed_commit_fails_every_unit_of_its_group(deferred_core):
    core = deferred_core
    children = deferred.tables["children"]
    handed = []
    core.committed.append(handed.append)

    def add_child(parent_id):
        with core.transaction() as tx:
            tx.conn.execute(insert(children), {"parent_id": parent_id})
            eventlet.sleep(0)

    with core.transaction() as tx:
        tx.conn.execute(insert(deferred.tables["parents"]), {"id": 1})
    kept = core._writers.idle  # the writer's connection stays open between groups
    with core.transaction() as tx:
        assert tx.conn is kept
    # the middle unit's row breaks a deferred foreign key: only the COMMIT finds it, and
    # the two good units committed with it are not on disk either
    outcomes = run_all([(add_child, (pid,), {}) for pid in (1, 404, 1)])
    assert all(isinstance(outcome, IntegrityError) for outcome in outcomes), outcomes
    # the failed group's connection is discarded, not kept for the next group
    assert kept.closed and core._writers.idle is None
    with core.read() as conn:
        assert conn.execute(select(func.count()).select_from(children)).scalar() == 0
    assert handed == []
    # the writer is free again: the next unit commits on its own
    with core.transaction() as tx:
        tx.conn.execute(insert(children), {"parent_id": 1})
    with core.read() as conn:
        assert conn.execute(select(func.count()).select_from(children)).scalar() == 1


def test_sqlite_the_readiness_ping_does_not_wait_for_a_writer_of_its_own_process(sqlite_core):
    # a writer holds SQLite's write lock and yields (as a unit does while its group waits):
    # a ping taking the write lock would block the whole process in SQLite's busy handler
    # until busy_timeout, and then fail with "database is locked"
    release = eventlet.event.Event()

    def writer():
        with sqlite_core.transaction() as tx:
            tx.conn.execute(insert(notes), {"text": "held"})
            release.wait()

    thread = eventlet.spawn(writer)
    eventlet.sleep(0)
    assert sqlite_core.ping() is True
    release.send()
    thread.wait()
    assert visible(sqlite_core, "held") == 1
