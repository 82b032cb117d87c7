#!/usr/bin/env python3
"""Compare backbones on one fracture task, on the same validation split as the bundled weights.

    python benchmarks/compare_backbones.py --data ../shared/data --part hand --image-size 128 --epochs 3

Trains the part's fracture model once per backbone with training_fracture.py (the split is
copied from weights/split.csv, so every run sees the same images) and writes
weights/backbone_comparison.json, which the model card quotes.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNS = (("mobilenetv2", "offline"), ("resnet50", "none"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--part", default="hand")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--weights", type=Path, default=ROOT / "weights", help="where split.csv is and the result goes")
    a = ap.parse_args()
    from fracture_detection.artifacts import atomic_write_json
    results = []
    for backbone, weights in RUNS:
        out = Path(tempfile.mkdtemp())
        shutil.copy(a.weights / "split.csv", out / "split.csv")
        t = time.time()
        subprocess.run([sys.executable, str(ROOT / "training_fracture.py"), "--data", str(a.data), "--parts", a.part,
                        "--backbone", backbone, "--weights", weights, "--image-size", str(a.image_size),
                        "--epochs", str(a.epochs), "--out", str(out), "--quiet"], check=True)
        meta = json.loads((out / f"fracture_{a.part}.json").read_text())
        size = (out / f"fracture_{a.part}.keras").stat().st_size
        results.append({"backbone": backbone, "pretrained": weights, "validation": meta["validation"],
                        "epochs_run": len(meta["history"]["loss"]), "train_seconds": round(time.time() - t),
                        "model_mb": round(size / 1e6, 1), "frozen_through": meta["training"]["frozen_through"]})
        shutil.rmtree(out, ignore_errors=True)
        print(json.dumps(results[-1]))
    atomic_write_json(a.weights / "backbone_comparison.json",
                      {"part": a.part, "image_size": a.image_size, "epochs": a.epochs, "results": results,
                       "command": " ".join(["python", "benchmarks/compare_backbones.py"] + sys.argv[1:])})


if __name__ == "__main__":
    main()
