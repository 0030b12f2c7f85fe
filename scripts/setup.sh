#!/usr/bin/env bash
# Install everything Curbstop needs on a fresh Debian-like machine, idempotently:
# uv (Python env + lock), the locked Python packages, the locked npm packages (pouchdb-server),
# and the Debian packages the test tiers use (Xvfb for the Kivy app, Chromium for web pages).
# Safe to run again; each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

need_apt=()
command -v Xvfb >/dev/null 2>&1 || need_apt+=(xvfb)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
# Kivy's SDL2 window needs these GL/input libraries at run time.
ldconfig -p 2>/dev/null | grep -q libmtdev || need_apt+=(libmtdev1)
ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || need_apt+=(libgl1)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    log "WARNING: missing ${need_apt[*]} and cannot apt-get install them (not root); the tiers that need them will be skipped"
  fi
fi

if ! command -v uv >/dev/null 2>&1; then
  log "installing uv"
  python3 -m pip install --quiet uv
fi

log "syncing Python packages from uv.lock"
uv sync --frozen --quiet
# Compile the routing search once (numba caches it next to the module), so that neither the first
# plan nor the first test waits for the compiler.
uv run --frozen --no-sync python -c "from routing.ruin_recreate import warm_up; warm_up()"

if [ ! -x node_modules/.bin/pouchdb-server ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "ready"
