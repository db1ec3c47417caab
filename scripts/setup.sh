#!/usr/bin/env bash
# Everything the project needs on a fresh Debian machine; idempotent, so both
# scripts/demo and scripts/test run it first. Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DRAYDOG_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium and chromium-driver" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The replica's camera page runs on the real widget (Vue 2.7, Element UI 2.15) from
# the npm registry, cached outside the package.
source "$ROOT/scripts/fetch-widget.sh"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating the virtual environment $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.draydog-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "setup: installing the project and its development tools" >&2
  log="$VENV/pip-install.log"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip \
        && "$VENV/bin/python" -m pip install -e "$ROOT[dev]"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: pip install failed (log above, also in $log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
# Selenium must never try to download a driver: the Debian one is used.
export SE_OFFLINE=true
export PATH="$VENV/bin:$PATH"
