"""The HTTP entrypoints' routing (runtime.web._WsgiApp.match) answers as werkzeug's
``Map.bind_to_environ(environ).match()`` does, on an adapter kept between requests."""
import itertools
import random

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from runtime.web import _WsgiApp

RULES = [("/api/v1/projects", "GET,POST"), ("/api/v1/projects/<code>", "GET"),
         ("/api/v1/projects/<code>/application", "PUT"), ("/api/v1/items/<int:n>", "GET"),
         ("/health/live", "GET"), ("/docs/", "GET")]


def app():
    routing = _WsgiApp.__new__(_WsgiApp)  # no server: only the URL map is needed to route
    routing.url_map = Map([Rule(url, methods=methods.split(","), endpoint=url) for url, methods in RULES])
    return routing


def wsgi(text):
    """``text`` as a WSGI server puts a path in the environ (its UTF-8 bytes as latin-1)."""
    return text.encode().decode("latin1")


def environ(method="GET", path="/health/live", query="", host="127.0.0.1:8000", **more):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
           "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "wsgi.url_scheme": "http", "HTTP_HOST": host}
    env.update(more)
    return {k: v for k, v in env.items() if v is not None}


def outcome(fn):
    try:
        return ("match",) + tuple(fn())
    except HTTPException as exc:
        return (type(exc).__name__, exc.code, getattr(exc, "new_url", None),
                sorted(getattr(exc, "valid_methods", None) or []))


REQUESTS = [
    environ(path="/api/v1/projects/2026-150621-00001-1"),
    environ(path=wsgi("/api/v1/projects/成都-锦江")),
    environ(method="PUT", path="/api/v1/projects/ABC/application"),
    environ(method="PUT", path="/api/v1/projects/ABC"),  # 405, with the methods allowed
    environ(method="DELETE", path="/api/v1/projects"),
    environ(path="/api/v1/items/12"),
    environ(path="/api/v1/items/twelve"),  # 404: not an int
    environ(path="/nothing/here"),
    environ(path="/docs", query="lang=zh&x=1"),  # redirect to /docs/, with the query
    environ(path="/docs", query=""),
    environ(path="/docs", host="gateway.example.gov.cn"),  # the redirect names the new host
    environ(path="/docs", host="gateway.example.gov.cn:443", **{"wsgi.url_scheme": "https"}),
    environ(path="/docs", SCRIPT_NAME="/suite"),
    environ(path="/docs", host=None),  # no Host header: SERVER_NAME and SERVER_PORT
    environ(method="HEAD", path="/health/live"),
    environ(path=None),
    environ(path="/health/live", HTTP_CONNECTION="keep-alive, Upgrade", HTTP_UPGRADE="websocket"),
    environ(path="//health//live"),
]


@pytest.mark.parametrize("env", REQUESTS)
def test_each_request_is_routed_as_werkzeug_routes_it(env):
    routing = app()
    expected = outcome(lambda: routing.url_map.bind_to_environ(env).match())
    assert outcome(lambda: routing.match(env)) == expected


def test_requests_in_any_order_are_routed_as_werkzeug_routes_each_one_alone():
    # the kept adapter is the last request's binding: a request that binds otherwise (another
    # host, scheme or script root) must not be matched on it
    rng = random.Random(7)
    routing = app()
    for env in itertools.chain(REQUESTS, (rng.choice(REQUESTS) for _ in range(300))):
        expected = outcome(lambda: app().url_map.bind_to_environ(env).match())
        assert outcome(lambda: routing.match(env)) == expected, env


def test_the_adapter_is_kept_while_requests_bind_the_same_way_and_replaced_when_not():
    routing = app()
    routing.match(environ(path="/health/live"))
    kept = routing._binding[1]
    routing.match(environ(method="PUT", path="/api/v1/projects/A/application", query="q=1"))
    assert routing._binding[1] is kept
    routing.match(environ(path="/health/live", host="other:8000"))
    assert routing._binding[1] is not kept
