"""The leave-one-region-out figures (run by :mod:`loro`) as they are kept and reported: the file beside
the weights, the sections of an evaluation report and of the model card."""
from __future__ import annotations

from pathlib import Path

from ..io import files
from .report_text import share_text


def loro_markdown(result: dict) -> list[str]:
    """The leave-one-region-out section of a report or model card."""
    folds = result["folds"]
    L = ["| left-out region | images | rejected (all) | rejected (test split) | why | let through as | findings "
         "given to those | elbow/hand/shoulder test images rejected | part accuracy on accepted |",
         "|---|---:|---:|---:|---|---|---|---:|---:|"]
    for region, f in folds.items():
        lo, tt = f["left_out"], f["targets_test"]
        L.append(f"| {region} | {lo['n']} | {share_text(lo['rejected'])} | {share_text(lo['rejected_test'])} (n = {lo['n_test']}) "
                 f"| {_counts(lo['reasons'])} | {_counts(lo['let_through_as'])} | "
                 f"{_counts(lo['findings_of_let_through'])} | {share_text(tt['rejected'])} | "
                 f"{share_text(tt['part_accuracy_on_accepted'])} |")
    return L


def methods_markdown(result: dict) -> list[str]:
    """The OOD method comparison over the folds (left-out images outside the test split)."""
    s = result["summary"]
    folds = result["folds"]
    names = sorted(s["methods_mean_rejected"], key=lambda m: -s["methods_mean_rejected"][m])
    L = ["| score | " + " | ".join(folds) + " | mean | mean AUROC |", "|---|" + "---:|" * (len(folds) + 2)]
    for m in names:
        L.append(f"| {m} | " + " | ".join(share_text(folds[r]["methods"][m]["rejected"]) for r in folds)
                 + f" | {share_text(s['methods_mean_rejected'][m])} | {s['methods_mean_auroc'][m]:.3f} |")
    return L


def _counts(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "–"


RESULT_FILE = "leave_one_region_out.json"  # beside the weights, read by the model card


def write_results(out_dir: Path, m: dict, weights_dir: Path) -> None:
    """Add the leave-one-region-out figures to an evaluation's metrics.json and report.md, and keep
    them beside the weights (:data:`RESULT_FILE`) for the model card."""
    result = m["leave_one_region_out"]
    out_dir = Path(out_dir)
    files.atomic_write_json(Path(weights_dir) / RESULT_FILE, files.without_nan(result))
    files.atomic_write_json(out_dir / "metrics.json", files.without_nan(m))
    report = (out_dir / "report.md").read_text() if (out_dir / "report.md").is_file() else ""
    files.atomic_write_text(out_dir / "report.md", report + "\n".join(markdown(result)) + "\n")


def retrained(result: dict) -> str:
    """What each fold retrained: the layers above the frozen trunk, or the whole backbone."""
    cut = result.get("frozen_through")
    return f"the layers above the frozen trunk (through `{cut}`)" if cut else "the whole backbone (nothing frozen)"


def markdown(result: dict) -> list[str]:
    """The whole leave-one-region-out section: what was retrained, the table, the method comparison."""
    s = result["summary"]
    cached = "; the frozen trunk's features were computed once for all folds" if result.get("frozen_through") else ""
    return ["", "## Leave one region out", "",
            f"Each non-target region in turn left out of training: {retrained(result)} and the output layer "
            f"retrained ({result['head_epochs']} epoch(s) on the "
            f"output layer, then up to {result['epochs']} with early stopping), the Mahalanobis statistics and "
            f"the gate's cuts (target cut, part floor, out-of-distribution threshold) chosen again (at most {result['budget']:.0%} of the validation "
            f"elbow, hand and shoulder images rejected){cached}. The left-out region is then never seen, so its "
            "rejection shows what happens to anatomy no model here was trained on. *Findings given to those* are the bundled fracture models' findings for "
            "the left-out images that were let through.", "",
            *loro_markdown(result), "",
            f"Mean share of a left-out region rejected: {share_text(s['mean_rejected'])} (radiographs only: "
            f"{share_text(s['left_out_radiographs_rejected'])}).", "",
            "Out-of-distribution scores compared, each alone at a threshold rejecting at most "
            f"{result.get('ood_share', result['budget'] / 2):.1%} of the fold's validation elbow, hand and shoulder images: share of the "
            "left-out region's images outside the test split rejected, and the AUROC between the two:", "",
            *methods_markdown(result)]
