"""Shared by the deploy tests: paths and the definitions generator loaded as a module."""
import importlib.util
import os
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
AGENCY_SERVICES = ("registry", "review", "budget", "security", "filing", "gateway")


def load_generator():
    """``scripts/gen_definitions.py`` as a module (``scripts`` is not a package)."""
    path = os.path.join(ROOT, "scripts", "gen_definitions.py")
    spec = importlib.util.spec_from_file_location("gen_definitions", path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec.loader.exec_module(module)
    return module


# ---- metric names ------------------------------------------------------------------------

# Metrics the alerts and the dashboard use that runtime/metrics.py does not define yet; the
# lead adds them (gauge govpm_ready{service}: 1 when /health/ready would answer 200, else 0).
# Remove a name from here once runtime/metrics.py defines it.
PENDING_METRICS = set()  # metrics the deploy files may name before the runtime exports them
BUILTIN_SERIES = {"up"}  # made by Prometheus for every target


def runtime_metric_names():
    """Every series name runtime/metrics.py can expose: gauges by name, counters as
    ``<name>_total``, histograms as ``<name>_bucket``/``_count``/``_sum``."""
    from runtime import metrics
    names = set()
    for collector in set(metrics.REGISTRY._names_to_collectors.values()):
        kind, name = collector._type, collector._name
        if kind == "counter":
            names.add(f"{name}_total")
        elif kind == "histogram":
            names.update({f"{name}_bucket", f"{name}_count", f"{name}_sum"})
        else:
            names.add(name)
    return names


def allowed_metric_names():
    return runtime_metric_names() | PENDING_METRICS | BUILTIN_SERIES


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
             "bool", "offset", "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression selects (Grafana's $variables allowed)."""
    import re
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # dashboard variables
    text = re.sub(r"(?<![A-Za-z0-9_:])\d[\w.]*", " ", text)  # numbers and durations
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() in _KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def service_command(service):
    """The ``nameko run`` command of a service, naming its class (``module:Class``): without
    the class nameko also tries to run the mixins the module imports and aborts."""
    import ast
    package = "gateway" if service == "gateway" else f"services/{service}"
    path = os.path.join(ROOT, package, "service.py")
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    classes = [
        node.name for node in tree.body if isinstance(node, ast.ClassDef)
        and any(isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == "name" for t in stmt.targets)
                and isinstance(stmt.value, ast.Constant) and stmt.value.value == service for stmt in node.body)
    ]
    assert len(classes) == 1, f"{path}: expected one class with name = {service!r}, found {classes}"
    module = package.replace("/", ".") + ".service"
    return ["nameko", "run", f"{module}:{classes[0]}", "--config", f"{package}/config.yaml"]
