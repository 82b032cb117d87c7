#!/usr/bin/env python3
"""Size and LiteRT speed of each backbone as a fracture model, printed with how they were measured.

    python benchmarks/backbone_speed.py [--backbones mobilenetv2 efficientnet_lite0 efficientnet_lite2]
                                        [--sizes 224 384 448] [--batches 1 16] [--seconds 3]

For every backbone and input size: builds the fracture classifier with its offline ImageNet
weights (preprocessing inside, as training does), exports it with runtime.export_litert (the
check against the Keras model included) and times the .tflite file in the LiteRT interpreter
the app uses, with the app's thread count: median milliseconds per image over repeated runs
of each batch size after three warm-up runs, on random 0-255 pixels (the time does not depend
on them). Parameters are the whole classifier's; the file is float32, as shipped. Training
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


def per_image_ms(model, batch: np.ndarray, seconds: float) -> float:
    for _ in range(3):
        model(batch)
    times = []
    end = time.perf_counter() + seconds
    while len(times) < 3 or time.perf_counter() < end:
        start = time.perf_counter()
        model(batch)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / len(batch)


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg()) + " (1, 5, 15 min)"


def main():
    from fracture_detection.models import BACKBONES
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", choices=BACKBONES,
                    default=["mobilenetv2", "efficientnet_lite0", "efficientnet_lite2"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[224, 384, 448])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per batch size, after warm-up")
    a = ap.parse_args()
    from fracture_detection import cli
    cli.quiet_tensorflow()
    import keras
    from fracture_detection import runtime
    from fracture_detection.models import build_classifier

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
        print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
              f"{_load()} before timing; Python {platform.python_version()}, Keras {keras.__version__} "
              f"({keras.backend.backend()}) export, LiteRT interpreter with {threads} threads, "
              f"{a.seconds:g} s per batch size after 3 warm-up runs")
        print("| backbone | input | parameters | .tflite MB | LiteRT vs Keras | "
              + " | ".join(f"ms/image, batch {b}" for b in a.batches) + " |")
        print("|---|---|---|---|---|" + "---|" * len(a.batches))
        for backbone, size, params, path, diff in rows:
            lite = runtime.LiteRTModel(path)
            times = [per_image_ms(lite, rng.uniform(0, 255, (b, size, size, 3)).astype("float32"), a.seconds)
                     for b in a.batches]
            print(f"| {backbone} | {size} | {params / 1e6:.2f} M | {path.stat().st_size / 1e6:.1f} | {diff:.1e} | "
                  + " | ".join(f"{t:.1f}" for t in times) + " |", flush=True)
    print(f"Load average after timing: {_load()}")


if __name__ == "__main__":
    main()
