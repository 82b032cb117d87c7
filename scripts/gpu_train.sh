#!/usr/bin/env bash
# Retrain the three fracture models, whole backbone fine-tuned, on a GPU machine that has PyTorch
# but no TensorFlow and no network, from a cache made by scripts/make_cache.py (the raw data stays
# behind). Run from anywhere in the repository:
#   scripts/gpu_train.sh CACHE OUT
# Wheels in .whl/ (keras and what it needs that the machine lacks) are installed into /tmp/site.
# Every variant x part trains in its own process, all at once on the one GPU, into weights-gpu-<variant>/
# (beside weights/, so the metadata's path to the data stays right when the files are copied into
# weights/); each model keeps its best epoch within TIME_LIMIT minutes. OUT gets, per part, the model
# of the variant with the best VALIDATION AUC (OUT/best/), summary.json and train.log.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${1:?usage: scripts/gpu_train.sh CACHE OUT}
OUT=${2:?usage: scripts/gpu_train.sh CACHE OUT}
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
VARIANTS=${VARIANTS:-"lr1e-4:1e-4 lr3e-5:3e-5 lr3e-4:3e-4"}   # name:learning-rate
PARTS=${PARTS:-"elbow hand shoulder"}
EPOCHS=${EPOCHS:-30} PATIENCE=${PATIENCE:-6} BATCH=${BATCH:-32} TIME_LIMIT=${TIME_LIMIT:-5.5}
EXTRA=${EXTRA:-}   # more training_fracture.py options (a CPU dry run: EXTRA="--epochs 1 --head-epochs 0")

if compgen -G "$WHEELS/*.whl" > /dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=torch PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
$PY -c 'import keras, torch; print("keras", keras.__version__, keras.backend.backend(), "| torch", torch.__version__,
    "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU", flush=True)'

start=$(date +%s)
runs=()
for v in $VARIANTS; do
  dir=weights-gpu-${v%%:*}
  mkdir -p "$dir"
  runs+=("$dir")
  for part in $PARTS; do
    ( t0=$(date +%s); rc=0
      # shellcheck disable=SC2086
      $PY training_fracture.py --data "$CACHE" --out "$dir" --parts "$part" --frozen-through none \
        --learning-rate "${v#*:}" --epochs "$EPOCHS" --patience "$PATIENCE" --batch-size "$BATCH" \
        --time-limit "$TIME_LIMIT" --quiet $EXTRA > "$dir/$part.log" 2>&1 || rc=$?
      echo "$(( $(date +%s) - t0 )) $rc" > "$dir/$part.time"
      echo "$dir $part: exit $rc after $(( $(date +%s) - t0 )) s" ) &
  done
done
wait
echo "All runs ended after $(( $(date +%s) - start )) s"
mkdir -p "$OUT"
for dir in "${runs[@]}"; do for part in $PARTS; do
  echo "===== $dir $part"; cat "$dir/$part.log"
done; done > "$OUT/train.log"
$PY scripts/pick_best.py "${runs[@]}" --parts $PARTS --out "$OUT/best" --summary "$OUT/summary.json"
