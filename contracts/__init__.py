"""Message contracts shared by every service: schemas, event names, errors, enums.

A service never imports another service; what crosses a boundary is defined here once.
"""
from .base import ContractSchema, bilingual_errors, dump, load, rule_message  # noqa: F401
from .errors import (  # noqa: F401
    Conflict, DomainError, Forbidden, NotFound, PolicyRefusal, Unauthorized, ValidationFailed,
)
