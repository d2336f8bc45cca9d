"""What an agency's ops team scrapes, after real traffic through the whole suite.

Every service's and the gateway's ``/metrics`` pass ``promtool check metrics``; the
domain gauges show the project that was declared (``govpm_projects``), the opinion that
waits for an officer (``govpm_items_due``/``govpm_opinions_pending``), its turning overdue
when the date passes its due date, and — once the project is approved — the old label
sets gone and the counts back to zero.
"""
import pytest
import requests
from nameko import config
from prometheus_client.parser import text_string_to_metric_families

from runtime.web import bound_port
from scripts.demo import AMOUNTS, Walker, application
from tests.deploy.promtool import check_metrics
from tests.flows.conftest import ADMIN_PASSWORD, ALL
from tests.support.broker import wait_for

pytestmark = pytest.mark.flow


def metrics_url(suite, name):
    if name == "gateway":
        return f"{suite.base_url}/metrics"
    return f"http://127.0.0.1:{bound_port(suite.containers[name])}/metrics"


def scrape(suite, name):
    resp = requests.get(metrics_url(suite, name), timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    check_metrics(resp.text)
    return resp.text


def value(text, name, **labels):
    """The sample of ``name`` with exactly ``labels``, or None."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def series(text, name, **labels):
    return [s.labels for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def test_every_services_metrics_pass_promtool_and_the_gauges_follow_a_project_to_approval(start_suite):
    suite = start_suite("jinjiang")
    walker = Walker("jinjiang", suite.base_url, ADMIN_PASSWORD)
    project = walker.declare(application("jinjiang", AMOUNTS["jinjiang"]))
    assert project["state"] == "in_approval"
    # jinjiang's pre-review waits for the data bureau's officer (sign: officer)
    [pending] = wait_for(lambda: walker.api.req("GET", "/api/v1/inbox", walker.officers["data_bureau"])["items"],
                         message="the pre-review in the data bureau's inbox")

    texts = {name: scrape(suite, name) for name in ALL}  # promtool passes on each
    for name in ALL:
        assert value(texts[name], "govpm_ready", service=name) == 1
    registry, review, gateway = texts["registry"], texts["review"], texts["gateway"]
    assert value(registry, "govpm_projects", jurisdiction="jinjiang", state="in_approval",
                 pool=project["pool"]) == 1
    assert value(registry, "govpm_items_due", service="registry", kind="signature") == 1
    assert value(registry, "govpm_items_overdue", service="registry", kind="signature") == 0
    assert value(review, "govpm_opinions_pending", service="review", agency="data_bureau", timeliness="on_time") == 1
    assert value(review, "govpm_items_due", service="review", kind="opinion") == 1
    assert value(review, "govpm_holds_in_force", service="review", kind="review_bar") == 0
    assert value(registry, "govpm_rpc_requests_total", service="registry", method="declare_project",
                 outcome="success") >= 1
    assert value(review, "govpm_events_handled_total", service="review", event="project_submitted",
                 outcome="success") >= 1
    assert value(registry, "govpm_events_published_total", service="registry", event="project_submitted") >= 1
    assert series(gateway, "govpm_http_requests_total", service="gateway", outcome="success")
    assert value(texts["security"], "govpm_dead_letter_messages", service="security") == 0

    # past its due date (counted in working days) the same opinion is overdue
    with config.patch({"TODAY": "2027-01-29"}):
        registry, review = scrape(suite, "registry"), scrape(suite, "review")
    assert value(registry, "govpm_items_overdue", service="registry", kind="signature") == 1
    assert value(registry, "govpm_items_due", service="registry", kind="signature") == 0
    assert value(review, "govpm_opinions_pending", service="review", agency="data_bureau", timeliness="overdue") == 1
    assert value(review, "govpm_items_overdue", service="review", kind="opinion") == 1
    assert value(review, "govpm_opinion_pending_oldest_age_seconds", service="review",
                 agency="data_bureau") >= 60 * 86400

    case = walker.drive(project["code"])
    assert case["state"] == "approved"
    final = walker.api.req("GET", f"/api/v1/projects/{project['code']}", walker.unit)
    texts = {name: scrape(suite, name) for name in ALL}
    registry, review = texts["registry"], texts["review"]
    assert value(registry, "govpm_projects", jurisdiction="jinjiang", state="approved", pool=final["pool"]) == 1
    assert series(registry, "govpm_projects", state="in_approval") == []  # gone, not stuck at 1
    assert value(review, "govpm_items_due", service="review", kind="opinion") == 0
    for name in ("registry", "budget", "security", "filing"):
        assert value(texts[name], "govpm_items_due", service=name, kind="signature") == 0
        assert value(texts[name], "govpm_items_overdue", service=name, kind="signature") == 0
    assert value(texts["review"], "govpm_events_handled_total", service="review", event="opinion_issued",
                 outcome="success") >= 1
