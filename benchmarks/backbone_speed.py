#!/usr/bin/env python3
"""Size and LiteRT speed of each backbone as a fracture model, printed with how they were measured.

    python benchmarks/backbone_speed.py [--backbones mobilenetv2 efficientnet_lite0 efficientnet_lite2]
                                        [--sizes 224 384 448] [--batches 1 16] [--rounds 5]

For every backbone and input size: builds the fracture classifier with its offline ImageNet
weights (preprocessing inside, as training does), exports it with runtime.export_litert (the
check against the Keras model included) and times the .tflite file in the LiteRT interpreter
the app uses, with the app's thread count, round-robin over the models so that a shared
machine's changing load falls on all of them alike: milliseconds per image, fastest call and
median, on random 0-255 pixels (the time does not depend on them). Parameters are the whole classifier's; the file is float32, as shipped. Training
speed and accuracy are another script's (compare_backbones.py).
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timings(rows, batches, rounds, rng):
    """Seconds per call of every (model, batch size), taken round-robin: each round runs every model in
    turn (one warm-up call after the batch size changes, then three timed calls), so a change in
    machine load falls on all of them alike instead of on whichever ran at that moment."""
    from fracture_detection.models import runtime
    runners = [runtime.LiteRTModel(row[3]) for row in rows]
    inputs = {(row[1], b): rng.uniform(0, 255, (b, row[1], row[1], 3)).astype("float32") for row in rows for b in batches}
    out = {(i, b): [] for i in range(len(rows)) for b in batches}
    for _ in range(rounds):
        for i, (model, row) in enumerate(zip(runners, rows)):
            for b in batches:
                model(inputs[row[1], b])
                for _ in range(3):
                    start = time.perf_counter()
                    model(inputs[row[1], b])
                    out[i, b].append(time.perf_counter() - start)
    return out


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg()) + " (1, 5, 15 min)"


def main():
    from fracture_detection.models.backbones import BACKBONES
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", choices=BACKBONES,
                    default=["mobilenetv2", "efficientnet_lite0", "efficientnet_lite2"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[224, 384, 448])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--rounds", type=int, default=5, help="round-robin timing rounds (3 timed calls each)")
    a = ap.parse_args()
    from fracture_detection import cli
    cli.quiet_tensorflow()
    import keras
    from fracture_detection.models import runtime
    from fracture_detection.models.backbones import build_classifier

    rng = np.random.default_rng(0)
    threads = min(4, os.cpu_count() or 1)  # the app's LiteRT thread count (runtime.LiteRTModel)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # exporting first, timing after: the timings then come from one short stretch of time
        for backbone in a.backbones:
            for size in a.sizes:
                keras.backend.clear_session()
                model = build_classifier(backbone, "offline", size, 2)
                path = Path(tmp) / f"{backbone}_{size}.tflite"
                entry = runtime.export_litert(model, "fracture", path)
                rows.append((backbone, size, model.count_params(), path, entry["max_difference_to_keras"]))
                print(f"exported {backbone} at {size} px", file=sys.stderr, flush=True)
        before = _load()
        times = timings(rows, a.batches, a.rounds, rng)
        print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
              f"{before} before timing; Python {platform.python_version()}, Keras {keras.__version__} "
              f"({keras.backend.backend()}) export, LiteRT interpreter with {threads} threads; "
              f"{3 * a.rounds} timed calls per model and batch size, round-robin; ms per image: fastest call "
              "(what an idle machine gives) / median")
        print("| backbone | input | parameters | .tflite MB | LiteRT vs Keras | "
              + " | ".join(f"ms/image, batch {b}" for b in a.batches) + " |")
        print("|---|---|---|---|---|" + "---|" * len(a.batches))
        for i, (backbone, size, params, path, diff) in enumerate(rows):
            cells = [f"{1000 * min(times[i, b]) / b:.1f} / {1000 * statistics.median(times[i, b]) / b:.1f}"
                     for b in a.batches]
            print(f"| {backbone} | {size} | {params / 1e6:.2f} M | {path.stat().st_size / 1e6:.1f} | {diff:.1e} | "
                  + " | ".join(cells) + " |", flush=True)
    print(f"Load average after timing: {_load()}")


if __name__ == "__main__":
    main()
