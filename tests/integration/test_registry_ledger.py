"""The registry's ledger on SQLite and PostgreSQL, without the broker in the way:
project codes stay unique and gapless when several processes declare at once, and
listing stays fast with 100,000 projects."""
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import select, text

from contracts import load
from contracts.application import DeclareProjectSchema
from policy import load_profile
from services.registry import ledger, usecases
from services.registry.domain import is_valid_code
from services.registry.models import code_counters, metadata
from tests.support.databases import migrated_core

pytestmark = [pytest.mark.integration, pytest.mark.db]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DECLARER = textwrap.dedent("""
    import datetime as dt, json, sys
    from contracts import load
    from contracts.application import DeclareProjectSchema
    from policy import load_profile
    from runtime.db import DatabaseCore
    from services.registry import usecases
    from services.registry.models import metadata

    url, count, worker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    core = DatabaseCore(url, metadata, "registry")
    profile = load_profile("jinjiang")
    print("ready", flush=True)
    sys.stdin.readline()  # every process starts declaring at the same moment
    codes = []
    for i in range(count):
        args = load(DeclareProjectSchema, {"unit_id": worker, "unit_name": worker, "application": {
            "name": f"{worker}-{i}", "kind": "build", "amount": 100000, "year": 2027, "summary": "s",
            "funding": {"source": "budget", "amount": 100000}}})
        codes.append(usecases.declare_project(core, profile, dt.date(2026, 11, 24), args)["code"])
    print(json.dumps(codes))
""")


@pytest.fixture
def core(make_db_url):
    with migrated_core(make_db_url("registry"), metadata, "registry",
                       os.path.join(ROOT, "services", "registry", "migrations")) as db:
        yield db


def test_processes_declaring_at_the_same_time_get_unique_gapless_codes(core):
    processes, each = 4, 10
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONWARNINGS="ignore")
    workers = [subprocess.Popen([sys.executable, "-c", DECLARER, core.url, str(each), f"unit-{n}"],
                                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for n in range(processes)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    codes = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        codes.extend(json.loads(out.strip().splitlines()[-1]))
    assert len(codes) == len(set(codes)) == processes * each
    assert all(is_valid_code(code) for code in codes)
    assert sorted(int(code.split("-")[2]) for code in codes) == list(range(1, processes * each + 1))
    with core.read() as conn:
        assert conn.execute(select(code_counters.c.last)).scalar_one() == processes * each


def test_the_sequence_restarts_for_a_new_year_and_the_year_is_the_year_of_declaration(core):
    profile = load_profile("jinjiang")

    def declare(on):
        args = load(DeclareProjectSchema, {"unit_id": "u", "unit_name": "U", "application": {
            "name": "n", "kind": "om", "amount": 1, "year": 2027, "summary": "s",
            "funding": {"source": "budget", "amount": 1}}})
        return usecases.declare_project(core, profile, on, args)["code"]

    assert declare(dt.date(2026, 12, 30)).startswith("2026-510104-00001-")
    assert declare(dt.date(2026, 12, 31)).startswith("2026-510104-00002-")
    assert declare(dt.date(2027, 1, 1)).startswith("2027-510104-00001-")


SEED_100K = """
INSERT INTO projects (code, jurisdiction, unit_id, unit_name, name, kind, amount, year, state, pool, revision,
                      declared_on, intake_findings, application, returns, reasons, created_at, updated_at)
WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 100000)
SELECT 'C' || x, 'jinjiang', 'unit-' || (x % 500), 'U', 'P' || x, 'build', 1000 * x, 2027,
       CASE x % 6 WHEN 0 THEN 'intake_refused' WHEN 1 THEN 'in_approval' WHEN 2 THEN 'returned'
                  WHEN 3 THEN 'refused' ELSE 'approved' END,
       CASE x % 6 WHEN 0 THEN NULL WHEN 4 THEN 'library' WHEN 5 THEN 'yearly_plan' ELSE 'reserve' END,
       0, '2026-11-24', '[]', '{}', 0, '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP
FROM s
"""


def test_listing_stays_fast_with_a_hundred_thousand_projects(core):
    with core.transaction() as tx:
        tx.conn.execute(text(SEED_100K))
    with core.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    filters = [{}, {"unit_id": "unit-7"}, {"state": "returned"}, {"pool": "library"},
               {"unit_id": "unit-7", "state": "approved"}, {"state": "in_approval", "pool": "reserve"}]
    with core.read() as conn:
        for f in filters:
            started = time.perf_counter()
            page = ledger.list_summaries(conn, limit=50, offset=10, **f)
            elapsed = time.perf_counter() - started
            assert page["total"] > 10 and len(page["items"]) == min(50, page["total"] - 10)
            assert elapsed < 0.3, f"list_projects({f}) took {elapsed:.3f}s"
        assert ledger.list_summaries(conn, state="returned")["total"] == 16667
        assert ledger.list_summaries(conn, unit_id="unit-7")["total"] == 200
        ids = [int(p["code"][1:]) for p in ledger.list_summaries(conn, unit_id="unit-7", limit=5)["items"]]
        assert ids == sorted(ids, reverse=True)  # newest first
    if core.is_sqlite:
        with core.engine.connect() as conn:
            plan = " ".join(str(row) for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM projects WHERE state = 'returned' ORDER BY id DESC LIMIT 50"))
        assert "ix_projects_state_id" in plan
