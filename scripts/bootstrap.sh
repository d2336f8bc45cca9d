#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the pinned dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
# PYTHON first when set; then the distribution's own python3.11, before one found on PATH.
# Debian and Ubuntu build theirs with profile-guided and link-time optimisation; pyenv's
# default build has neither. Side by side, the services needed 6-17% less CPU on the
# distribution's build (bench/README.md, step 22). A candidate must be 3.11 and able to
# make a venv (Debian's python3.11-venv package).
PY=""
for cand in "${PYTHON:-}" /usr/bin/python3.11 python3.11 python3; do
  [[ -z "$cand" ]] && continue
  if command -v "$cand" >/dev/null 2>&1 \
      && "$cand" -c 'import sys, ensurepip, venv; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
    PY="$cand"; break
  fi
done
if [[ -z "$PY" ]]; then
  echo "需要 Python 3.11 / Python 3.11 is required (nameko 3.0.0rc11 and eventlet 0.41 are pinned to it)."
  echo "  Debian/Ubuntu: sudo apt-get install -y python3.11 python3.11-venv ; or set PYTHON=/path/to/python3.11"
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "创建虚拟环境 / creating .venv with $PY"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null \
  || .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
touch .venv/.installed
echo "依赖已安装 / dependencies installed"
