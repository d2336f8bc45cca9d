"""Local runner: ``up`` starts one suite per jurisdiction, ``down`` stops them all.

Each jurisdiction gets its own RabbitMQ vhost (``govpm-<jurisdiction>``), its own
databases (one SQLite file per service under ``var/<jurisdiction>/`` unless
``DB_URL_TEMPLATE`` points at PostgreSQL), five agency services and a gateway, each a
``nameko run`` process of its own, exactly as an agency would run it.

Settings (environment):
  JURISDICTIONS    comma list (default: all five)
  DB_URL_TEMPLATE  e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/govpm_{jurisdiction}_{service}
  RABBIT_HOST/RABBIT_PORT/RABBIT_USER/RABBIT_PASSWORD   broker (default 127.0.0.1:5672 guest/guest)
  GATEWAY_ADMIN_PASSWORD  the gateway's first admin password (default: generated, kept in var/)
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAR = os.path.join(ROOT, "var")
STATE = os.path.join(VAR, "suite.json")
ALL = ["sichuan", "bazhong", "jinjiang", "guangyuan", "dalate"]
SERVICES = ["registry", "review", "budget", "security", "filing"]
CLASSES = {"registry": "RegistryService", "review": "ReviewService", "budget": "BudgetService",
           "security": "SecurityService", "filing": "FilingService"}
NAMEKO = os.path.join(ROOT, ".venv", "bin", "nameko")

HOST = os.environ.get("RABBIT_HOST", "127.0.0.1")
PORT = os.environ.get("RABBIT_PORT", "5672")
USER = os.environ.get("RABBIT_USER", "guest")
PASSWORD = os.environ.get("RABBIT_PASSWORD", "guest")
MGMT = os.environ.get("RABBIT_MGMT_URL", f"http://{HOST}:15672")


def ports(index):
    """jurisdiction #i (1-based): gateway 800i, services 9i01..9i05."""
    return 8000 + index, {s: 9000 + index * 100 + k for k, s in enumerate(SERVICES, start=1)}


