#!/usr/bin/env bash
# Install what the tests need (Python packages, and Xvfb for the GUI tests) and run them.
#   ./run_tests.sh            the whole suite (what CI runs)
#   ./run_tests.sh --fast     every decision and contract test, no model training (under a minute)
# Further arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
select=()
if [ "${1:-}" = "--fast" ]; then
  shift
  select=(-m "not slow")
fi
if ! command -v Xvfb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xdotool x11-utils >/dev/null
  else
    echo "Xvfb is not installed: the GUI tests will fail (apt-get install xvfb xdotool)." >&2
  fi
fi
./setup.sh --dev
# --durations: the slowest tests are named at the end, so the suite's 15-minute budget can be watched
exec .venv/bin/python -m pytest -q --durations=15 tests ${select[@]+"${select[@]}"} "$@"
