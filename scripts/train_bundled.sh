#!/usr/bin/env bash
# Re-create the bundled weights (.tflite + .json), their evaluation and weights/MODEL_CARD.md from the
# shared data. The Keras files are written too and then removed; keep them with KEEP_KERAS=1.
#   ./scripts/train_bundled.sh [DATA]      (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
PY=${PYTHON:-.venv/bin/python}
# The frozen trunk's features of every body-part image are kept in .cache/ and reused by the
# leave-one-region-out evaluation below (it retrains the body-part model's top once per region).
TRUNK=.cache/body-part-trunk-160.npz
$PY training_parts.py    --data "$DATA" --out weights --quiet --trunk-cache "$TRUNK"
# The frozen backbone's features of the fracture images (448 px, with augmented copies) are kept in
# .cache/fracture-features and reused by the comparison below.
FEATS=.cache/fracture-features
# Test-time mirroring is kept where it raised the validation AUC and is worth twice the time: the
# shoulder model (0.788 -> 0.818); the hand model gained less (0.885 -> 0.891) and runs unmirrored.
$PY training_fracture.py --data "$DATA" --out weights --quiet --feature-cache "$FEATS" --parts elbow hand
$PY training_fracture.py --data "$DATA" --out weights --quiet --feature-cache "$FEATS" --parts shoulder \
    --test-time-mirroring auto
# The design and backbone comparison of the model card (about an hour more on 2 cores, the MobileNetV2
# features already cached above; measured run by run on 2026-11-27): COMPARE=1.
if [ "${COMPARE:-0}" = 1 ]; then
  $PY benchmarks/compare_fracture_models.py --data "$DATA" --part hand --feature-cache "$FEATS" \
      --backbones mobilenetv2 efficientnet_lite2
fi
$PY predictions_test.py --out evaluation --write-model-card --quiet --leave-one-region-out --loro-epochs 1 --trunk-cache "$TRUNK"
# The app runs the .tflite files; leaving the .keras files out keeps weights/ within its 60 MB budget.
[ "${KEEP_KERAS:-0}" = 1 ] || rm -f weights/*.keras
