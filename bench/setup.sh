#!/usr/bin/env bash
# Tools the benchmarks use, installed when missing (Debian packages):
#   bench/setup.sh            wrk, for the HTTP load (bench/run.py runs this)
#   bench/setup.sh valgrind   valgrind, whose callgrind counts instructions (bench/instructions.py runs this)
# Without wrk (not root, no apt) the benchmarks fall back to a threaded Python client;
# without valgrind, bench/instructions.py stops and says how to install it.
set -uo pipefail

ensure() {  # ensure <command> <package> <what happens without it>
  command -v "$1" >/dev/null 2>&1 && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $2 (apt-get install -y $2) ..."
    (apt-get install -y "$2" >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y "$2" >/dev/null 2>&1)) \
      || echo "could not install $2; $3"
  else
    echo "$1 not found (install it with: sudo apt-get install -y $2); $3"
  fi
}

if [[ $# -eq 0 ]]; then set -- wrk; fi
for tool in "$@"; do
  case "$tool" in
    wrk) ensure wrk wrk "the gateway load falls back to Python threads" ;;
    valgrind) ensure valgrind valgrind "bench/instructions.py cannot count instructions" ;;
    *) echo "unknown tool $tool (wrk, valgrind)"; exit 2 ;;
  esac
done
exit 0
