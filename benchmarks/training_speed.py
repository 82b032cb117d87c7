#!/usr/bin/env python3
"""How long full fine-tuning of a fracture model (every layer trained, augmentation on the fly) would
take on this machine, against the trunk features the bundle's frozen-trunk recipe computes once,
printed with how it was measured.

    python benchmarks/training_speed.py [--size 448] [--batch 16] [--steps 4] [--films 4000]

Builds the fracture model (MobileNetV2 with its offline ImageNet weights, the locator head) at
``--size`` px and times ``--steps`` training steps on random pixels (the time does not depend on
them) after one warm-up step, with the whole network trainable, and the same number of inference
calls (what computing the frozen trunk's features once per film and augmented copy costs; the
layers above it then train on those features in minutes).  ``--films`` scales a step's time to an
epoch (the every-region model trains on about 4,000 films a pass).
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def per_image(fn, batch: int, steps: int) -> float:
    """Seconds per image of ``fn()`` (one batch), after one warm-up call."""
    fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / (steps * batch)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--films", type=int, default=4000, help="films per epoch, to scale to an epoch's time")
    args = parser.parse_args(argv)
    import keras
    from fracture_detection.models.locator import build_locator

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    y = rng.integers(0, 2, (args.batch, 1)).astype("float32")
    locator = build_locator("mobilenetv2", "offline", args.size)
    model = keras.Model(locator.input, locator.outputs[0])   # the probability; every layer trainable
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.BinaryCrossentropy())

    full = per_image(lambda: model.train_on_batch(x, y), args.batch, args.steps)
    infer = per_image(lambda: model.predict_on_batch(x), args.batch, args.steps)
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads; keras "
          f"{keras.__version__} ({keras.backend.backend()}); MobileNetV2 fracture model at {args.size} px, "
          f"batch {args.batch}, {args.steps} timed steps after one warm-up, random pixels.")
    print(f"  full fine-tuning (every layer trained): {full * 1000:.0f} ms per image; an epoch of {args.films} "
          f"films {full * args.films / 60:.0f} min")
    print(f"  the frozen trunk's features (inference, once per film and copy): {infer * 1000:.0f} ms per image; "
          f"{args.films} films x 3 versions {infer * args.films * 3 / 60:.0f} min, once")


if __name__ == "__main__":
    main()
