"""The gateway on the real broker: tokens, roles, user management, error bodies."""
import contextlib
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


def create_unit_user(base, admin, username):
    resp = requests.post(f"{base}/api/v1/users", headers=admin, json={
        "username": username, "display_name": "乙单位", "password": "unit-b-password", "role": "unit",
        "unit_id": "U-B", "unit_name": "乙单位"})
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def two_gateways(vhost_uri, make_db_url):
    """Two gateway replicas on one database, as deploy/k8s runs them, remembering a token's
    owner for TOKEN_CACHE_SECONDS."""
    url = make_db_url("gateway")
    with contextlib.ExitStack() as stack:
        def start(cache_seconds, token_ttl=43200):
            stack.enter_context(config.patch({
                "AMQP_URI": vhost_uri, "DATABASES": {"gateway": url}, "WEB_SERVER_ADDRESS": "127.0.0.1:0",
                "GATEWAY_ADMIN_PASSWORD": "admin-password-1", "TOKEN_CACHE_SECONDS": cache_seconds,
                "TOKEN_TTL_SECONDS": token_ttl}))
            bases = []
            for _ in range(2):
                container = ServiceContainer(GatewayService)
                container.start()
                stack.callback(container.stop)
                bases.append(f"http://127.0.0.1:{bound_port(container)}")
            return bases

        yield start


def test_a_deactivated_user_is_refused_at_once_where_deactivated_and_within_the_cache_time_elsewhere(two_gateways):
    a, b = two_gateways(cache_seconds=1)
    admin = login(a, "admin", "admin-password-1")
    user = create_unit_user(a, admin, "unit-b")
    token = login(a, "unit-b", "unit-b-password")
    for base in (a, b):  # both replicas now remember the token's owner
        assert requests.get(f"{base}/api/v1/me", headers=token).status_code == 200
    assert requests.patch(f"{a}/api/v1/users/{user['user_id']}", headers=admin, json={"active": False}).ok
    assert requests.get(f"{a}/api/v1/me", headers=token).status_code == 401
    time.sleep(1.1)
    resp = requests.get(f"{b}/api/v1/me", headers=token)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"


def test_with_no_cache_time_every_replica_refuses_a_changed_password_at_once(two_gateways):
    a, b = two_gateways(cache_seconds=0)
    admin = login(a, "admin", "admin-password-1")
    user = create_unit_user(a, admin, "unit-b")
    token = login(a, "unit-b", "unit-b-password")
    assert requests.get(f"{b}/api/v1/me", headers=token).status_code == 200
    assert requests.patch(f"{a}/api/v1/users/{user['user_id']}", headers=admin, json={"password": "new-password-2"}).ok
    assert requests.get(f"{b}/api/v1/me", headers=token).status_code == 401


def test_an_admin_deactivated_elsewhere_is_refused_at_once_whatever_the_cache_time(two_gateways):
    a, b = two_gateways(cache_seconds=60)
    admin = login(a, "admin", "admin-password-1")
    second = requests.post(f"{a}/api/v1/users", headers=admin, json={
        "username": "admin-2", "display_name": "第二管理员", "password": "admin-2-password", "role": "admin"}).json()
    token = login(a, "admin-2", "admin-2-password")
    assert requests.get(f"{b}/api/v1/users", headers=token).status_code == 200
    assert requests.patch(f"{a}/api/v1/users/{second['user_id']}", headers=admin, json={"active": False}).ok
    assert requests.get(f"{b}/api/v1/users", headers=token).status_code == 401


def test_a_remembered_token_is_still_refused_once_it_expires(two_gateways):
    a, _ = two_gateways(cache_seconds=60, token_ttl=2)
    admin = login(a, "admin", "admin-password-1")
    create_unit_user(a, admin, "unit-b")
    token = login(a, "unit-b", "unit-b-password")
    assert requests.get(f"{a}/api/v1/me", headers=token).status_code == 200
    time.sleep(2.5)
    assert requests.get(f"{a}/api/v1/me", headers=token).status_code == 401


@pytest.mark.parametrize("key, value", [
    ("TOKEN_CACHE_SECONDS", "one"), ("RPC_TIMEOUT_SECONDS", "0"), ("RPC_TIMEOUT_SECONDS", "soon"),
    ("TOKEN_TTL_SECONDS", "a day"), ("TOKEN_TTL_SECONDS", "-60"),
])
def test_a_time_setting_that_is_not_a_number_of_seconds_stops_the_gateway_at_start(
        vhost_uri, make_db_url, key, value):
    with config.patch({"AMQP_URI": vhost_uri, "DATABASES": {"gateway": make_db_url("gateway")},
                       "WEB_SERVER_ADDRESS": "127.0.0.1:0", key: value}):
        container = ServiceContainer(GatewayService)
        with pytest.raises(ValueError, match=f"{key}.*秒.*seconds"):
            container.start()
        container.kill()
