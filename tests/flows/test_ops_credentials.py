"""The whole suite as agencies deploy it: one broker user per agency, the topology from the
generated definitions, each service a ``nameko run`` process of its own.

The operator's path, step by step: ``scripts/gen_definitions.py --passwords-from-env
--vhost … --user-suffix … --out …`` writes the definitions with password hashes; they are
imported through the management API into a temporary vhost. Each service then runs with
``DECLARE_TOPOLOGY=false`` under its own user (which may touch only its own queues and
exchanges), its own SQLite database and its own web port, and one project goes from
declaration to approval through the gateway. Processes, vhost and users are removed
afterwards, also when the test fails.
"""
import json
import os
import secrets
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest
import requests

from scripts.demo import AMOUNTS, Walker, application
from tests.deploy.support import AGENCY_SERVICES, ROOT
from tests.flows.test_ops_scale_out import ServiceProcess
from tests.support import broker

pytestmark = pytest.mark.flow

ADMIN_PASSWORD = "ops-credentials-admin"


class Definitions:
    """A temporary vhost and one temporary user per agency service, as the generator writes them."""

    def __init__(self, out):
        suffix = uuid.uuid4().hex[:10]
        self.vhost = f"govpm-opstest-{suffix}"
        self.users = {s: f"{s}-opstest-{suffix}" for s in AGENCY_SERVICES}
        self.passwords = {s: secrets.token_urlsafe(18) for s in AGENCY_SERVICES}
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        env.update({f"GOVPM_AMQP_PASSWORD_{s.upper()}": p for s, p in self.passwords.items()})
        result = subprocess.run(
            [sys.executable, "scripts/gen_definitions.py", "--passwords-from-env", "--vhost", self.vhost,
             f"--user-suffix=-opstest-{suffix}", "--out", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        self.document = json.loads(open(out, encoding="utf-8").read())
        assert {u["name"] for u in self.document["users"]} == set(self.users.values())
        assert all(u["password_hash"] for u in self.document["users"])  # hashes only, never the passwords
        assert not any(p in open(out, encoding="utf-8").read() for p in self.passwords.values())

    def __enter__(self):
        resp = requests.post(f"{broker.MGMT}/api/definitions", auth=broker.AUTH, timeout=30,
                             data=json.dumps(self.document), headers={"Content-Type": "application/json"})
        assert resp.status_code in (200, 201, 204), resp.text
        return self

    def __exit__(self, *exc):
        requests.delete(f"{broker.MGMT}/api/vhosts/{quote(self.vhost, safe='')}", auth=broker.AUTH, timeout=10)
        for name in self.users.values():
            requests.delete(f"{broker.MGMT}/api/users/{quote(name, safe='')}", auth=broker.AUTH, timeout=10)

    def uri(self, service):
        return (f"amqp://{quote(self.users[service], safe='')}:{quote(self.passwords[service], safe='')}"
                f"@{broker.AMQP_HOST}:{broker.AMQP_PORT}/{quote(self.vhost, safe='')}")


def test_the_suite_runs_under_per_agency_credentials_and_approves_a_project(tmp_path):
    processes = {}
    with Definitions(tmp_path / "definitions.json") as definitions:
        try:
            for service in AGENCY_SERVICES:
                processes[service] = ServiceProcess(service, {
                    "AMQP_URI": definitions.uri(service),
                    "DECLARE_TOPOLOGY": "false",
                    f"{service.upper()}_DB_URL": f"sqlite:///{tmp_path}/{service}.db",
                    "JURISDICTION": "jinjiang",
                    "GATEWAY_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    # quoted: nameko YAML-parses an environment value, and a bare 2026-11-24 becomes a
                    # date object, which services/budget/dependencies.py (seed_years) cannot read
                    "TODAY": '"2026-11-24"',
                }, tmp_path / f"{service}.log")
            for process in processes.values():
                process.wait_ready()

            gateway = processes["gateway"]
            walker = Walker("jinjiang", gateway.url(""), ADMIN_PASSWORD)
            project = walker.declare(application("jinjiang", AMOUNTS["jinjiang"]))
            assert project["state"] == "in_approval"
            case = walker.drive(project["code"])
            assert case["state"] == "approved" and case["approval"]["document_no"]
            final = walker.api.req("GET", f"/api/v1/projects/{project['code']}", walker.unit)
            assert final["state"] == "approved"

            # every service stayed ready, with nothing dead-lettered and nothing stuck in an outbox
            for service, process in processes.items():
                assert process.ready(), f"{service} not ready:\n{process.tail()}"
                text = requests.get(process.url("/metrics"), timeout=10).text
                assert f'govpm_dead_letter_messages{{service="{service}"}} 0.0' in text, service
                assert f'govpm_outbox_pending_events{{service="{service}"}} 0.0' in text, service
            # and no process was refused anything by the broker
            for service, process in processes.items():
                assert "ACCESS_REFUSED" not in process.tail(lines=100000), f"{service}:\n{process.tail()}"
        finally:
            for process in processes.values():
                process.kill()
