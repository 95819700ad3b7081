#!/usr/bin/env bash
# Set up the project on a fresh machine: a virtualenv with the project and its test tools, and the
# embedded FerretDB launcher (when no MONGO_URI is given). Safe to run again: it only redoes what
# changed. llama-cpp-python compiles from source the first time (~5 min); pip caches the wheel.
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

# promtool (Debian's prometheus package) validates monitoring/prometheus.yml in the tests.
if ! command -v promtool >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "setup: installing promtool (apt package prometheus)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
    || echo "setup: could not install promtool; tests/test_monitoring.py will skip its check"
fi

# Builds the embedded FerretDB launcher unless MONGO_URI names a MongoDB; says how to get one otherwise.
.venv/bin/python -m embedded --prepare
