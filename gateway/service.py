"""The gateway: an HTTP JSON API over the agencies' services.

Authenticates people (bearer tokens), authorizes them by role and agency (a unit sees
only its own projects; an officer signs only for their own agency; an admin manages
users) and calls the agency services by RPC. It keeps no domain data.
"""
import datetime as dt
import logging
import os
import uuid

import eventlet
from nameko import config
from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider
from sqlalchemy import bindparam, select, update
from werkzeug.wrappers import Response

from contracts import DomainError, Forbidden, NotFound, Unauthorized, ValidationFailed, load
from contracts.enums import AGENCY_SERVICE
from runtime import jsoncodec
from runtime.config import seconds, setting
from runtime.db import utcnow
from runtime.dependencies import Database
from runtime.ops import Instrumentation, OpsEndpoints
from runtime.rpc import ServiceRpc
from runtime.sql import Prepared
from runtime.web import json_response

from . import auth, schemas
from .models import metadata, tokens, users
from .routes import route

#: every authenticated request whose token's owner is not remembered (auth.TokenCache) runs
#: it: compiled once and run on the cursor (runtime.sql; SQLAlchemy's work around a statement
#: costs more than SQLite running this one)
_TOKEN_USER = Prepared(select(users, tokens.c.expires_at).join(tokens, tokens.c.user_id == users.c.user_id)
                       .where(tokens.c.token_hash == bindparam("digest"), tokens.c.expires_at > bindparam("now")))

log = logging.getLogger(__name__)
MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


# One table maps every failure to an HTTP status and error body.
def error_response(exc):
    if isinstance(exc, DomainError):
        body = {"code": exc.data.get("code", exc.code)}
        body.update({k: v for k, v in exc.data.items() if k != "code"})
        return json_response(exc.http_status, {"error": body})
    if isinstance(exc, eventlet.Timeout) or type(exc).__name__ in ("RpcTimeout", "UnknownService"):
        return json_response(503, {"error": {"code": "service_unavailable", "message_zh": "相关部门服务暂不可用，请稍后重试",
                                     "message_en": "an agency service is unavailable; try again later"}})
    if isinstance(exc, RemoteError):
        log.error("remote error: %s", exc.exc_type)
        return json_response(502, {"error": {"code": "upstream_error", "message_zh": "部门服务处理出错",
                                     "message_en": f"an agency service failed ({exc.exc_type})"}})
    log.exception("gateway error")
    return json_response(500, {"error": {"code": "internal_error", "message_zh": "网关内部错误",
                                 "message_en": "internal error"}})


class TokenCacheProvider(DependencyProvider):
    """The container's :class:`gateway.auth.TokenCache`, shared by its workers. A
    ``TOKEN_CACHE_SECONDS`` that is not a number ≥ 0 stops the gateway at start."""

    def setup(self):
        self.cache = auth.TokenCache(setting("TOKEN_CACHE_SECONDS", 1, seconds))

    def get_dependency(self, worker_ctx):
        return self.cache


class Seconds(DependencyProvider):
    """A setting in seconds (> 0) that workers read as a number. A value that is not one
    stops the gateway at start, with an error naming the setting in Chinese and English."""

    def __init__(self, key, default):
        self.key = key
        self.default = default
        self.seconds = None

    def setup(self):
        self.seconds = setting(self.key, self.default, seconds, positive=True)

    def get_dependency(self, worker_ctx):
        return self.seconds


