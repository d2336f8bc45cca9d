"""The gateway on the real broker: tokens, roles, user management, error bodies."""
import time

import pytest
import requests
from nameko import config
from nameko.containers import ServiceContainer

from gateway.service import GatewayService
from runtime.web import bound_port

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(vhost_uri, make_db_url):
    with config.patch({"AMQP_URI": vhost_uri, "DATABASES": {"gateway": make_db_url("gateway")},
                       "JURISDICTION": "jinjiang", "WEB_SERVER_ADDRESS": "127.0.0.1:0",
                       "GATEWAY_ADMIN_PASSWORD": "admin-password-1", "RPC_TIMEOUT_SECONDS": 2}):
        container = ServiceContainer(GatewayService)
        container.start()
        try:
            yield f"http://127.0.0.1:{bound_port(container)}"
        finally:
            container.stop()


def login(base, username, password):
    resp = requests.post(f"{base}/api/v1/auth/token", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def test_admin_creates_users_and_roles_are_enforced(gateway):
    admin = login(gateway, "admin", "admin-password-1")
    resp = requests.post(f"{gateway}/api/v1/users", headers=admin, json={
        "username": "unit-a", "display_name": "甲单位", "password": "unit-a-password", "role": "unit",
        "unit_id": "U-A", "unit_name": "甲单位"})
    assert resp.status_code == 201, resp.text
    unit = login(gateway, "unit-a", "unit-a-password")
    me = requests.get(f"{gateway}/api/v1/me", headers=unit).json()
    assert me["unit_id"] == "U-A" and me["role"] == "unit"
    # a unit may not manage users
    resp = requests.get(f"{gateway}/api/v1/users", headers=unit)
    assert resp.status_code == 403
    assert resp.json()["error"]["message_zh"] and resp.json()["error"]["message_en"]


def test_missing_or_bad_token_is_401(gateway):
    assert requests.get(f"{gateway}/api/v1/me").status_code == 401
    resp = requests.get(f"{gateway}/api/v1/me", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"


def test_wrong_password_is_refused(gateway):
    resp = requests.post(f"{gateway}/api/v1/auth/token", json={"username": "admin", "password": "wrong-password"})
    assert resp.status_code == 401


def test_bad_input_names_the_field_and_rule_in_both_languages(gateway):
    admin = login(gateway, "admin", "admin-password-1")
    resp = requests.post(f"{gateway}/api/v1/users", headers=admin, json={
        "username": "x", "display_name": "X", "password": "short", "role": "emperor"})
    assert resp.status_code == 422
    errors = {e["field"]: e for e in resp.json()["error"]["errors"]}
    assert errors["password"]["rule"] == "length"
    assert errors["role"]["rule"] == "one_of"
    assert errors["username"]["zh"] and errors["username"]["en"]


def test_a_deactivated_user_loses_access(gateway):
    admin = login(gateway, "admin", "admin-password-1")
    user = requests.post(f"{gateway}/api/v1/users", headers=admin, json={
        "username": "officer-cac", "display_name": "网信办经办人", "password": "officer-password",
        "role": "officer", "agency": "cac"}).json()
    officer = login(gateway, "officer-cac", "officer-password")
    assert requests.get(f"{gateway}/api/v1/me", headers=officer).status_code == 200
    resp = requests.patch(f"{gateway}/api/v1/users/{user['user_id']}", headers=admin, json={"active": False})
    assert resp.status_code == 200 and resp.json()["active"] is False
    assert requests.get(f"{gateway}/api/v1/me", headers=officer).status_code == 401


def test_an_agency_that_is_down_gives_503_not_a_hung_request(gateway):
    admin = login(gateway, "admin", "admin-password-1")
    resp = requests.get(f"{gateway}/api/v1/projects", headers=admin, timeout=10)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "service_unavailable"


def test_the_openapi_document_lists_exactly_the_routes_served(gateway):
    doc = requests.get(f"{gateway}/api/v1/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    import re
    served = set()
    for name in dir(GatewayService):
        fn = getattr(GatewayService, name)
        spec = getattr(fn, "route_spec", None)
        if spec:
            served.add((spec.method, re.sub(r"<(\w+)>", r"{\1}", spec.werkzeug_path)))
    assert documented == served
    # and each served route answers (not 404) at its path
    for method, path in served:
        url = gateway + re.sub(r"\{\w+\}", "x", path)
        resp = requests.request(method, url, json={}, timeout=10)
        assert resp.status_code != 404 or resp.json().get("error", {}).get("code") == "not_found", (method, path)


def test_a_token_is_refused_once_it_expires(vhost_uri, make_db_url):
    # tokens live TOKEN_TTL_SECONDS; the lookup compares the stored expiry with the time now
    with config.patch({"AMQP_URI": vhost_uri, "DATABASES": {"gateway": make_db_url("gateway")},
                       "WEB_SERVER_ADDRESS": "127.0.0.1:0", "GATEWAY_ADMIN_PASSWORD": "admin-password-1",
                       "TOKEN_TTL_SECONDS": 2}):
        container = ServiceContainer(GatewayService)
        container.start()
        try:
            base = f"http://127.0.0.1:{bound_port(container)}"
            admin = login(base, "admin", "admin-password-1")
            assert requests.get(f"{base}/api/v1/me", headers=admin).status_code == 200
            time.sleep(2.5)
            resp = requests.get(f"{base}/api/v1/me", headers=admin)
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"
        finally:
            container.stop()
