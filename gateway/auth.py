"""Passwords, tokens and roles (plain Python)."""
import base64
import dataclasses
import hashlib
import hmac
import secrets
import time

from contracts import Forbidden

SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password):
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, **SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password, stored):
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt_b64), **SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def new_token():
    """(token given to the user, hash kept by the gateway)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    role: str
    unit_id: str = None
    unit_name: str = None
    agency: str = None

    def public(self):
        return dataclasses.asdict(self)


class TokenCache:
    """Whose bearer tokens were just looked up, remembered for ``seconds`` (config
    ``TOKEN_CACHE_SECONDS``), so that the requests of one page load share one lookup.

    - An entry never outlives its token's expiry.
    - An admin's token is never remembered: each admin request is checked in the database.
    - When this gateway deactivates a user or changes their password, it forgets their
      entries at once; another gateway replica forgets them within ``seconds``.
    - ``seconds`` 0 remembers nothing.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, seconds, clock=time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._entries = {}  # token digest -> (Principal, clock time it stops being good)

    def get(self, digest):
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if self.clock() >= entry[1]:
            self._entries.pop(digest, None)
            return None
        return entry[0]

    def put(self, digest, principal, token_seconds_left):
        if self.seconds <= 0 or principal.role == "admin" or token_seconds_left <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._prune()
        self._entries[digest] = (principal, self.clock() + min(self.seconds, token_seconds_left))

    def forget_user(self, user_id):
        for digest in [d for d, (principal, _) in self._entries.items() if principal.user_id == user_id]:
            self._entries.pop(digest, None)

    def _prune(self):
        now = self.clock()
        for digest in [d for d, (_, until) in self._entries.items() if until <= now]:
            del self._entries[digest]
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()  # all still good: start again rather than grow


def require_role(principal, roles):
    if principal.role not in roles:
        raise Forbidden(
            message_zh=f"当前角色（{principal.role}）无权执行此操作，需要：{'/'.join(roles)}",
            message_en=f"role {principal.role} may not do this; needs one of {', '.join(roles)}",
            rule="role",
        )


def require_own_project(principal, project):
    """A unit sees only its own projects."""
    if principal.role == "unit" and project.get("unit_id") != principal.unit_id:
        raise Forbidden(message_zh="只能查看和操作本单位的项目", message_en="a unit sees only its own projects",
                        rule="own_unit")
