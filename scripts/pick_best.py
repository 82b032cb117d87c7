#!/usr/bin/env python3
"""Pick, per part, the fracture model with the best VALIDATION AUC among several training runs.

    python scripts/pick_best.py weights-gpu-a weights-gpu-b --out best --summary summary.json

Copies the chosen .keras and .json into --out and writes a summary of every run (validation
figures, epochs, time and throughput). The test split plays no part in the choice.
"""
import argparse
import math
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fracture_detection.models import artifacts  # noqa: E402
from fracture_detection.io import files


def run_summary(run: Path, part: str) -> dict:
    """One run's figures for one part (``model`` None when it saved none)."""
    timing = (run / f"{part}.time").read_text().split() if (run / f"{part}.time").is_file() else []
    out = {"run": run.name, "part": part, "model": None,
           "seconds": int(timing[0]) if timing else None, "exit_status": int(timing[1]) if timing else None}
    model = next((m for m in artifacts.find_models(run) if m.part == part), None)
    if model is None:
        return out
    meta, hist = model.meta, model.meta["history"]
    counts = meta["data"]["counts"]
    seen = sum(counts.get(s, {}).get(part, {}).get(k, 0) for s in ("train", "val") for k in ("fractured", "normal"))
    epochs = len(hist["loss"])
    val_loss = [v if p == "fine_tune" else math.inf for v, p in zip(hist.get("val_loss", []), hist["phase"])]
    out.update(model=str(model.path), auc=meta["validation"]["auc"], threshold=meta["threshold"],
               sensitivity=meta["validation"].get("sensitivity"), specificity=meta["validation"].get("specificity"),
               learning_rate=meta["training"]["learning_rate"], epochs=epochs,
               best_epoch=1 + val_loss.index(min(val_loss)) if val_loss else None,
               time_limit_reached=hist.get("time_limit_reached"),
               images_per_second=round(seen * epochs / out["seconds"], 1) if out["seconds"] else None)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="weights folders written by training_fracture.py")
    parser.add_argument("--parts", nargs="+", default=["elbow", "hand", "shoulder"])
    parser.add_argument("--out", type=Path, required=True, help="folder for the chosen models")
    parser.add_argument("--summary", type=Path, help="JSON file for the summary")
    args = parser.parse_args(argv)
    rows = [run_summary(run, part) for part in args.parts for run in args.runs]
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = {}
    for part in args.parts:
        done = [r for r in rows if r["part"] == part and r["model"] and not math.isnan(r["auc"])]
        if not done:
            print(f"No {part} model with a validation AUC was saved.", file=sys.stderr)
            continue
        best = max(done, key=lambda r: r["auc"])
        model = Path(best["model"])
        for f in (model, model.with_suffix(".json")):
            shutil.copy2(f, args.out / f.name)
        chosen[part] = best["run"]
    for r in rows:
        figures = (f"AUC {r['auc']:.3f}, {r['epochs']} epochs (best {r['best_epoch']}), "
                   f"{r['images_per_second']} images/s" if r["model"] else "no model")
        mark = "*" if chosen.get(r["part"]) == r["run"] else " "
        print(f"{mark} {r['part']:9} {r['run']:20} {figures}; {r['seconds']} s, exit {r['exit_status']}")
    if args.summary:
        files.atomic_write_json(args.summary, {"chosen_by": "validation AUC", "chosen": chosen, "runs": rows})
    return 0 if len(chosen) == len(args.parts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
