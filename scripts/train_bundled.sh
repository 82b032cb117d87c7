#!/usr/bin/env bash
# Re-create the bundled weights, their evaluation and weights/MODEL_CARD.md from the shared data.
#   ./scripts/train_bundled.sh [DATA]      (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
PY=${PYTHON:-.venv/bin/python}
$PY training_parts.py    --data "$DATA" --out weights --quiet
$PY training_fracture.py --data "$DATA" --out weights --quiet
$PY benchmarks/compare_backbones.py --data "$DATA" --part hand --image-size 128 --epochs 3
$PY predictions_test.py --out evaluation --write-model-card --quiet
