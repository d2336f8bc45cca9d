"""The OpenAPI 3 document, generated from the route table and the marshmallow schemas."""
import functools

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from .routes import ROUTES

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message_zh": {"type": "string"}, "message_en": {"type": "string"},
        "field": {"type": "string"}, "rule": {"type": "string"}, "cite": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "rule": {"type": "string"}, "zh": {"type": "string"}, "en": {"type": "string"}}}},
    }}},
}


@functools.lru_cache(maxsize=1)
def build():
    spec = APISpec(
        title="政务信息化项目全生命周期管理 API / government IT project lifecycle API",
        version="1.0.0", openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
        info={"description": "中文在前，英文在后。Errors carry code, message_zh, message_en and, where they apply, "
                             "field, rule and the policy article (cite)."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", ERROR)
    paths = {}
    for r in ROUTES:
        op = {
            "operationId": r.name, "summary": r.summary, "tags": [r.tag],
            "responses": {str(r.status): {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                          "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        }
        if r.roles is not None:
            op["security"] = [{"bearer": []}]
            op["description"] = "roles: " + ", ".join(r.roles)
        if r.path_params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in r.path_params]
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": r.body}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    for path, ops in paths.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()
