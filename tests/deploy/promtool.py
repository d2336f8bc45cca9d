"""Run Prometheus's ``promtool`` from tests.

Service tests lint their ``/metrics`` output with it::

    from tests.deploy.promtool import check_metrics
    check_metrics(requests.get(f"{base}/metrics").text)   # AssertionError listing each problem

promtool comes from Debian's ``prometheus`` package; when it is missing every helper fails
with the command that installs it (``python -m tests.deploy.promtool`` prints it too).
"""
import os
import shutil
import subprocess
import sys

INSTALL = "apt-get update && apt-get install -y prometheus"
MISSING = ("promtool is not installed (it ships in Debian's `prometheus` package): "
           f"run  {INSTALL}  (as root), or point PROMTOOL at the binary")


def path():
    """The promtool binary, or an AssertionError saying how to install it."""
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found or not os.access(found, os.X_OK):
        raise AssertionError(MISSING)
    return found


def run(*args, input_text=None, cwd=None, timeout=60):
    """``promtool <args>``; returns the CompletedProcess (text mode, output captured)."""
    return subprocess.run([path(), *args], input=input_text, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def check_metrics(text):
    """Lint a Prometheus text exposition (``promtool check metrics``, fed on stdin).

    Returns promtool's output; raises AssertionError with each problem when it finds any.
    """
    result = run("check", "metrics", input_text=text)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise AssertionError(f"promtool check metrics found problems:\n{output}")
    return output


if __name__ == "__main__":
    try:
        print(path())
        print(run("--version").stdout.splitlines()[0])
    except AssertionError as exc:
        print(exc)
        sys.exit(1)
