#!/usr/bin/env bash
# Tools the benchmarks use, installed when missing: wrk (HTTP load, Debian package).
# Without wrk (not root, no apt) the benchmarks fall back to a threaded Python client.
set -uo pipefail
if ! command -v wrk >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk (apt-get install -y wrk) ..."
    (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1)) \
      || echo "could not install wrk; the gateway load falls back to Python threads"
  else
    echo "wrk not found (install it with: sudo apt-get install -y wrk); falling back to Python threads"
  fi
fi
exit 0
