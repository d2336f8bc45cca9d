"""The alert rules and Prometheus configs pass promtool, fire when they should (promtool's
rule unit tests), speak Chinese and English, and name only metrics the services export."""
import importlib.util
import os
import re

import pytest
import yaml

from tests.deploy import promtool
from tests.deploy.support import DEPLOY, ROOT, allowed_metric_names, metric_names

PROM = os.path.join(DEPLOY, "prometheus")
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORDS = re.compile(r"[A-Za-z]{3,}")


def rules():
    with open(os.path.join(PROM, "alerts.yml"), encoding="utf-8") as fh:
        document = yaml.safe_load(fh)
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_is_installed():
    # fails with the install command (apt-get install -y prometheus) when it is missing
    assert "promtool" in promtool.run("--version").stdout + promtool.run("--version").stderr


def test_the_alert_rules_pass_promtool_check_rules():
    result = promtool.run("check", "rules", "alerts.yml", cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_the_alert_rules_pass_their_promtool_unit_tests():
    result = promtool.run("test", "rules", "alerts_test.yml", cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_the_prometheus_configs_pass_promtool_check_config(config):
    result = promtool.run("check", "config", config, cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_severity_a_bilingual_summary_and_description_and_a_runbook():
    readme = open(os.path.join(DEPLOY, "README.md"), encoding="utf-8").read()
    anchors = {"#" + re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", readme, flags=re.M)}
    for rule in rules():
        annotations = rule["annotations"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        for key in ("summary", "description", "runbook"):
            text = annotations[key]
            zh, en = text.split(" / ", 1)
            assert CJK.search(zh) and LATIN_WORDS.search(en), (rule["alert"], key, text)
        path, anchor = annotations["runbook_url"].split("#")
        assert path == "deploy/README.md" and f"#{anchor}" in anchors, (rule["alert"], anchors)


def test_every_alert_has_a_unit_test_that_sees_it_fire_and_not_fire():
    with open(os.path.join(PROM, "alerts_test.yml"), encoding="utf-8") as fh:
        tests = yaml.safe_load(fh)["tests"]
    checks = [c for t in tests for c in t["alert_rule_test"]]
    for rule in rules():
        mine = [c for c in checks if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"no test sees {rule['alert']} fire"
        assert any(not c["exp_alerts"] for c in mine), f"no test sees {rule['alert']} stay quiet"


def test_the_alerts_name_only_metrics_the_services_export():
    allowed = allowed_metric_names()
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names and names <= allowed, (rule["alert"], names - allowed)


def test_the_local_prometheus_config_scrapes_every_process_the_local_suite_starts():
    spec = importlib.util.spec_from_file_location("suite_runner", os.path.join(ROOT, "scripts", "suite.py"))
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    expected = set()
    for index, jurisdiction in enumerate(suite.ALL, start=1):
        gateway, services = suite.ports(index)
        expected.add((f"127.0.0.1:{gateway}", jurisdiction, "gateway"))
        expected.update((f"127.0.0.1:{port}", jurisdiction, s) for s, port in services.items())
    with open(os.path.join(PROM, "prometheus.yml"), encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "govpm")
    found = {(t, c["labels"]["jurisdiction"], c["labels"]["service"])
             for c in job["static_configs"] for t in c["targets"]}
    assert found == expected
    assert job["honor_labels"] is True


def test_check_metrics_accepts_the_runtime_exposition_and_reports_a_bad_one():
    from runtime import metrics
    metrics.RPC_REQUESTS.labels("registry", "get_project", "success").inc(0)
    body, _ = metrics.exposition()
    promtool.check_metrics(body.decode())
    with pytest.raises(AssertionError, match="no help text"):
        promtool.check_metrics("govpm_bad_count 1\n")


def test_a_missing_promtool_fails_with_the_command_that_installs_it(monkeypatch):
    monkeypatch.setenv("PROMTOOL", "/nonexistent/promtool")
    with pytest.raises(AssertionError, match=r"apt-get install -y prometheus"):
        promtool.check_metrics("")
