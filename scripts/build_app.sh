#!/usr/bin/env bash
# The standalone app: a one-folder PyInstaller build at dist/fracture-screening/, which runs on a
# machine without Python (same OS and architecture as the build machine).
#   ./scripts/build_app.sh
#   dist/fracture-screening/fracture-screening [IMAGE ...]          opens the app
#   dist/fracture-screening/fracture-screening FILE --json          analyses without a display
# It installs PyInstaller and the app's runtime packages (pyproject.toml: no TensorFlow) into a build
# environment of its own, .build-venv (set BUILD_VENV to put it elsewhere), never into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${BUILD_VENV:-.build-venv}
if ! "$PYTHON" -c 'import sys, tkinter; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "Python 3.11+ with tkinter is needed (Debian/Ubuntu: apt-get install python3 python3-venv python3-tk)." >&2
  exit 1
fi
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# the app as pip installs it (its bundled weights and icons as package data), then PyInstaller
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps .
"$VENV/bin/python" -m pip install -q . pyinstaller==6.22.3
entry=$("$VENV/bin/python" -I -c 'import fracture_detection.__main__ as m; print(m.__file__)')
package=$(dirname "$entry")
"$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN --onedir --name fracture-screening \
  --distpath dist --workpath build/pyinstaller --specpath build/pyinstaller \
  --collect-data fracture_detection --add-data "$package/weights:fracture_detection/weights" \
  --collect-data customtkinter --collect-all tkinterdnd2 --collect-submodules pydicom --collect-data fpdf \
  --hidden-import PIL._tkinter_finder \
  --exclude-module tensorflow --exclude-module keras --exclude-module sklearn --exclude-module torch \
  --exclude-module pytest --exclude-module IPython \
  "$entry"
echo "Built dist/fracture-screening/fracture-screening ($(du -sh dist/fracture-screening | cut -f1)) in $(( $(date +%s) - start )) s"
