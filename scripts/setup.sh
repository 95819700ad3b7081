#!/usr/bin/env bash
# Set up the project on a fresh machine: a virtualenv with the project and its test tools, the web
# page's browser libraries (npm), and the embedded FerretDB launcher (when no MONGO_URI is given).
# With --test (make test) it also installs what only the tests need: Chromium and promtool.
# Safe to run again: it only redoes what changed. llama-cpp-python compiles from source the first
# time (~5 min); pip caches the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python dependencies (first time: llama-cpp-python builds from source, ~5 min)"
  .venv/bin/python -m pip install --quiet -e '.[test]'
  touch "$stamp"
fi

# The web page's libraries (marked, DOMPurify), served by the API from node_modules/.
if [ ! -f node_modules/.installed ] || [ package-lock.json -nt node_modules/.installed ]; then
  if ! command -v npm >/dev/null; then
    echo "setup: npm not found: install Node.js 18+ (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
  echo "setup: installing the web page's libraries (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.installed
fi

# What only the tests need (`make test` passes --test): Debian's chromium for the browser tests and
# promtool (Debian's prometheus package) to validate monitoring/prometheus.yml.
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null; then
  echo "setup: installing Debian's chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ "${1:-}" = "--test" ] && ! command -v promtool >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "setup: installing promtool (apt package prometheus)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
    || echo "setup: could not install promtool; tests/test_monitoring.py will skip its check"
fi

# Builds the embedded FerretDB launcher unless MONGO_URI names a MongoDB; says how to get one otherwise.
.venv/bin/python -m embedded --prepare
