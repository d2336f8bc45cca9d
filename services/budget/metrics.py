"""The budget service's gauges, refreshed at each scrape of ``/metrics``.

* ``govpm_items_due`` / ``govpm_items_overdue`` ``{service="budget", kind="signature"}`` — opinions
  waiting for an officer's signature in its desk (``runtime.opinions``), before / past their due date.
"""
from runtime import metrics as m

m.register_desk("budget")
