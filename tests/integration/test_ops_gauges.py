"""The domain gauges a service computes at each scrape, over SQLite and PostgreSQL.

Rows are written straight into the service's own tables (what its use cases would leave
behind), so each count, each overdue decision against ``TODAY`` and each vanished label
set is exact. The whole flow, through the HTTP API, is in ``tests/flows/test_ops_metrics.py``.
"""
import datetime as dt
import json
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from runtime import metrics
from runtime.web import bound_port
from tests.deploy.promtool import check_metrics
from tests.support.suite import Suite

pytestmark = [pytest.mark.integration, pytest.mark.db]

TODAY = "2026-11-24"  # a Tuesday
DAY = 86400


def scrape(container):
    text = requests.get(f"http://127.0.0.1:{bound_port(container)}/metrics", timeout=10).text
    check_metrics(text)
    return text


def samples(text, name, **labels):
    """{labels tuple (sorted items): value} of ``name`` whose labels include ``labels``."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(text, name, **labels):
    """The value of the one sample of ``name`` with exactly ``labels`` (None if absent)."""
    return samples(text, name, **labels).get(tuple(sorted(labels.items())))


def case_opinion(agency, due_on, requested_on="2026-11-16", status="requested"):
    return dict(request_id=uuid.uuid4().hex, code=f"JJ-{uuid.uuid4().hex[:8]}", project_name="p", unit_id="u",
                stage="joint_review", stage_name="部门联审", agency=agency, agency_name=agency,
                subject="security", sign="officer", status=status, requested_on=requested_on, due_on=due_on,
                cite="jinjiang art. 8")


def review_case(state, barred_until=None):
    now = dt.datetime(2026, 11, 1)
    return dict(code=f"JJ-{uuid.uuid4().hex[:8]}", jurisdiction="jinjiang", unit_id="u", name="p", kind="build",
                amount=1, state=state, current_stage=None, revision=0, returns=0, expert_failures=0,
                barred_until=barred_until, document_no=None, body="{}", created_at=now, updated_at=now)


def desk_request(status, due_on):
    return dict(request_id=uuid.uuid4().hex, code=f"JJ-{uuid.uuid4().hex[:8]}", agency="cac", subject="security",
                stage="joint_review", sign="officer", status=status, due_on=due_on, request="{}",
                verdict="approve", findings="[]", conditions="[]", data=json.dumps({}),
                received_at=dt.datetime(2026, 11, 20))


@pytest.fixture
def suite(vhost_uri, make_db_url):
    urls = {"review": make_db_url("review"), "security": make_db_url("security")}
    with Suite(vhost_uri, "jinjiang", urls, extra_config={"TODAY": TODAY}) as running:
        yield running


def insert(container, table_name, *rows):
    core = metrics.database(container)
    with core.transaction() as tx:
        tx.conn.execute(core.metadata.tables[table_name].insert(), list(rows))
    return core


def test_review_counts_pending_opinions_by_agency_and_timeliness_with_the_oldest_age(suite):
    suite.start("review")
    review = suite.containers["review"]
    insert(review, "case_opinions",
           case_opinion("cac", due_on="2026-11-24"),  # due today: still on time
           case_opinion("cac", due_on="2026-11-23", requested_on="2026-11-12"),  # overdue, the oldest
           case_opinion("cac", due_on="2026-11-30", status="issued"),  # answered: not counted
           case_opinion("public_security", due_on="2026-12-03", requested_on="2026-11-24"),
           case_opinion("miit", due_on="2026-11-20"))  # an agency jinjiang's profile does not name
    text = scrape(review)
    assert value(text, "govpm_opinions_pending", service="review", agency="cac", timeliness="on_time") == 1
    assert value(text, "govpm_opinions_pending", service="review", agency="cac", timeliness="overdue") == 1
    assert value(text, "govpm_opinions_pending", service="review", agency="public_security",
                 timeliness="on_time") == 1
    assert value(text, "govpm_opinions_pending", service="review", agency="miit", timeliness="overdue") == 1
    # every agency of the profile has its series, at 0 when nothing waits for it
    assert value(text, "govpm_opinions_pending", service="review", agency="finance", timeliness="overdue") == 0
    assert value(text, "govpm_items_due", service="review", kind="opinion") == 2
    assert value(text, "govpm_items_overdue", service="review", kind="opinion") == 2
    # ages count from the start of the request day (China time) to now on TODAY
    cac_age = value(text, "govpm_opinion_pending_oldest_age_seconds", service="review", agency="cac")
    assert 12 * DAY <= cac_age < 13 * DAY
    assert 0 <= value(text, "govpm_opinion_pending_oldest_age_seconds", service="review",
                      agency="public_security") < DAY
    assert value(text, "govpm_opinion_pending_oldest_age_seconds", service="review", agency="finance") == 0

    # answered: cac drops to 0, and miit, in no profile, disappears instead of keeping its last value
    core = metrics.database(review)
    table = core.metadata.tables["case_opinions"]
    with core.transaction() as tx:
        tx.conn.execute(update(table).where(table.c.agency.in_(["cac", "miit"])).values(status="issued"))
    text = scrape(review)
    assert value(text, "govpm_opinions_pending", service="review", agency="cac", timeliness="overdue") == 0
    assert samples(text, "govpm_opinions_pending", service="review", agency="miit") == {}
    assert samples(text, "govpm_opinion_pending_oldest_age_seconds", service="review", agency="miit") == {}
    assert value(text, "govpm_items_overdue", service="review", kind="opinion") == 0
    assert value(text, "govpm_items_due", service="review", kind="opinion") == 1


def test_review_counts_projects_barred_from_review_while_the_bar_is_in_force(suite):
    suite.start("review")
    review = suite.containers["review"]
    assert value(scrape(review), "govpm_holds_in_force", service="review", kind="review_bar") == 0
    insert(review, "cases",
           review_case("refused", barred_until="2027-05-24"),
           review_case("refused", barred_until="2026-11-24"),  # the bar ends today: in force no more
           review_case("refused"),  # refused without a bar
           review_case("in_progress"))
    assert value(scrape(review), "govpm_holds_in_force", service="review", kind="review_bar") == 1


def test_an_agency_desk_counts_opinions_waiting_for_a_signature_before_and_past_their_due_date(suite):
    suite.start("security")
    security = suite.containers["security"]
    text = scrape(security)
    assert value(text, "govpm_items_due", service="security", kind="signature") == 0
    assert value(text, "govpm_items_overdue", service="security", kind="signature") == 0
    insert(security, "opinion_requests",
           desk_request("pending_signature", "2026-11-24"),
           desk_request("pending_signature", "2026-12-03"),
           desk_request("pending_signature", "2026-11-23"),
           desk_request("issued", "2026-11-01"))
    text = scrape(security)
    assert value(text, "govpm_items_due", service="security", kind="signature") == 2
    assert value(text, "govpm_items_overdue", service="security", kind="signature") == 1
