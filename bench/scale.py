"""Scale: fill the registry's ledger with N projects, straight into its tables.

The rows are what ``registry.declare_project`` writes (the ledger row with its complete
application, a declaration and a state entry in the history), spread over 500 units, the
states a real ledger holds and the pools those states imply; codes are real project codes
of earlier years, and the code counters are set past them so that later declarations do
not collide. One executemany per chunk: 100,000 projects take seconds, not 100,000 RPCs.
"""
import datetime as dt
import json
import random

from sqlalchemy import insert, select

from runtime.db import make_engine, utcnow
from services.registry import domain
from services.registry.models import code_counters, project_history, projects

UNITS = 500
STATES = [  # (state, weight, pools it may be in)
    ("in_approval", 30, ["reserve", "yearly_plan"]),
    ("approved", 40, ["yearly_plan", "library", "to_build", "operation"]),
    ("returned", 10, ["reserve"]),
    ("refused", 5, ["reserve"]),
    ("intake_refused", 15, [None]),
]


def _json(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def unit_id(i):
    return f"SCALE-U{i % UNITS:04d}"


def load(db_url, n, admin_code, jurisdiction, application, chunk=5000, seed=1):
    """Insert ``n`` projects (years 2023, 2024, ... 99,999 codes a year); returns seconds taken."""
    rng = random.Random(seed)
    engine = make_engine(db_url)
    weights = [w for _, w, _ in STATES]
    app_json = _json(application)
    started = dt.datetime.now()
    now = utcnow()
    per_year = domain.MAX_SEQUENCE
    years = {}
    try:
        for start in range(0, n, chunk):
            with engine.begin() as conn:  # a transaction per chunk, as a busy ledger grows
                rows, history = [], []
                for i in range(start, min(n, start + chunk)):
                    year = 2023 + i // per_year
                    sequence = i % per_year + 1
                    years[year] = sequence
                    code = domain.project_code(year, admin_code, sequence)
                    state, _, pools = rng.choices(STATES, weights)[0]
                    pool = rng.choice(pools)
                    unit = unit_id(i)
                    rows.append({
                        "code": code, "jurisdiction": jurisdiction, "unit_id": unit, "unit_name": f"规模测试单位 {unit}",
                        "name": f"{application['name']} {i:06d}", "kind": application["kind"],
                        "amount": application["amount"], "year": year + 1, "state": state, "pool": pool,
                        "revision": 0, "declared_on": f"{year}-06-01", "batch": None, "batch_name": None,
                        "stage": None, "stage_name": None, "intake_findings": "[]", "application": app_json,
                        "returns": 0, "reasons": "[]", "barred_until": None, "approval_document_no": None,
                        "approval_amount": None, "approval_decision_body": None, "approved_on": None,
                        "approval_conditions": None, "created_at": now, "updated_at": now,
                    })
                    for entry in (domain.declared_entry(code, f"{year}-06-01"),
                                  domain.state_entry(None, state, None)):
                        history.append({"code": code, "at": now, **entry})
                conn.execute(insert(projects), rows)
                conn.execute(insert(project_history), history)
        with engine.begin() as conn:
            for year, last in years.items():
                found = conn.execute(select(code_counters.c.last).where(
                    (code_counters.c.year == year) & (code_counters.c.admin_code == admin_code))).scalar()
                if found is None:
                    conn.execute(insert(code_counters).values(year=year, admin_code=admin_code, last=last))
                else:
                    conn.execute(code_counters.update().where(
                        (code_counters.c.year == year) & (code_counters.c.admin_code == admin_code)
                    ).values(last=max(found, last)))
        if engine.dialect.name == "postgresql":  # what autovacuum would do after such a load
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE projects")
        else:  # what SQLite's automatic checkpoints would have done as the ledger grew
            raw = engine.raw_connection()
            try:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # autocommit: outside a transaction
            finally:
                raw.close()
    finally:
        engine.dispose()
    return (dt.datetime.now() - started).total_seconds()
