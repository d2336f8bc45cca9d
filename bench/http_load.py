"""HTTP load: sequential latency on one keep-alive connection, and throughput at a given
concurrency with wrk (Debian's ``wrk``; ``bench/setup.sh`` installs it) or, without it,
a small threaded Python client."""
import http.client
import re
import shutil
import subprocess
import threading
import time
from urllib.parse import urlparse


def latencies(url, headers, n, warmup=20):
    """Seconds per request, one request at a time on one keep-alive connection."""
    p = urlparse(url)
    conn = http.client.HTTPConnection(p.hostname, p.port, timeout=30)
    path = p.path + (f"?{p.query}" if p.query else "")
    out = []
    try:
        for i in range(warmup + n):
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            elapsed = time.perf_counter() - started
            if resp.status != 200:
                raise RuntimeError(f"GET {path} → {resp.status}: {body[:300]!r}")
            if i >= warmup:
                out.append(elapsed)
    finally:
        conn.close()
    return out


def throughput(url, headers, concurrency, seconds):
    """(requests per second, tool, p50 ms or None, p99 ms or None, non-2xx count)."""
    if shutil.which("wrk"):
        return _wrk(url, headers, concurrency, seconds)
    return _threads(url, headers, concurrency, seconds)


def _wrk(url, headers, concurrency, seconds):
    args = ["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    args.append(url)
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    def pct(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    return rps, "wrk", pct("50"), pct("99"), int(non2xx.group(1)) if non2xx else 0


def _threads(url, headers, concurrency, seconds):
    p = urlparse(url)
    path = p.path + (f"?{p.query}" if p.query else "")
    stop = time.monotonic() + seconds
    counts, errors, samples = [0] * concurrency, [0] * concurrency, [[] for _ in range(concurrency)]

    def worker(k):
        conn = http.client.HTTPConnection(p.hostname, p.port, timeout=30)
        while time.monotonic() < stop:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            samples[k].append(time.perf_counter() - started)
            if resp.status == 200:
                counts[k] += 1
            else:
                errors[k] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    from .stats import percentile
    flat = [s for part in samples for s in part]
    return (sum(counts) / elapsed, "python threads", percentile(flat, 50) * 1e3, percentile(flat, 99) * 1e3,
            sum(errors))
