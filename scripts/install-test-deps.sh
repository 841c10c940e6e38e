#!/usr/bin/env bash
# Installs what the end-to-end tests, the demo and the benchmark need, once:
#   - InspIRCd 3 from Debian (needs root for apt-get; the Debian service is stopped so it
#     never holds a port the tests might pick),
#   - PostgreSQL from Debian (the server binaries; the tests run throwaway clusters with
#     initdb/pg_ctl, so the Debian service is stopped too),
#   - Synapse in a virtual environment outside the clone, from PyPI.
# Safe to run again: it does nothing when all are present.
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/matrix-irc-bridge"
VENV="$CACHE/synapse-venv"
SYNAPSE_SPEC="${SYNAPSE_SPEC:-matrix-synapse==1.163.*}"

if ! command -v inspircd >/dev/null 2>&1 && [ ! -x /usr/sbin/inspircd ]; then
  echo "install-test-deps: installing InspIRCd from Debian" >&2
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq inspircd >/dev/null
  # The package may start its own daemon; the tests run their own throwaway servers.
  ($SUDO service inspircd stop || $SUDO systemctl stop inspircd || true) >/dev/null 2>&1
fi

have_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
if ! have_initdb; then
  echo "install-test-deps: installing PostgreSQL from Debian" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  ($SUDO service postgresql stop || $SUDO systemctl stop postgresql || true) >/dev/null 2>&1
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import synapse" >/dev/null 2>&1; then
  echo "install-test-deps: creating the Synapse virtual environment in $VENV" >&2
  PY=""
  for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
      PY="$candidate"
      break
    fi
  done
  [ -n "$PY" ] || { echo "install-test-deps: Synapse needs Python >= 3.10" >&2; exit 1; }
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "$SYNAPSE_SPEC"
fi
