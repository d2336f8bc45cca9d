#!/usr/bin/env bash
# Tools the tests use besides Python: promtool (Debian's `prometheus` package) checks
# every service's /metrics output and the alert rules.
set -u
if command -v promtool >/dev/null 2>&1; then exit 0; fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "安装 promtool / installing promtool (Debian package prometheus) ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
    >/tmp/promtool-install.log 2>&1 || { echo "安装失败 / install failed, see /tmp/promtool-install.log"; exit 1; }
  # the package starts a Prometheus server; the tests need only the promtool binary
  (command -v systemctl >/dev/null 2>&1 && systemctl stop prometheus) >/dev/null 2>&1 || pkill -x prometheus >/dev/null 2>&1 || true
  command -v promtool >/dev/null 2>&1 && exit 0
fi
echo "需要 promtool / promtool is required by the tests:"
echo "  Debian/Ubuntu: sudo apt-get install -y prometheus    (or put promtool from a Prometheus release on PATH)"
exit 1