def mgmt(method, path, body=None):
    import base64
    req = urllib.request.Request(f"{MGMT}/api/{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


def ensure_vhost(name):
    mgmt("PUT", f"vhosts/{quote(name, safe='')}")
    mgmt("PUT", f"permissions/{quote(name, safe='')}/{quote(USER, safe='')}",
         {"configure": ".*", "write": ".*", "read": ".*"})


def db_url(jurisdiction, service):
    template = os.environ.get("DB_URL_TEMPLATE")
    if template:
        url = template.format(jurisdiction=jurisdiction, service=service)
        if url.startswith("postgresql"):
            ensure_pg_database(url)
        return url
    os.makedirs(os.path.join(VAR, jurisdiction), exist_ok=True)
    return f"sqlite:///{os.path.join(VAR, jurisdiction, service + '.db')}"


def ensure_pg_database(url):
    import psycopg2
    from urllib.parse import urlparse
    p = urlparse(url.replace("postgresql+psycopg2", "postgresql"))
    name = p.path.lstrip("/")
    conn = psycopg2.connect(host=p.hostname, port=p.port or 5432, user=p.username, password=p.password, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def make_keys(keys_dir):
    """Each agency service's signing key for this jurisdiction (created once)."""
    from runtime.signing import KeyRing
    for service in SERVICES:
        KeyRing(keys_dir, service).private_key()


def admin_password():
    path = os.path.join(VAR, "admin-password")
    if os.environ.get("GATEWAY_ADMIN_PASSWORD"):
        return os.environ["GATEWAY_ADMIN_PASSWORD"]
    if os.path.exists(path):
        return open(path).read().strip()
    os.makedirs(VAR, exist_ok=True)
    value = secrets.token_urlsafe(12)
    with open(path, "w") as fh:
        fh.write(value)
    os.chmod(path, 0o600)
    return value


def spawn(name, module, config, env, log_path):
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["PYTHONWARNINGS"] = "ignore"
    # eventlet's green DNS (dnspython, patched twice over) costs ~20 MB per process; the
    # services resolve a host name only when they (re)connect
    full_env.setdefault("EVENTLET_NO_GREENDNS", "yes")
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [NAMEKO, "run", module, "--config", config],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    return proc.pid


def http_ok(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def alive(pid):
    try:  # reap it first if it is our own exited child (a zombie still answers kill 0)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def up():
    if os.path.exists(STATE):
        state = json.load(open(STATE))
        if any(alive(p["pid"]) for j in state["jurisdictions"].values() for p in j["processes"].values()):
            print("套件已在运行 / the suite is already running (make down first)")
            print_table(state)
            return 0
    wanted = [j.strip() for j in os.environ.get("JURISDICTIONS", ",".join(ALL)).split(",") if j.strip()]
    unknown = [j for j in wanted if j not in ALL]
    if unknown:
        print(f"未知辖区 / unknown jurisdiction(s): {unknown}; choose from {ALL}")
        return 2
    os.makedirs(os.path.join(VAR, "log"), exist_ok=True)
    password = admin_password()
    state = {"jurisdictions": {}, "admin_user": "admin", "admin_password_file": os.path.join("var", "admin-password")}
    for j in wanted:
        index = ALL.index(j) + 1
        vhost = f"govpm-{j}"
        try:
            ensure_vhost(vhost)
        except Exception as exc:  # the management API is checked by ensure_rabbitmq.sh
            print(f"无法创建 vhost / cannot create vhost {vhost}: {exc}")
            return 1
        amqp = f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/{quote(vhost, safe='')}"
        gw_port, svc_ports = ports(index)
        keys_dir = os.path.join(VAR, j, "keys")
        make_keys(keys_dir)
        entry = {"vhost": vhost, "gateway": f"http://127.0.0.1:{gw_port}", "processes": {}}
        for service in SERVICES:
            port = svc_ports[service]
            env = {
                "AMQP_URI": amqp, "JURISDICTION": j, "KEYS_DIR": keys_dir,
                f"{service.upper()}_DB_URL": db_url(j, service),
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            }
            log_path = os.path.join(VAR, "log", f"{j}-{service}.log")
            pid = spawn(service, f"services.{service}.service:{CLASSES[service]}", f"services/{service}/config.yaml",
                        env, log_path)
            entry["processes"][service] = {
                "pid": pid, "metrics": f"http://127.0.0.1:{port}/metrics",
                "live": f"http://127.0.0.1:{port}/health/live", "ready": f"http://127.0.0.1:{port}/health/ready",
                "log": os.path.relpath(log_path, ROOT),
            }
        env = {
            "AMQP_URI": amqp, "JURISDICTION": j, "GATEWAY_DB_URL": db_url(j, "gateway"),
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{gw_port}", "GATEWAY_ADMIN_PASSWORD": password,
        }
        log_path = os.path.join(VAR, "log", f"{j}-gateway.log")
        pid = spawn("gateway", "gateway.service:GatewayService", "gateway/config.yaml", env, log_path)
        entry["processes"]["gateway"] = {
            "pid": pid, "metrics": f"http://127.0.0.1:{gw_port}/metrics",
            "live": f"http://127.0.0.1:{gw_port}/health/live", "ready": f"http://127.0.0.1:{gw_port}/health/ready",
            "log": os.path.relpath(log_path, ROOT),
        }
        state["jurisdictions"][j] = entry
    with open(STATE, "w") as fh:
        json.dump(state, fh, indent=2, ensure_ascii=False)

    print(f"启动中 / starting {len(wanted) * 6} processes ...", flush=True)
    deadline = time.monotonic() + float(os.environ.get("UP_TIMEOUT", "180"))
    pending = {(j, s): p for j, e in state["jurisdictions"].items() for s, p in e["processes"].items()}
    while pending and time.monotonic() < deadline:
        for key, proc in list(pending.items()):
            if not alive(proc["pid"]):
                print(f"进程退出 / {key[0]}/{key[1]} exited during start; last lines of {proc['log']}:")
                print(tail(proc["log"]))
                down(quiet=True)
                return 1
            if http_ok(proc["ready"]):
                pending.pop(key)
        time.sleep(0.5)
    if pending:
        for (j, s), proc in pending.items():
            print(f"未就绪 / {j}/{s} not ready in time; last lines of {proc['log']}:")
            print(tail(proc["log"]))
        down(quiet=True)
        return 1
    print_table(state)
    return 0


def tail(path, lines=20):
    try:
        with open(os.path.join(ROOT, path), "rb") as fh:
            return b"\n".join(fh.read().splitlines()[-lines:]).decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def print_table(state):
    print()
    print("政务信息化项目管理套件已启动 / the suite is up")
    print(f"管理员 / admin user: admin   password: see {state['admin_password_file']}")
    for j, entry in state["jurisdictions"].items():
        print(f"\n[{j}]  vhost {entry['vhost']}")
        print(f"  gateway   API      {entry['gateway']}/api/v1   (OpenAPI: {entry['gateway']}/api/v1/openapi.json)")
        for name, proc in entry["processes"].items():
            print(f"  {name:<9} metrics  {proc['metrics']}   health {proc['live']} {proc['ready']}")
    print("\n下一步 / next: make demo    停止 / stop: make down")


def down(quiet=False):
    if not os.path.exists(STATE):
        if not quiet:
            print("没有正在运行的套件 / nothing to stop")
        return 0
    state = json.load(open(STATE))
    pids = [p["pid"] for e in state["jurisdictions"].values() for p in e["processes"].values()]
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    time.sleep(0.3)
    left = [p for p in pids if alive(p)]
    os.remove(STATE)
    if left:
        print(f"仍有进程未退出 / processes still alive: {left}")
        return 1
    if not quiet:
        print(f"已停止 {len(pids)} 个进程 / stopped {len(pids)} processes")
    return 0


def status():
    if not os.path.exists(STATE):
        print("没有正在运行的套件 / the suite is not running")
        return 1
    state = json.load(open(STATE))
    for j, entry in state["jurisdictions"].items():
        for name, proc in entry["processes"].items():
            ok = "ready" if http_ok(proc["ready"]) else ("alive" if alive(proc["pid"]) else "DOWN")
            print(f"{j:<10} {name:<9} pid {proc['pid']:<7} {ok}")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "up"
    handlers = {"up": up, "down": down, "status": status}
    if command not in handlers:
        print(f"usage: suite.py {{{'|'.join(handlers)}}}")
        sys.exit(2)
    try:
        sys.exit(handlers[command]())
    except KeyboardInterrupt:
        sys.exit(130)
