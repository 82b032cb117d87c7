#!/usr/bin/env python3
"""Compare fracture-model designs and backbones on one part, on the bundled weights' validation split.

    python benchmarks/compare_fracture_models.py --data ../shared/data --part hand \
        --feature-cache .cache/features --previous weights-previous

Each run trains the part's fracture model with the project's own training code (the split is
weights/split.csv, so every run sees the same training and validation images) and reads its
validation figures: AUC, share left uncertain with decided findings >= 90 % right, the top
region's centre inside a true fracture box, region sensitivity at one false region per image;
plus training time, LiteRT file size and LiteRT time per image on this machine.
Runs: the dense fracture head learning from boxes and image labels (MobileNetV2, and each
--backbones entry), the same head from image labels only (--no-image-labels-only skips it), and,
with --previous, an earlier weights folder's model of that part (global pooling + class activation
map) scored on the same validation images.  Writes weights/fracture_comparison.json, which the
model card quotes.
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def litert_ms(path: Path, size: int, repeats: int = 20) -> float:
    import numpy as np

    from fracture_detection.models.runtime import LiteRTModel
    m = LiteRTModel(path)
    x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
    m(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        m(x)
        times.append(time.perf_counter() - t)
    return round(1000 * float(np.median(times)), 1)


def train_run(args, backbone: str, head, label: str) -> dict:
    from fracture_detection.training.fracture import train_fracture
    from fracture_detection.training.trainer import TrainConfig
    out = Path(tempfile.mkdtemp(prefix="fracture-compare-"))
    shutil.copy(args.weights / "split.csv", out / "split.csv")
    cfg = TrainConfig(backbone=backbone, weights="offline", image_size=args.image_size, epochs=args.epochs,
                      verbose=2, time_limit=None if args.time_limit is None else 60 * args.time_limit)
    t = time.time()
    train_fracture(args.data, "auto", out, cfg, (args.part,), args.feature_cache, head)
    seconds = time.time() - t
    meta = json.loads((out / f"fracture_{args.part}.json").read_text())
    tflite = out / f"fracture_{args.part}.tflite"
    row = {"run": label, "backbone": backbone, "image_size": args.image_size, "validation": meta["validation"],
           "uncertain_band": meta["uncertain_band"], "test_time_mirroring": meta["localisation"]["test_time_mirroring"],
           "epochs_run": len(meta["history"]["loss"]), "train_minutes": round(seconds / 60, 1),
           "litert_mb": round(tflite.stat().st_size / 1e6, 1), "litert_ms_per_image": litert_ms(tflite, args.image_size),
           "head": meta["training"]["head"], "region_extent": meta["localisation"]["region_extent"]}
    shutil.rmtree(out, ignore_errors=True)
    return row


def previous_run(args) -> dict:
    """An earlier model (global pooling + dense layer; its LiteRT file returns the probability and a
    class activation map) scored on the same validation images, with the new rules."""
    import numpy as np

    from fracture_detection.io import boxes, data
    from fracture_detection.chain import decisions
    from fracture_detection.evaluation import metrics
    from fracture_detection.io.boxes import REGION_EXTENT
    from fracture_detection.models.runtime import LiteRTModel
    meta = json.loads((args.previous / f"fracture_{args.part}.json").read_text())
    model = LiteRTModel(args.previous / f"fracture_{args.part}.tflite")
    records = data.read_dataset(args.data)
    data.apply_split(records, args.weights / "split.csv", args.data)
    recs = [r for r in data.fracture_records(records, args.part) if r.split == "val"]
    x, kept = data.load_pixels([r.path for r in recs], meta["image_size"], verbose=0)
    recs = [recs[i] for i in kept]
    probs, maps = [], []
    for i in range(0, len(x), 16):
        p, cam = model(x[i:i + 16].astype("float32"))
        probs += list(p[:, 0])
        maps += [np.maximum(c, 0) / max(float(c.max()), 1e-9) for c in cam]  # scaled per image, as it was shown
    y, probs = np.array([r.label for r in recs]), np.array(probs)
    located = [boxes.square_boxes(r.path) for r in recs]
    thr = decisions.reported(metrics.youden_threshold(y, probs))
    cuts = decisions.select_cuts(y, probs, [r.treated is False for r in recs])
    band = [cuts["no_fracture_below"], cuts["fracture_from"]]
    findings = [decisions.fracture_finding(p, band) for p in probs]
    decided = [(f, t) for f, t in zip(findings, y) if f in decisions.DECIDED]
    validation = metrics.binary_metrics(y, probs, thr)
    validation.update({"uncertain": float(np.mean([f == "uncertain" for f in findings])),
                       "accuracy_of_decided": float(np.mean([(f == "fractured") == bool(t) for f, t in decided])),
                       **metrics.localisation(metrics.localisation_items(maps, y, [b for b, _ in located],
                                                                         [s for _, s in located], 0.5))})
    return {"run": f"previous model ({args.previous.name}/)", "backbone": meta["backbone"],
            "region_extent": REGION_EXTENT, "image_size": meta["image_size"], "validation": validation, "uncertain_band": band,
            "note": "global average pooling + dense layer; map = class activation map scaled per image; "
                    "threshold and band re-chosen here with the new rule",
            "litert_mb": round((args.previous / f"fracture_{args.part}.tflite").stat().st_size / 1e6, 1),
            "litert_ms_per_image": litert_ms(args.previous / f"fracture_{args.part}.tflite", meta["image_size"])}


def merged(path: Path, part: str, image_size: int, epochs: int, new_rows: list[dict]) -> dict:
    """``path``'s comparison for the same part, size and epochs (else a new one) with the newly
    measured runs replacing their earlier measurement (same run and backbone) or added after the
    rest; other entries (the commands that measured the rows, notes) are kept."""
    key = lambda r: (r["run"], r["backbone"], r["image_size"])  # noqa: E731
    before = json.loads(path.read_text()) if path.is_file() else {}
    if (before.get("part"), before.get("image_size"), before.get("epochs")) != (part, image_size, epochs):
        before = {}
    fresh = {key(r) for r in new_rows}
    return dict(before, part=part, image_size=image_size, epochs=epochs,
                results=[r for r in before.get("results", []) if key(r) not in fresh] + new_rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--part", default="hand")
    ap.add_argument("--image-size", type=int, default=448)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--backbones", nargs="*", default=["mobilenetv2"], help="backbones for the dense head "
                    "learning from boxes and image labels (default: mobilenetv2), e.g. mobilenetv2 "
                    "efficientnet_lite2")
    ap.add_argument("--no-image-labels-only", action="store_true", help="skip the MobileNetV2 run without boxes")
    ap.add_argument("--previous", type=Path, help="an earlier weights folder to score on the same images")
    ap.add_argument("--feature-cache", type=Path, help="keep frozen-trunk features between runs")
    ap.add_argument("--time-limit", type=float, help="minutes of training per run (after its features)")
    ap.add_argument("--weights", type=Path, default=ROOT / "weights", help="where split.csv is and the result goes; "
                    "rows measured earlier for the same part, size and epochs are kept unless re-run")
    a = ap.parse_args()
    from fracture_detection.io.files import atomic_write_json
    from fracture_detection.training.fracture import HeadConfig
    out = a.weights / "fracture_comparison.json"
    command = " ".join(["python", "benchmarks/compare_fracture_models.py"] + sys.argv[1:])

    def keep(row):
        print(json.dumps(row), flush=True)
        comparison = merged(out, a.part, a.image_size, a.epochs, [row])
        comparison["commands"] = [c for c in comparison.get("commands", []) if c != command] + [command]
        atomic_write_json(out, comparison)

    if a.previous:
        keep(previous_run(a))
    runs = [(b, HeadConfig(), "dense head, boxes + image labels") for b in a.backbones]
    if not a.no_image_labels_only:
        # no cell loss and the label pooled over every cell: nothing learns from the boxes
        runs.append(("mobilenetv2", HeadConfig(cell_weight=0.0, box_pooling=False), "dense head, image labels only"))
    for backbone, head, label in runs:
        keep(train_run(a, backbone, head, label))


if __name__ == "__main__":
    main()
