"""RPC contracts: ``"<service>.<method>" -> (ArgsSchema, ResultSchema)``.

Each service's RPC schemas live in ``contracts/rpc_<service>.py`` as a dict named
``RPC``; this module gathers them. A result schema of ``None`` means the method
returns a plain JSON value described in its docstring.
"""
import importlib

from .enums import SERVICES

_MODULES = ["contracts.rpc_desk"] + [f"contracts.rpc_{name}" for name in SERVICES + ("gateway",)]


def _collect():
    table = {}
    for module_name in _MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        for key, value in module.RPC.items():
            if key in table:
                raise ValueError(f"RPC contract {key} defined twice")
            table[key] = value
    return table


RPC = _collect()


def contract(name):
    try:
        return RPC[name]
    except KeyError:
        raise KeyError(f"no RPC contract named {name!r}") from None
