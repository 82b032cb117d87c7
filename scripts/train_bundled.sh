#!/usr/bin/env bash
# Re-create the bundled weights (.tflite + .json), their evaluation and weights/MODEL_CARD.md from the
# shared data. The fracture models' Keras files (.keras) stay in weights/ (a site fine-tunes from them:
# training_fracture.py --init-from weights); the body-part model's is removed. KEEP_KERAS=all keeps it too,
# KEEP_KERAS=0 removes every .keras file.
#   ./scripts/train_bundled.sh [DATA]      (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
PY=${PYTHON:-.venv/bin/python}
# The frozen trunk's features of every body-part image are kept in .cache/ and reused by the
# leave-one-region-out evaluation below (it retrains the body-part model's top once per region).
TRUNK=.cache/body-part-trunk-160.npz
# Its loss weighs each target region and *other* alike (--balance regions, the default), so that humerus
# shafts, legs and hips are learnt as other rather than drowned by the seven view classes.
$PY training_parts.py    --data "$DATA" --out weights --quiet --trunk-cache "$TRUNK"
# The frozen backbone's features of the fracture images (448 px, with augmented copies) are kept in
# .cache/fracture-features and reused by the comparison below.
FEATS=.cache/fracture-features
# The fracture models, each the design that won on the untreated validation films (the card's "which
# evidence it learns"; weights/fracture_designs.json):
# - elbow and shoulder: one model learns from every region's films (leg, hip, forearm, humerus, wrist and
#   finger too), with fractured films that show a cast, splint or implant left out of the positives, saved
#   per part with that part's own cuts chosen on its validation films;
# - hand: a model of its own, trained on hand films only, appliance films left out of the positives too
#   (HAND_APPLIANCE_WEIGHT=1 keeps them: the previous design).
# Each run ends by fitting the cast/splint/implant detector into its models. Test-time mirroring is
# decided below, on the films each model's cuts are chosen on.
$PY training_fracture.py --data "$DATA" --out weights --quiet --feature-cache "$FEATS" --pool-regions \
    --appliance-weight 0 --time-limit 30 --parts elbow shoulder
# - hand: a model of its own, trained on FracAtlas's hand region, kept in .cache/hand-own, then shipped as
#   the mean of it and two every-region models (they read Roboflow's finger, wrist and forearm films, which the
#   hand's own model reads near chance): the one above and the same recipe with another seed (7), kept in
#   .cache/every-region-seed7 (the shipped metadata names it er7/, the folder it was trained in). Its cuts are
#   chosen on the hand region's validation films of both sources.
#   (Chosen on those films, each radiograph once: untreated AUC 0.800 with one every-region model, 0.838
#   with two, paired difference +0.039 [+0.014, +0.064]; the members share their frozen trunk, which runs once.)
mkdir -p .cache/hand-own .cache/every-region-seed7
cp weights/split.csv .cache/hand-own/ && cp weights/split.csv .cache/every-region-seed7/
$PY training_fracture.py --data "$DATA" --out .cache/hand-own --quiet --feature-cache "$FEATS" --parts hand \
    --appliance-weight "${HAND_APPLIANCE_WEIGHT:-0}"
$PY training_fracture.py --data "$DATA" --out .cache/every-region-seed7 --quiet --feature-cache "$FEATS" --pool-regions \
    --appliance-weight 0 --time-limit 30 --parts elbow shoulder --seed 7 --no-appliance-head
$PY training_fracture.py --data "$DATA" --out weights --quiet --parts hand \
    --ensemble-of .cache/hand-own:hand weights:elbow .cache/every-region-seed7:elbow
# Elbow and shoulder films are routed by the view the body-part model sees (FracAtlas's elbow views too):
# their cuts are chosen on their regions' validation films, every source, and test-time mirroring is kept
# where it ranks those radiographs better (it did for both: AUC 0.814 -> 0.831 elbow, 0.855 -> 0.882
# shoulder; a LiteRT model at 448 px takes about 16 ms, so the mirror image costs about that much more).
$PY training_fracture.py --data "$DATA" --out weights --quiet --parts elbow shoulder --cuts-only --by-region \
    --test-time-mirroring auto
# The designs compared on the untreated validation films (the card's "which evidence it learns"): COMPARE=1
# trains the per-part alternatives into .cache/designs/ (about an hour more on 2 cores) and compares them.
if [ "${COMPARE:-0}" = 1 ]; then
  for design in "per-part:" "per-part-no-appliance:--appliance-weight 0"; do
    name=${design%%:*}; mkdir -p ".cache/designs/$name"; cp weights/split.csv ".cache/designs/$name/"
    # shellcheck disable=SC2086
    $PY training_fracture.py --data "$DATA" --out ".cache/designs/$name" --quiet --feature-cache "$FEATS" ${design#*:}
  done
  $PY benchmarks/compare_designs.py --data "$DATA" \
      --design "(a) one model per part, every fractured film=.cache/designs/per-part" \
      --design "(c) one model per part, appliance films out of the positives=.cache/designs/per-part-no-appliance" \
      --design "(b)+(c) one model on every region, appliance films out of the positives=weights" --shipped 3
  $PY benchmarks/compare_fracture_models.py --data "$DATA" --part hand --feature-cache "$FEATS" \
      --backbones mobilenetv2 efficientnet_lite2
fi
$PY predictions_test.py --out evaluation --write-model-card --quiet --leave-one-region-out --loro-epochs 1 --trunk-cache "$TRUNK"
# The app runs the .tflite files (the installed package and the standalone build carry no .keras file:
# pyproject.toml's package data). weights/ keeps the fracture models' .keras files, about 10 MB each, for
# fine-tuning on a site's films, within its 100 MB budget; the body-part model's is not needed for that.
case "${KEEP_KERAS:-fracture}" in
  all|1) ;;
  fracture) rm -f weights/body_part.keras ;;
  *) rm -f weights/*.keras ;;
esac
du -sh weights
