"""One table of routes: nameko's HTTP entrypoints and the OpenAPI document both come from it."""
import dataclasses
import functools
import re

from runtime.web import http

ROUTES = []


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str  # OpenAPI form: /api/v1/projects/{code}
    name: str
    roles: tuple  # None: public
    body: type
    status: int
    tag: str
    summary: str

    @property
    def werkzeug_path(self):
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)

    @property
    def path_params(self):
        return re.findall(r"\{(\w+)\}", self.path)


def route(method, path, *, roles, summary, tag, body=None, status=200):
    def decorator(fn):
        spec = RouteSpec(method, path, fn.__name__, tuple(roles) if roles is not None else None,
                         body, status, tag, summary)
        ROUTES.append(spec)

        @functools.wraps(fn)
        def entrypoint(self, request, **path_values):
            return self.dispatch(spec, fn, request, path_values)

        del entrypoint.__wrapped__
        entrypoint.route_spec = spec
        return http(method, spec.werkzeug_path)(entrypoint)

    return decorator
