"""The registry's gauges, refreshed at each scrape of ``/metrics``.

* ``govpm_projects{jurisdiction, state, pool}`` — the ledger by state and pool (``pool="none"``
  while a project is in no pool: declared, refused at intake). One GROUP BY over the ledger.
* ``govpm_items_due`` / ``govpm_items_overdue`` ``{service="registry", kind="signature"}`` — the data
  bureau's opinions waiting for an officer's signature, before / past their due date.
"""
from sqlalchemy import func, select

from runtime import metrics as m

from .models import projects


def project_gauges(container):
    core = m.database(container)
    if core is None:
        return
    columns = (projects.c.jurisdiction, projects.c.state, projects.c.pool)
    with core.read() as conn:
        rows = conn.execute(select(*columns, func.count()).group_by(*columns)).all()
    m.replace_samples(m.PROJECTS, {(jurisdiction, state, pool or "none"): count
                                   for jurisdiction, state, pool, count in rows})


m.add_refresher(project_gauges, service="registry")
m.register_desk("registry")
