"""The review service's gauges, refreshed at each scrape of ``/metrics``.

From the pending-opinion index (``case_opinions``, status ``requested``; ``due_on`` already
counts Chinese working days) and the cases:

* ``govpm_opinions_pending{service="review", agency, timeliness="on_time"|"overdue"}`` — opinion
  requests not yet answered, by the agency asked; overdue once ``due_on`` is before today.
  Every agency of the jurisdiction's profile has both series (0 when nothing waits).
* ``govpm_opinion_pending_oldest_age_seconds{service="review", agency}`` — since the day the
  oldest unanswered request was made (0 when none).
* ``govpm_items_due`` / ``govpm_items_overdue`` ``{service="review", kind="opinion"}`` — the same
  requests, all agencies together.
* ``govpm_holds_in_force{service="review", kind="review_bar"}`` — projects refused and barred from
  review (不再组织评审) until a date still to come.

Two indexed queries: a GROUP BY agency over ``ix_case_opinions_status_agency`` and a COUNT over
``ix_cases_state_updated``.
"""
from sqlalchemy import case, func, select

from runtime import metrics as m
from runtime.config import profile

from .models import case_opinions, cases

SERVICE = "review"


def _agencies():
    try:
        return list(profile().data["agencies"])
    except Exception:  # no profile (misconfigured): only the agencies that have requests
        return []


def review_gauges(container):
    core = m.database(container)
    if core is None:
        return
    now = m.now_china()
    today = now.date().isoformat()
    overdue = case((case_opinions.c.due_on < today, 1), else_=0)
    with core.read() as conn:
        rows = conn.execute(
            select(case_opinions.c.agency, func.count(), func.coalesce(func.sum(overdue), 0),
                   func.min(case_opinions.c.requested_on))
            .where(case_opinions.c.status == "requested")
            .group_by(case_opinions.c.agency)
        ).all()
        barred = conn.execute(
            select(func.count()).select_from(cases)
            .where(cases.c.state == "refused", cases.c.barred_until > today)
        ).scalar()

    pending, oldest = {}, {}
    for agency in _agencies():
        pending[(SERVICE, agency, "on_time")] = pending[(SERVICE, agency, "overdue")] = 0
        oldest[(SERVICE, agency)] = 0
    for agency, total, late, first in rows:
        pending[(SERVICE, agency, "on_time")] = total - late
        pending[(SERVICE, agency, "overdue")] = late
        oldest[(SERVICE, agency)] = m.age_seconds(first, now) if first else 0
    m.replace_samples(m.OPINIONS_PENDING, pending, service=SERVICE)
    m.replace_samples(m.OPINION_OLDEST_AGE, oldest, service=SERVICE)
    m.ITEMS_DUE.labels(SERVICE, "opinion").set(sum(total - late for _, total, late, _ in rows))
    m.ITEMS_OVERDUE.labels(SERVICE, "opinion").set(sum(late for _, _, late, _ in rows))
    m.HOLDS_IN_FORCE.labels(SERVICE, "review_bar").set(barred or 0)


m.add_refresher(review_gauges, service=SERVICE)
