#!/usr/bin/env bash
# Install what the tests need (Python packages, and Xvfb for the GUI tests) and run them.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v Xvfb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xdotool x11-utils >/dev/null
  else
    echo "Xvfb is not installed: the GUI tests will fail (apt-get install xvfb xdotool)." >&2
  fi
fi
./setup.sh --dev
exec .venv/bin/python -m pytest -q tests "$@"