class GatewayService(OpsEndpoints):
    name = "gateway"

    db = Database(metadata, MIGRATIONS)
    token_cache = TokenCacheProvider()
    rpc_deadline = Seconds("RPC_TIMEOUT_SECONDS", 15)  # how long a request waits for an agency service
    token_ttl = Seconds("TOKEN_TTL_SECONDS", 12 * 3600)  # how long a login lasts
    instrumentation = Instrumentation()
    registry_rpc = ServiceRpc("registry")
    review_rpc = ServiceRpc("review")
    budget_rpc = ServiceRpc("budget")
    security_rpc = ServiceRpc("security")
    filing_rpc = ServiceRpc("filing")

    # ---- plumbing ---------------------------------------------------------------------
    def call(self, service, method, **kwargs):
        """RPC with a deadline: an agency that is down gives 503, not a hung request."""
        return self.result(self.call_async(service, method, **kwargs))

    def call_async(self, service, method, **kwargs):
        """Send the request now, wait later with :meth:`result` (calls that do not depend
        on each other then overlap instead of queueing one behind the other)."""
        return getattr(getattr(self, f"{service}_rpc"), method).call_async(**kwargs)

    def result(self, pending):
        """The reply to a :meth:`call_async` request, within the RPC deadline."""
        with eventlet.Timeout(self.rpc_deadline):
            return pending.result()

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise Unauthorized(message_zh="缺少访问令牌（Authorization: Bearer <token>）",
                               message_en="missing bearer token", field="Authorization")
        digest = auth.token_hash(header[7:].strip())
        principal = self.token_cache.get(digest)
        if principal is not None:
            return principal
        now = utcnow()
        with self.db.read() as conn:
            row = _TOKEN_USER.first(conn, {"digest": digest, "now": now})
        if row is None or not row.active:
            raise Unauthorized(message_zh="访问令牌无效或已过期", message_en="token invalid or expired",
                               field="Authorization")
        principal = auth.Principal(row.user_id, row.username, row.role, row.unit_id, row.unit_name, row.agency)
        self.token_cache.put(digest, principal, (row.expires_at - now).total_seconds())
        return principal

    def dispatch(self, spec, handler, request, path_values):
        try:
            principal = None
            if spec.roles is not None:
                principal = self.authenticate(request)
                auth.require_role(principal, spec.roles)
            body = None
            if spec.body is not None:
                raw = request.get_data(as_text=True) or "{}"
                try:
                    data = jsoncodec.loads(raw)
                except ValueError:
                    raise ValidationFailed.from_errors([{"field": "_body", "rule": "json", "zh": "请求体不是合法的 JSON",
                                                         "en": "request body is not valid JSON"}])
                body = load(spec.body, data)
            result = handler(self, principal=principal, body=body, request=request, **path_values)
            if isinstance(result, Response):
                return result
            return json_response(spec.status, result)
        except Exception as exc:  # noqa: BLE001 - mapped by one table
            return error_response(exc)

    def _project(self, principal, code):
        project = self.call("registry", "get_project", code=code)
        auth.require_own_project(principal, project)
        return project

    def _owned_read(self, principal, code, service, method):
        """``service.method(code=code)``, sent before the project's own read so that the two
        overlap instead of following each other (as in :meth:`get_project`); its answer is
        given only once the project's owner is checked."""
        pending = self.call_async(service, method, code=code)
        self._project(principal, code)
        return self.result(pending)

    # ---- auth & users -----------------------------------------------------------------
    @route("POST", "/api/v1/auth/token", roles=None, body=schemas.TokenRequest, tag="auth",
           summary="登录并取得访问令牌 / log in and get a bearer token")
    def create_token(self, principal, body, request):
        self._ensure_admin()
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.username == body["username"])).first()
        if row is None or not row.active or not auth.verify_password(body["password"], row.password_hash):
            raise Unauthorized(message_zh="用户名或密码错误", message_en="wrong username or password")
        token, digest = auth.new_token()
        expires = utcnow() + dt.timedelta(seconds=self.token_ttl)
        with self.db.transaction() as tx:
            tx.conn.execute(tokens.insert().values(token_hash=digest, user_id=row.user_id, expires_at=expires))
        return {"token": token, "expires_at": expires.isoformat() + "Z", "user": self._user_view(row)}

    def _ensure_admin(self):
        """The first admin comes from GATEWAY_ADMIN_PASSWORD when no user exists yet."""
        password = config.get("GATEWAY_ADMIN_PASSWORD")
        if not password:
            return
        with self.db.read() as conn:
            if conn.execute(select(users.c.user_id).limit(1)).first():
                return
        try:
            self.create_user_record({"username": "admin", "display_name": "系统管理员 / administrator",
                                     "password": str(password), "role": "admin"})
        except DomainError:
            pass  # created concurrently

    @route("GET", "/api/v1/me", roles=("unit", "officer", "admin"), tag="auth", summary="当前用户 / who am I")
    def me(self, principal, body, request):
        return principal.public()

    @staticmethod
    def _user_view(row):
        return {"user_id": row.user_id, "username": row.username, "display_name": row.display_name,
                "role": row.role, "unit_id": row.unit_id, "unit_name": row.unit_name, "agency": row.agency,
                "active": row.active}

    @route("GET", "/api/v1/users", roles=("admin",), tag="users", summary="用户列表 / list users")
    def list_users(self, principal, body, request):
        with self.db.read() as conn:
            return {"items": [self._user_view(r) for r in conn.execute(select(users).order_by(users.c.username))]}

    @route("POST", "/api/v1/users", roles=("admin",), body=schemas.CreateUserRequest, status=201, tag="users",
           summary="创建用户 / create a user")
    def create_user(self, principal, body, request):
        errors = []
        if body["role"] == "unit" and not (body.get("unit_id") and body.get("unit_name")):
            errors.append({"field": "unit_id", "rule": "required_for_unit", "zh": "项目建设单位用户必须有单位编码和名称",
                           "en": "a unit user needs unit_id and unit_name"})
        if body["role"] == "officer" and not body.get("agency"):
            errors.append({"field": "agency", "rule": "required_for_officer", "zh": "经办人员必须指定所属机构",
                           "en": "an officer needs an agency"})
        if errors:
            raise ValidationFailed.from_errors(errors, "CreateUserRequest")
        return self.create_user_record(body)

    def create_user_record(self, body):
        from contracts import Conflict
        user_id = uuid.uuid4().hex
        with self.db.transaction() as tx:
            exists = tx.conn.execute(select(users.c.user_id).where(users.c.username == body["username"])).first()
            if exists:
                raise Conflict(message_zh=f"用户名 {body['username']} 已存在", message_en="username already exists",
                               field="username")
            tx.conn.execute(users.insert().values(
                user_id=user_id, username=body["username"], display_name=body["display_name"],
                password_hash=auth.hash_password(body["password"]), role=body["role"],
                unit_id=body.get("unit_id") if body["role"] == "unit" else None,
                unit_name=body.get("unit_name") if body["role"] == "unit" else None,
                agency=body.get("agency") if body["role"] == "officer" else None,
                active=True, created_at=utcnow(),
            ))
        with self.db.read() as conn:
            return self._user_view(conn.execute(select(users).where(users.c.user_id == user_id)).one())

    @route("PATCH", "/api/v1/users/{user_id}", roles=("admin",), body=schemas.UpdateUserRequest, tag="users",
           summary="修改用户（停用、改密码）/ update a user (deactivate, password)")
    def update_user(self, principal, body, request, user_id):
        values = {}
        if "display_name" in body:
            values["display_name"] = body["display_name"]
        if "password" in body:
            values["password_hash"] = auth.hash_password(body["password"])
        if "active" in body:
            values["active"] = body["active"]
        revoked = values.get("active") is False or "password_hash" in values
        with self.db.transaction() as tx:
            found = tx.conn.execute(select(users.c.user_id).where(users.c.user_id == user_id)).first()
            if not found:
                raise NotFound(message_zh="用户不存在", message_en="user not found", field="user_id")
            if values:
                tx.conn.execute(update(users).where(users.c.user_id == user_id).values(**values))
            if revoked:
                tx.conn.execute(tokens.delete().where(tokens.c.user_id == user_id))
        if revoked:
            self.token_cache.forget_user(user_id)  # committed: this gateway stops accepting them now
        with self.db.read() as conn:
            return self._user_view(conn.execute(select(users).where(users.c.user_id == user_id)).one())

    # ---- projects ---------------------------------------------------------------------
    @route("GET", "/api/v1/jurisdiction", roles=None, tag="projects",
           summary="本部署的辖区规则概要 / the rule set this deployment runs")
    def jurisdiction(self, principal, body, request):
        from runtime.config import profile
        p = profile()
        return {
            "key": p.key, "name": p.name, "document": p.data["document"], "admin_code": p.admin_code,
            "agencies": p.data["agencies"],
            "pipelines": {kind: [{"key": s["key"], "name": s["name"], "type": s["type"], "cite": s["cite"]}
                                 for s in stages] for kind, stages in p.data["pipelines"].items()},
            "thresholds": p.thresholds,
        }

    @route("POST", "/api/v1/projects", roles=("unit",), body=schemas.ApplicationBody, status=201, tag="projects",
           summary="申报项目 / declare a project")
    def declare_project(self, principal, body, request):
        return self.call("registry", "declare_project", unit_id=principal.unit_id, unit_name=principal.unit_name,
                         application=_plain(body["application"]))

    @route("GET", "/api/v1/projects", roles=("unit", "officer", "admin"), tag="projects",
           summary="项目列表（单位只看本单位）/ list projects (a unit sees its own)")
    def list_projects(self, principal, body, request):
        args = request.args
        unit_id = principal.unit_id if principal.role == "unit" else args.get("unit_id")
        try:
            limit = min(int(args.get("limit", 50)), 500)
            offset = max(int(args.get("offset", 0)), 0)
        except ValueError:
            raise ValidationFailed.from_errors([{"field": "limit", "rule": "type_integer", "zh": "应为整数",
                                                 "en": "limit and offset must be integers"}])
        return self.call("registry", "list_projects", unit_id=unit_id, state=args.get("state"),
                         pool=args.get("pool"), limit=limit, offset=offset)

    @route("GET", "/api/v1/projects/{code}", roles=("unit", "officer", "admin"), tag="projects",
           summary="项目详情与审批进度 / a project with its approval case")
    def get_project(self, principal, body, request, code):
        # both reads at once; the case is shown only once the project's owner is checked.
        # The case is asked for first: it is the larger read and its answer usually comes
        # last, so its chain starts before the project's (bench/README.md, step 20)
        case_call = self.call_async("review", "get_case", code=code)
        project = self._project(principal, code)
        try:
            project["case"] = self.result(case_call)
        except NotFound:
            project["case"] = None
        return project

    @route("PUT", "/api/v1/projects/{code}/application", roles=("unit",), body=schemas.ApplicationBody,
           tag="projects", summary="修改退回的申报材料并重新提交 / revise a returned application")
    def revise_project(self, principal, body, request, code):
        return self.call("registry", "revise_project", code=code, unit_id=principal.unit_id,
                         application=_plain(body["application"]))

    @route("GET", "/api/v1/projects/{code}/history", roles=("unit", "officer", "admin"), tag="projects",
           summary="项目全过程记录 / the project's history")
    def project_history(self, principal, body, request, code):
        return {"items": self._owned_read(principal, code, "registry", "get_history")}

    @route("GET", "/api/v1/projects/{code}/case", roles=("unit", "officer", "admin"), tag="review",
           summary="审批案卷 / the approval case")
    def project_case(self, principal, body, request, code):
        return self._owned_read(principal, code, "review", "get_case")

    @route("GET", "/api/v1/projects/{code}/opinions", roles=("unit", "officer", "admin"), tag="review",
           summary="待出具的部门意见 / opinions still pending")
    def pending_opinions(self, principal, body, request, code):
        return {"items": self._owned_read(principal, code, "review", "list_pending_opinions")}

    @route("POST", "/api/v1/projects/{code}/documents", roles=("unit",), body=schemas.DocumentBody, tag="review",
           summary="提交审批文件 / submit a document")
    def submit_document(self, principal, body, request, code):
        self._project(principal, code)
        return self.call("review", "submit_document", code=code, unit_id=principal.unit_id, **body)

    @route("POST", "/api/v1/projects/{code}/panel", roles=("officer",), body=schemas.PanelBody, tag="review",
           summary="重新抽取专家组（含定向选取）/ redraw the expert panel")
    def redraw_panel(self, principal, body, request, code):
        return self.call("review", "redraw_panel", code=code, directed=body["directed"],
                         officer_id=principal.user_id, officer_agency=principal.agency)

    @route("POST", "/api/v1/projects/{code}/votes", roles=("officer",), body=schemas.VoteBody, tag="review",
           summary="录入专家表决 / record an expert's vote")
    def record_vote(self, principal, body, request, code):
        return self.call("review", "record_vote", code=code, officer_id=principal.user_id,
                         officer_agency=principal.agency, **body)

    @route("POST", "/api/v1/projects/{code}/decision", roles=("officer",), body=schemas.DecisionBody, tag="review",
           summary="签发审批决定 / sign the approval decision")
    def sign_decision(self, principal, body, request, code):
        return self.call("review", "sign_decision", code=code, officer_id=principal.user_id,
                         officer_agency=principal.agency, **body)

    # ---- officers' inbox ----------------------------------------------------------------
    def _desk(self, principal):
        service = AGENCY_SERVICE.get(principal.agency)
        if service is None or service == "review":
            raise Forbidden(message_zh="该机构没有意见收件箱", message_en="this agency has no opinion inbox",
                            field="agency")
        return service

    @route("GET", "/api/v1/inbox", roles=("officer",), tag="inbox",
           summary="本机构待签发的意见 / the agency's opinions waiting for signature")
    def inbox(self, principal, body, request):
        status = request.args.get("status", "pending_signature")
        return {"items": self.call(self._desk(principal), "list_inbox", agency=principal.agency, status=status)}

    @route("GET", "/api/v1/inbox/{request_id}", roles=("officer",), tag="inbox", summary="一件意见 / one opinion")
    def inbox_item(self, principal, body, request, request_id):
        item = self.call(self._desk(principal), "get_opinion", request_id=request_id)
        if item["agency"] != principal.agency:
            raise Forbidden(message_zh="只能查看本机构的意见", message_en="an officer sees only their agency's opinions")
        return item

    @route("POST", "/api/v1/inbox/{request_id}/sign", roles=("officer",), body=schemas.SignBody, tag="inbox",
           summary="签发意见 / sign an opinion")
    def sign_opinion(self, principal, body, request, request_id):
        return self.call(self._desk(principal), "sign_opinion", request_id=request_id, officer_id=principal.user_id,
                         officer_agency=principal.agency, verdict=body.get("verdict"),
                         conditions=body.get("conditions"), comment=body.get("comment") or "")

    # ---- the document -------------------------------------------------------------------
    @route("GET", "/api/v1/openapi.json", roles=None, tag="meta", summary="OpenAPI 文档 / this API's OpenAPI document")
    def openapi(self, principal, body, request):
        from .openapi import build
        return build()


def _plain(data):
    """A loaded schema dict back to JSON-safe values for the RPC."""
    return jsoncodec.loads(jsoncodec.dumpb(data, default=str))
