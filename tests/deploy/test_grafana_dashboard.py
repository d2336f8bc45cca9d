"""The Grafana dashboard: a row per agency service and one for the pipeline, every query
naming only metrics the services export, every panel of an agency row about that agency."""
import json
import os
import re

import yaml

from tests.deploy.support import AGENCY_SERVICES, DEPLOY, allowed_metric_names, metric_names

GRAFANA = os.path.join(DEPLOY, "grafana")


def dashboard():
    with open(os.path.join(GRAFANA, "dashboard.json"), encoding="utf-8") as fh:
        return json.load(fh)


def rows():
    """[(row title, [panels under it])] in order."""
    out = []
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            out.append((panel["title"], list(panel.get("panels", []))))
        else:
            assert out, "a panel above the first row"
            out[-1][1].append(panel)
    return out


def row_service(title):
    """Agency rows are titled "<中文名> <service> — <agencies>"."""
    match = re.match(r"^\S+ ([a-z]+) — ", title)
    return match.group(1) if match else None


def exprs(panels):
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_every_agency_service_has_its_row_and_the_pipeline_has_one():
    titles = [title for title, _ in rows()]
    assert sorted(filter(None, map(row_service, titles))) == sorted(AGENCY_SERVICES), titles
    assert any("Pipeline" in t and "项目流程" in t for t in titles)
    assert len(titles) == len(AGENCY_SERVICES) + 1


def test_every_query_names_only_metrics_the_runtime_exports():
    allowed = allowed_metric_names()
    queries = exprs(dashboard()["panels"])
    assert len(queries) > 50
    for expr in queries:
        names = metric_names(expr)
        assert names, expr
        assert names <= allowed, (names - allowed, expr)
    for variable in dashboard()["templating"]["list"]:
        assert metric_names(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", variable["definition"])) <= allowed


def test_every_panel_of_an_agency_row_shows_that_agency_only():
    for title, panels in rows():
        service = row_service(title)
        if service is None:
            continue
        assert panels, title
        for expr in exprs(panels):
            assert f'service="{service}"' in expr and "service=~" not in expr, (title, expr)


def test_the_pipeline_row_shows_projects_by_state_and_pool_opinions_and_approvals():
    pipeline = next(panels for title, panels in rows() if "Pipeline" in title)
    text = "\n".join(exprs(pipeline))
    # database-derived gauges: one value per replica set (max by), then added up
    for needle in ("sum by (state) (max by (jurisdiction, state, pool) (govpm_projects",
                   "sum by (pool) (max by (jurisdiction, state, pool) (govpm_projects",
                   'govpm_opinions_pending{timeliness="overdue"',
                   "sum by (agency, timeliness) (max by (jurisdiction, service, agency, timeliness) (govpm_opinions_pending",
                   'event="project_approved"'):
        assert needle in text, needle


def test_every_query_follows_the_jurisdiction_variable_and_every_panel_uses_the_provisioned_datasource():
    with open(os.path.join(GRAFANA, "provisioning", "datasources", "prometheus.yaml"), encoding="utf-8") as fh:
        uid = yaml.safe_load(fh)["datasources"][0]["uid"]
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid
        for target in panel["targets"]:
            assert 'jurisdiction=~"$jurisdiction"' in target["expr"], target["expr"]


def test_panel_ids_are_unique_and_panels_do_not_overlap():
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p["title"]
                cells.add((x, y))
