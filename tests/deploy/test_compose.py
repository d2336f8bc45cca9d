"""deploy/compose/compose.yaml validates against the Compose Specification JSON schema
(shipped in deploy/schemas/, and check-jsonschema's own copy), and wires the suite as an
agency would run it: each service its own broker user and database, no topology
declaration, one image from deploy/Dockerfile; RabbitMQ with its plugins and definitions,
Prometheus and Grafana provisioned from this directory."""
import json
import os
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

from tests.deploy.support import AGENCY_SERVICES, DEPLOY, ROOT, service_command

COMPOSE_DIR = os.path.join(DEPLOY, "compose")
COMPOSE = os.path.join(COMPOSE_DIR, "compose.yaml")
SCHEMA = os.path.join(DEPLOY, "schemas", "compose-spec.json")
PORTS = {"registry": 9101, "review": 9102, "budget": 9103, "security": 9104, "filing": 9105, "gateway": 8000}


def compose():
    with open(COMPOSE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_the_compose_file_validates_against_the_shipped_compose_spec_schema():
    with open(SCHEMA, encoding="utf-8") as fh:
        schema = json.load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_the_schema_catches_a_misspelled_service_key():
    with open(SCHEMA, encoding="utf-8") as fh:
        validator = jsonschema.Draft202012Validator(json.load(fh))
    broken = compose()
    broken["services"]["registry"]["enviroment"] = {"A": "b"}
    assert any("enviroment" in e.message for e in validator.iter_errors(broken))


def test_the_compose_file_passes_check_jsonschemas_builtin_compose_spec():
    check = os.path.join(os.path.dirname(sys.executable), "check-jsonschema")
    result = subprocess.run([check, "--builtin-schema", "vendor.compose-spec", COMPOSE],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shipped_schema_names_its_source_and_license():
    readme = open(os.path.join(DEPLOY, "README.md"), encoding="utf-8").read()
    assert "deploy/schemas/compose-spec.json" in readme and "check-jsonschema" in readme
    assert os.path.exists(os.path.join(DEPLOY, "schemas", "LICENSE.compose-spec"))


def config_keys(service):
    path = os.path.join(ROOT, "gateway" if service == "gateway" else f"services/{service}", "config.yaml")
    with open(path, encoding="utf-8") as fh:
        return set(re.findall(r"\$\{(\w+):", fh.read()))


@pytest.mark.parametrize("service", AGENCY_SERVICES)
def test_each_agency_service_has_its_own_broker_user_database_and_no_topology_declaration(service):
    spec = compose()["services"][service]
    env = spec["environment"]
    reads = config_keys(service)
    assert set(env) <= reads, f"keys {service}'s config.yaml does not read: {set(env) - reads}"
    assert re.fullmatch(rf"amqp://{service}:\$\{{GOVPM_AMQP_PASSWORD_{service.upper()}:\?[^}}]+\}}@rabbitmq:5672/govpm",
                        env["AMQP_URI"]), env["AMQP_URI"]
    db = env[f"{service.upper()}_DB_URL"]
    assert re.fullmatch(rf"postgresql\+psycopg2://{service}:\$\{{GOVPM_DB_PASSWORD_{service.upper()}:\?[^}}]+\}}"
                        rf"@postgres:5432/govpm_{service}", db), db
    if "DECLARE_TOPOLOGY" in reads:
        assert env["DECLARE_TOPOLOGY"] == "false"
    assert env["WEB_SERVER_ADDRESS"] == f"0.0.0.0:{PORTS[service]}"
    assert spec["command"] == service_command(service)
    assert os.path.exists(os.path.join(ROOT, spec["command"][-1]))
    assert f"http://127.0.0.1:{PORTS[service]}/health/ready" in " ".join(spec["healthcheck"]["test"])
    assert spec["image"] == "govpm-suite:latest"
    assert spec["build"] == {"context": "../..", "dockerfile": "deploy/Dockerfile"}
    assert spec["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_the_prometheus_compose_config_scrapes_every_service_on_its_compose_port():
    with open(os.path.join(DEPLOY, "prometheus", "prometheus.compose.yml"), encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "govpm")
    targets = {t for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"{s}:{p}" for s, p in PORTS.items()}


def test_every_file_the_compose_file_mounts_is_in_the_repository_except_the_generated_definitions():
    doc = compose()
    for name, spec in doc["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith("."):
                continue  # a named volume
            path = os.path.normpath(os.path.join(COMPOSE_DIR, source))
            if source == "./secrets/definitions.json":
                assert os.path.exists(os.path.join(COMPOSE_DIR, "secrets", ".gitignore"))
                continue
            assert os.path.exists(path), (name, source)
    assert set(doc["volumes"]) == {"rabbitmq-data", "postgres-data", "prometheus-data", "grafana-data"}


def test_rabbitmq_runs_the_management_and_prometheus_plugins_and_loads_the_definitions():
    spec = compose()["services"]["rabbitmq"]
    mounts = dict(v.split(":")[:2] for v in spec["volumes"])
    plugins = open(os.path.normpath(os.path.join(COMPOSE_DIR, "../rabbitmq/enabled_plugins"))).read()
    assert re.fullmatch(r"\[rabbitmq_management,rabbitmq_prometheus\]\.\s*", plugins)
    assert mounts["../rabbitmq/enabled_plugins"] == "/etc/rabbitmq/enabled_plugins"
    conf = open(os.path.join(COMPOSE_DIR, "rabbitmq.conf")).read()
    assert "definitions.local.path = /etc/rabbitmq/definitions.json" in conf
    assert mounts["./secrets/definitions.json"] == "/etc/rabbitmq/definitions.json"


def test_grafana_is_provisioned_with_the_dashboard_and_prometheus_with_the_rules():
    services = compose()["services"]
    grafana = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    provider = yaml.safe_load(open(os.path.join(DEPLOY, "grafana", "provisioning", "dashboards", "govpm.yaml")))
    dashboard_path = grafana["../grafana/dashboard.json"]
    assert os.path.dirname(dashboard_path) == provider["providers"][0]["options"]["path"]
    assert grafana["../grafana/provisioning"] == "/etc/grafana/provisioning"
    prometheus = dict(v.split(":")[:2] for v in services["prometheus"]["volumes"])
    assert prometheus["../prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.compose.yml" in services["prometheus"]["command"]


def test_the_dockerfile_builds_one_image_from_python_311_slim_with_the_pinned_requirements():
    text = open(os.path.join(DEPLOY, "Dockerfile"), encoding="utf-8").read()
    assert re.search(r"^FROM python:3\.11-slim$", text, flags=re.M)
    assert "pip install -r requirements.txt" in text
    assert 'CMD ["' + '", "'.join(service_command("registry")) + '"]' in text
    assert re.search(r"pip install (--no-deps )?-e \.", text)
    for package in ("contracts", "runtime", "policy", "services", "gateway"):
        assert f"COPY {package} ./{package}" in text
    assert re.search(r"^USER \d+$", text, flags=re.M)  # not root


def test_the_env_example_names_every_variable_the_compose_file_requires():
    text = open(COMPOSE, encoding="utf-8").read()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = open(os.path.join(COMPOSE_DIR, ".env.example"), encoding="utf-8").read()
    given = set(re.findall(r"^(\w+)=", example, flags=re.M))
    assert required <= given, required - given
    for service in AGENCY_SERVICES:
        assert f"GOVPM_AMQP_PASSWORD_{service.upper()}" in given  # what gen_definitions --passwords-from-env reads
