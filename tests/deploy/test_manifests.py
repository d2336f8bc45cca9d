"""The Kubernetes manifests (deploy/k8s/) validate against the Kubernetes OpenAPI schemas
bundled in the ``kubernetes-validate`` package (offline, strict: unknown fields fail), and
say what the deployment needs: per agency 2 replicas on its own port with its probes, its
own broker user and database; a 3-node RabbitMQ cluster with k8s peer discovery loading
the generated definitions; PostgreSQL."""
import copy
import functools
import glob
import os
import re

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils

from tests.deploy.support import AGENCY_SERVICES, DEPLOY, ROOT, service_command

K8S = os.path.join(DEPLOY, "k8s")
VERSIONS = ["1.29.0", kv_utils.latest_version()]


@functools.lru_cache(maxsize=None)
def documents():
    """``((file name, resource), ...)``; parsed once (callers must not mutate: copy first)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        with open(path, encoding="utf-8") as fh:
            out.extend((os.path.basename(path), doc) for doc in yaml.load_all(fh, Loader=loader) if doc)
    return tuple(out)


def find(kind, name):
    matches = [doc for _, doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name, len(matches))
    return matches[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly_against_the_kubernetes_schemas(version):
    docs = documents()
    assert len(docs) > 20
    for filename, doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
        assert doc["metadata"].get("namespace", "govpm") == "govpm" or doc["kind"] == "Namespace", filename


def test_the_validator_catches_a_misspelled_field_and_a_wrong_type():
    deployment = find("Deployment", "registry")
    misspelled = copy.deepcopy(deployment)
    misspelled["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelled, VERSIONS[-1], strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, VERSIONS[-1], strict=True)


def config_keys(service):
    """The ``${VAR:default}`` environment keys the service's nameko config reads."""
    path = os.path.join(ROOT, "gateway" if service == "gateway" else f"services/{service}", "config.yaml")
    with open(path, encoding="utf-8") as fh:
        return set(re.findall(r"\$\{(\w+):", fh.read()))


@pytest.mark.parametrize("service", AGENCY_SERVICES)
def test_each_agency_runs_two_replicas_with_probes_on_its_own_port(service):
    deployment = find("Deployment", service)
    config = find("ConfigMap", f"{service}-config")["data"]
    port = int(config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1])
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    service_doc = find("Service", service)
    assert service_doc["spec"]["ports"][0]["port"] == port
    assert service_doc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert container["command"] == service_command(service)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert find("PodDisruptionBudget", service)["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("service", AGENCY_SERVICES)
def test_each_agency_has_its_own_broker_user_database_and_config_without_topology_declaration(service):
    config = find("ConfigMap", f"{service}-config")["data"]
    secret = find("Secret", f"{service}-secrets")["stringData"]
    reads = config_keys(service)
    if "DECLARE_TOPOLOGY" in reads:  # the gateway declares no topology and has no such key
        assert config["DECLARE_TOPOLOGY"] == "false"
    assert re.fullmatch(rf"amqp://{service}:[^@]+@rabbitmq\.govpm\.svc:5672/govpm", secret["AMQP_URI"])
    db_key = f"{service.upper()}_DB_URL"
    assert re.fullmatch(rf"postgresql\+psycopg2://{service}:[^@]+@postgres\.govpm\.svc:5432/govpm_{service}",
                        secret[db_key])
    given = set(config) | set(secret)
    assert {"AMQP_URI", db_key, "JURISDICTION", "WEB_SERVER_ADDRESS"} | (reads & {"DECLARE_TOPOLOGY"}) <= given
    assert given <= reads, f"keys its config.yaml does not read: {given - reads}"
    envfrom = find("Deployment", service)["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"configMapRef": {"name": f"{service}-config"}} in envfrom
    assert {"secretRef": {"name": f"{service}-secrets"}} in envfrom


def test_rabbitmq_is_a_three_node_cluster_with_k8s_peer_discovery_loading_the_definitions():
    statefulset = find("StatefulSet", "rabbitmq")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == "rabbitmq-headless"
    assert find("Service", "rabbitmq-headless")["spec"]["clusterIP"] == "None"
    config = find("ConfigMap", "rabbitmq-config")["data"]
    conf = dict(line.split(" = ", 1) for line in config["rabbitmq.conf"].splitlines()
                if line and not line.startswith("#"))
    assert conf["cluster_formation.peer_discovery_backend"] == "rabbit_peer_discovery_k8s"
    assert conf["cluster_formation.k8s.service_name"] == "rabbitmq-headless"
    assert conf["quorum_queue.continuous_membership_reconciliation.target_group_size"] == "3"
    for plugin in ("rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_peer_discovery_k8s"):
        assert plugin in config["enabled_plugins"]
    mounts = {m["name"]: m["mountPath"] for m in statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert conf["definitions.local.path"] == mounts["definitions"] + "/definitions.json"
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert volumes["definitions"]["secret"]["secretName"] == "rabbitmq-definitions"
    rules = find("Role", "rabbitmq-peer-discovery")["rules"]
    assert {"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]} in rules


def test_postgresql_is_a_statefulset_that_creates_one_database_per_agency_like_compose_does():
    statefulset = find("StatefulSet", "postgres")
    assert statefulset["spec"]["replicas"] == 1
    script = find("ConfigMap", "postgres-init")["data"]["10-agency-databases.sh"]
    with open(os.path.join(DEPLOY, "compose", "postgres-init", "10-agency-databases.sh"), encoding="utf-8") as fh:
        compose_script = fh.read()
    strip = lambda text: [line for line in text.splitlines() if not line.lstrip().startswith("#")]  # noqa: E731
    assert strip(script) == strip(compose_script)
    for service in AGENCY_SERVICES:
        assert f"GOVPM_DB_PASSWORD_{service.upper()}" in find("Secret", "postgres-secrets")["stringData"]
