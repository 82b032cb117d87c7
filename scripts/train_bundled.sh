#!/usr/bin/env bash
# Re-create the bundled weights (.tflite + .json), their evaluation and weights/MODEL_CARD.md from the
# shared data, with the fracture models' Keras files (for fine-tuning from the bundle).
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
# The fracture models (issue 24): one per part, each learning from its own part's films with fractured films
# that show a cast, splint or implant left out of the positives, and each 5-fold cross-validated over train +
# validation (folds grouped by patient or near-duplicate cluster): the two cuts and the rank inside
# "uncertain" come from every film's out-of-fold score (out_of_fold_<part>.csv), and the model kept trains
# on train + validation for the fine-tuning epochs the folds chose. --time-limit 4 (minutes per fit) and
# --patience 1 keep the 18 fits within about two hours on 2 cores; the folds rarely kept more than two
# fine-tuning epochs. The run ends by fitting the cast/splint/implant detector into the three models; its
# cut is then chosen for >= 90 % precision on the validation films. No test-time mirroring: it doubles a
# model's time per image.
$PY training_fracture.py --data "$DATA" --out weights --quiet --feature-cache "$FEATS" --appliance-weight 0 \
    --parts elbow shoulder hand --cv-folds 5 --time-limit 4 --patience 1
$PY training_fracture.py --data "$DATA" --out weights --quiet --appliance-cut-only
# COMPARE=1 also re-creates the comparisons the model card quotes (about two hours more on 2 cores): the
# previous bundle's designs trained on the train split with cuts from the validation split (hand: its own
# films; elbow and shoulder: one model on every region), each against the cross-validated models on the same
# validation films, paired (weights/fracture_cross_validation.json), and the backbones on the hand.
if [ "${COMPARE:-0}" = 1 ]; then
  mkdir -p .cache/designs/previous; cp weights/split.csv .cache/designs/previous/
  $PY training_fracture.py --data "$DATA" --out .cache/designs/previous --quiet --feature-cache "$FEATS" \
      --pool-regions --appliance-weight 0 --time-limit 30 --parts elbow shoulder --no-appliance-head
  $PY training_fracture.py --data "$DATA" --out .cache/designs/previous --quiet --feature-cache "$FEATS" \
      --parts hand --appliance-weight 0 --no-appliance-head
  $PY benchmarks/compare_cross_validated.py --data "$DATA" --candidate weights --baseline .cache/designs/previous
  $PY benchmarks/compare_fracture_models.py --data "$DATA" --part hand --feature-cache "$FEATS" \
      --backbones mobilenetv2 efficientnet_lite2
fi
$PY predictions_test.py --out evaluation --write-model-card --quiet --leave-one-region-out --loro-epochs 1 --trunk-cache "$TRUNK"
# The app runs the .tflite files; the fracture models' .keras files stay in the bundle (about 10 MB each)
# so that a site can fine-tune from them (training_fracture.py --init-from weights); DROP_KERAS=1 leaves
# them out.
[ "${DROP_KERAS:-0}" = 1 ] && rm -f weights/*.keras
exit 0
