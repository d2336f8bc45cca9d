"""Errors that cross service boundaries.

Every error carries a stable ``code``, a Chinese message first and an English one
second, and, where it applies, the field, the rule and the policy article it cites.
They are registered with nameko so that a caller of an RPC gets the same class back
(``exc_args`` is one JSON-safe dict).
"""
from nameko.exceptions import deserialize_to_instance


class DomainError(Exception):
    """Base of every expected error. ``http_status`` is used by the gateway."""

    code = "domain_error"
    http_status = 400

    def __init__(self, detail=None, **kwargs):
        if isinstance(detail, dict):
            data = dict(detail)
        else:
            data = {}
            if detail is not None:
                data["message_en"] = str(detail)
        data.update(kwargs)
        data.setdefault("code", self.code)
        self.data = data
        super().__init__(data)

    @property
    def message_zh(self):
        return self.data.get("message_zh", "")

    @property
    def message_en(self):
        return self.data.get("message_en", "")

    @property
    def errors(self):
        return self.data.get("errors", [])

    def __str__(self):
        parts = [self.data.get("code", self.code)]
        if self.message_zh or self.message_en:
            parts.append(f"{self.message_zh} / {self.message_en}")
        for err in self.errors:
            parts.append(f"[{err.get('field')}] {err.get('zh')} / {err.get('en')}")
        if self.data.get("cite"):
            parts.append(f"({self.data['cite']})")
        return " ".join(parts)


def _register(cls):
    return deserialize_to_instance(cls)


@_register
class ValidationFailed(DomainError):
    """A payload does not fit its schema. ``errors`` lists field, rule, zh, en."""

    code = "validation_failed"
    http_status = 422

    @classmethod
    def from_errors(cls, errors, schema_name=""):
        return cls(
            message_zh=f"数据不符合约定（{schema_name}）" if schema_name else "数据不符合约定",
            message_en=f"payload does not fit {schema_name}" if schema_name else "payload does not fit",
            errors=errors,
        )


@_register
class NotFound(DomainError):
    code = "not_found"
    http_status = 404


@_register
class Forbidden(DomainError):
    code = "forbidden"
    http_status = 403


@_register
class Unauthorized(DomainError):
    code = "unauthorized"
    http_status = 401


@_register
class Conflict(DomainError):
    """The request does not fit the current state (e.g. signing twice)."""

    code = "conflict"
    http_status = 409


@_register
class PolicyRefusal(DomainError):
    """A rule of the jurisdiction's profile refuses the request; ``cite`` names it."""

    code = "policy_refusal"
    http_status = 422


EXPECTED = (DomainError,)


def refusal(rule, message_zh, message_en, cite, **extra):
    return PolicyRefusal(
        rule=rule, message_zh=message_zh, message_en=message_en, cite=cite, **extra
    )
