"""A suite the benchmark starts for itself: its own vhosts, its own databases and one
``nameko run`` process per service (as an agency runs it, so RSS is a real process's),
all removed again at the end."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

from tests.support import broker, databases
from tests.support.ports import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUITE = {
    "registry": ("services.registry.service:RegistryService", "services/registry/config.yaml"),
    "review": ("services.review.service:ReviewService", "services/review/config.yaml"),
    "budget": ("services.budget.service:BudgetService", "services/budget/config.yaml"),
    "security": ("services.security.service:SecurityService", "services/security/config.yaml"),
    "filing": ("services.filing.service:FilingService", "services/filing/config.yaml"),
    "gateway": ("gateway.service:GatewayService", "gateway/config.yaml"),
}
BENCH_CONFIG = "bench/config.yaml"


def http_json(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def rss_bytes(pid, field="VmRSS"):
    """Resident set size of a process (``VmRSS``; ``VmHWM``: the highest it has been), in
    bytes."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    """User + system CPU time a process has used, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid():
    """The local RabbitMQ's Erlang VM (beam.smp), if it runs on this machine."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"beam.smp") and any(b"rabbit" in a for a in args):
            return int(entry)
    return None


def with_broker(pids):
    """``pids`` ({process name: pid}) and, if it runs on this machine, the broker's as
    ``rabbitmq``."""
    beam = broker_pid()
    return dict(pids, rabbitmq=beam) if beam else dict(pids)


def postgres_cpu():
    """``{pid: cpu seconds}`` of the local PostgreSQL server's processes (readable ones)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                first = fh.read().split(b"\0")[0]
            if first.startswith(b"postgres") or first.endswith(b"/postgres"):
                out[int(entry)] = cpu_seconds(int(entry))
        except OSError:
            continue
    return out



def _keep_going(what, fn, *args):
    """Cleaning up: one step that fails is reported, and the others still run."""
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - keep cleaning up
        print(f"  (could not {what}: {exc})")

class Proc:
    def __init__(self, name, popen, port, log_path):
        self.name = name
        self.popen = popen
        self.port = port
        self.log_path = log_path

    @property
    def pid(self):
        return self.popen.pid

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def alive(self):
        return self.popen.poll() is None

    def ready(self):
        try:
            status, _ = http_json(self.base_url + "/health/ready")
            return status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def rss(self):
        return rss_bytes(self.pid)

    def tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as fh:
                return b"\n".join(fh.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"


class Cluster:
    """Vhosts, databases and processes of one benchmark run; ``close()`` removes them all."""

    def __init__(self, run_dir, run_id=None):
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.run_dir = run_dir
        self.log_dir = os.path.join(run_dir, "log")
        self.db_dir = os.path.join(run_dir, "db")
        os.makedirs(self.log_dir, exist_ok=True)
        os.makedirs(self.db_dir, exist_ok=True)
        self.vhosts = []
        self.pg_urls = []
        self.procs = {}
        self.root = ROOT  # the tree whose code and .venv the processes started now run

    @contextlib.contextmanager
    def tree(self, root):
        """Processes started inside run ``root``'s code, with ``root``'s ``.venv`` (another
        commit's worktree, or one whose venv has another interpreter)."""
        saved, self.root = self.root, root
        try:
            yield
        finally:
            self.root = saved

    # ---- resources ---------------------------------------------------------------------------
    def vhost(self, label):
        name = f"bench-{self.run_id}-{label}"
        broker.create_vhost(name)
        self.vhosts.append(name)
        return broker.amqp_uri(name)

    def database(self, backend, name):
        if backend == "sqlite":
            return f"sqlite:///{self.db_dir}/{name}.db"
        url = databases.create("postgresql", f"bench_{name}", self.db_dir)
        self.pg_urls.append(url)
        return url

    # ---- processes ---------------------------------------------------------------------------
    def start(self, name, target, config, env=None, defines=None):
        port = free_port()
        full_env = dict(os.environ)
        full_env.update({"PYTHONWARNINGS": "ignore", "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
        # as scripts/suite.py and deploy/Dockerfile start a service (see bench/README.md, memory)
        full_env.setdefault("EVENTLET_NO_GREENDNS", "yes")
        # this tree's code, even where the venv's editable install points at another checkout
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (self.root, os.environ.get("PYTHONPATH")) if p)
        full_env.update(env or {})
        args = [os.path.join(self.root, ".venv", "bin", "nameko"), "run", target, "--config", config]
        for key, value in (defines or {}).items():
            args += ["--define", f"{key}={value}"]
        log_path = os.path.join(self.log_dir, f"{name}.log")
        log = open(log_path, "ab")
        popen = subprocess.Popen(args, cwd=self.root, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        proc = Proc(name, popen, port, log_path)
        self.procs[name] = proc
        return proc

    def start_suite_service(self, name, amqp_uri, db_url, jurisdiction, defines=None, prefix=""):
        target, config = SUITE[name]
        env = {"AMQP_URI": amqp_uri, "JURISDICTION": jurisdiction, f"{name.upper()}_DB_URL": db_url}
        return self.start(prefix + name, target, config, env=env, defines=defines)

    def start_bench_service(self, name, cls, amqp_uri, db_url=None, defines=None):
        env = {"AMQP_URI": amqp_uri, "BENCH_DB_URL": db_url or f"sqlite:///{self.db_dir}/{name}.db",
               "BENCH_SERVICE": cls}
        return self.start(name, f"bench.services:{cls}", BENCH_CONFIG, env=env, defines=defines)

    def wait_ready(self, names, timeout=120):
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                proc = self.procs[name]
                if not proc.alive():
                    raise RuntimeError(f"{name} exited while starting; last lines of {proc.log_path}:\n{proc.tail()}")
                if proc.ready():
                    pending.remove(name)
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"not ready in {timeout}s: {pending}; e.g. {self.procs[pending[0]].tail()}")

    def stop(self, name):
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            proc.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.popen.wait(timeout=5)

    def close(self):
        for proc in self.procs.values():  # all at once, then wait for each
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
        for name in list(self.procs):
            _keep_going(f"stop {name}", self.stop, name)
        for name in self.vhosts:
            _keep_going(f"delete vhost {name}", broker.delete_vhost, name)
        self.vhosts = []
        for url in self.pg_urls:
            _keep_going(f"drop {url.rsplit('/', 1)[-1]}", databases.drop, url)
        self.pg_urls = []
        shutil.rmtree(self.db_dir, ignore_errors=True)  # the SQLite files (100k projects: ~300 MB); logs stay
