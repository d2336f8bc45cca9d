"""Service boundaries: a service never imports another service (or the gateway), the
gateway imports no service, shared packages import neither, and rules modules
(``domain.py``) import no framework. CI fails when one of these breaks."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICES = ["registry", "review", "budget", "security", "filing"]
FRAMEWORKS = ("nameko", "sqlalchemy", "marshmallow", "kombu", "amqp", "eventlet")


def imports_of(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                package = path.relative_to(ROOT).parent.parts
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ((node.module,) if node.module else ()))
            else:
                name = node.module or ""
            found.append((name, node.lineno))
    return found


def py_files(folder):
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts or p.name == "env.py")


@pytest.mark.unit
@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service_and_not_the_gateway(service):
    bad = []
    for path in py_files(f"services/{service}"):
        for name, line in imports_of(path):
            parts = name.split(".")
            if parts[0] == "gateway" or (parts[0] == "services" and len(parts) > 1 and parts[1] != service):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "service boundary broken:\n" + "\n".join(bad)


@pytest.mark.unit
def test_the_gateway_imports_no_service():
    bad = [f"{p.relative_to(ROOT)}:{line} imports {name}"
           for p in py_files("gateway") for name, line in imports_of(p) if name.split(".")[0] == "services"]
    assert not bad, "\n".join(bad)


@pytest.mark.unit
@pytest.mark.parametrize("package", ["contracts", "runtime", "policy"])
def test_shared_packages_import_no_service_and_not_the_gateway(package):
    bad = [f"{p.relative_to(ROOT)}:{line} imports {name}"
           for p in py_files(package) for name, line in imports_of(p)
           if name.split(".")[0] in ("services", "gateway")]
    assert not bad, "\n".join(bad)


@pytest.mark.unit
@pytest.mark.parametrize("service", SERVICES)
def test_rules_modules_import_no_framework(service):
    path = ROOT / "services" / service / "domain.py"
    assert path.exists(), f"services/{service}/domain.py holds the service's rules"
    bad = [f"{name} (line {line})" for name, line in imports_of(path) if name.split(".")[0] in FRAMEWORKS]
    assert not bad, f"services/{service}/domain.py must stay plain Python: " + ", ".join(bad)


@pytest.mark.unit
def test_the_checker_catches_a_cross_service_import(tmp_path, monkeypatch):
    # the check itself can fail: a planted import is found
    fake = ROOT / "services" / "filing" / "_boundary_probe.py"
    fake.write_text("from services.registry import domain\n", encoding="utf-8")
    try:
        with pytest.raises(AssertionError):
            test_a_service_imports_no_other_service_and_not_the_gateway("filing")
    finally:
        fake.unlink()
