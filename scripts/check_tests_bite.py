#!/usr/bin/env python3
"""Show that the fast tests bite: make one deliberate mistake at a time in a copy of the repository,
run the fast tier (pytest -m "not slow") on it, and report which tests caught it.

    python scripts/check_tests_bite.py            # every mistake (about a minute each on 2 cores)
    python scripts/check_tests_bite.py --only swap_fractured_normal ignore_dicom_window
    python scripts/check_tests_bite.py --first     # stop each run at the first failure (quicker)
    python scripts/check_tests_bite.py --list

Each mistake is a text replacement in the current code that must apply exactly once (so a change
to the code cannot silently turn a mistake into a no-op). The unchanged copy must pass first.
Prints a table mistake -> caught / NOT CAUGHT with the tests that failed; exits 1 when a mistake
goes uncaught or no longer applies.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name, file, text as it is, text with the mistake, what a clinician or researcher would get
MUTATIONS = [
    ("swap_fractured_normal", "fracture_detection/chain/decisions.py",
     '    if p >= high:\n        return "fractured"\n    if p < low:\n        return "normal"\n',
     '    if p >= high:\n        return "normal"\n    if p < low:\n        return "fractured"\n',
     "a fracture reported as normal and the reverse"),
    ("ignore_threshold", "fracture_detection/chain/predictor.py",
     "return decisions.fracture_finding(p, self.edges)",
     "return decisions.fracture_finding(p, (0.5, 0.5))",
     "every model decides at 0.5, not at its validated cuts"),
    ("old_band_without_threshold", "fracture_detection/chain/decisions.py",
     "return min(reported(band[0]), threshold), max(reported(band[1]), threshold)",
     "return reported(band[0]), reported(band[1])",
     "weights made before the cuts decided with a band that no longer contains their threshold"),
    ("no_fracture_cut_counts_treated_films", "fracture_detection/chain/decisions.py",
     'basis = "untreated" if known.any() else "all fractured"',
     'known = fractured; basis = "untreated" if known.any() else "all fractured"',
     "the 'No fracture found' cut chosen on every fracture: films in a cast hide missed untreated fractures"),
    ("fracture_cut_splits_ties", "fracture_detection/chain/decisions.py",
     "last = np.r_[ps[1:] != ps[:-1], True]",
     "last = np.ones(len(ps), bool)",
     "a 'Likely FRACTURE' cut between films of the same probability: the promise no longer holds for all"),
    ("finding_on_unrounded_p", "fracture_detection/chain/decisions.py",
     "    p = reported(p)\n    low, high = ",
     "    low, high = ",
     "a finding that contradicts the probability printed beside it"),
    ("ignore_dicom_window", "fracture_detection/io/images.py",
     'voi = "WindowCenter" in ds or "VOILUTSequence" in ds',
     "voi = False",
     "DICOM windows and VOI LUTs ignored"),
    ("ignore_dicom_rescale", "fracture_detection/io/images.py",
     "values = apply_modality_lut(values, ds)",
     "values = values",
     "DICOM rescale slope/intercept ignored"),
    ("negative_slope_window_inverted", "fracture_detection/io/images.py",
     "return -shown if flip else shown",
     "return shown",
     "a windowed film with a negative slope read inverted (pydicom's behaviour)"),
    ("monochrome1_not_inverted", "fracture_detection/io/images.py",
     '255 - grey if photometric == "MONOCHROME1" else grey',
     "grey",
     "MONOCHROME1 films read inverted"),
    ("model_input_0_1", "fracture_detection/io/images.py",
     "return np.repeat(out[:, :, None], 3, axis=2) if out.ndim == 2 else out",
     "return (np.repeat(out[:, :, None], 3, axis=2) if out.ndim == 2 else out) / 255.0",
     "models fed pixels in [0, 1] instead of 0-255"),
    ("fracture_model_gets_body_part_size", "fracture_detection/chain/predictor.py",
     "batch = np.stack([p.inputs[fm.size] for p in prepared[start:start + FRACTURE_BATCH]])",
     "batch = np.stack([p.inputs[self.body_info.image_size] for p in prepared[start:start + FRACTURE_BATCH]])",
     "the fracture models run on the body-part model's input size"),
    ("colour_rule_off", "fracture_detection/chain/predictor.py",
     "if item.colourfulness > COLOUR_LIMIT:",
     "if False:",
     "colour photos passed to the body-part model"),
    ("skip_body_part_floor", "fracture_detection/chain/decisions.py",
     "elif floor is not None and best_p[i] < floor:",
     "elif False:",
     "an image of doubtful part analysed anyway"),
    ("target_cut_inclusive", "fracture_detection/chain/decisions.py",
     "if total[i] < rule.target_cut:",
     "if total[i] <= rule.target_cut:",
     "an image exactly on the target cut turned away"),
    ("part_confidence_not_among_parts", "fracture_detection/chain/decisions.py",
     "    if rule.among_parts:\n        best_p = np.round(",
     "    if False:\n        best_p = np.round(",
     "the part's own probability shown and floored instead of its share of the three parts"),
    ("gate_overlap_counted_twice", "fracture_detection/training/gate.py",
     "if (already | (total < c)).sum() > limit:",
     "if already.sum() + (total < c).sum() > limit:",
     "images the other checks reject counted twice against the target cut's budget"),
    ("skip_ood_score", "fracture_detection/chain/decisions.py",
     "if rule.ood_threshold is not None and scores is not None and not scores[i] <= rule.ood_threshold:",
     "if False:",
     "an unfamiliar image analysed anyway"),
    ("reject_threshold_exclusive", "fracture_detection/chain/decisions.py",
     "probs[i, reject] >= rule.reject_threshold",
     "probs[i, reject] > rule.reject_threshold",
     "an image exactly at the rejection threshold analysed"),
    ("amber_rank_on_a_decided_finding", "fracture_detection/chain/amber.py",
     '    if pred.finding != "uncertain" or getattr(pred, "amber_share", None) is None or not pred.amber_n:',
     '    if getattr(pred, "amber_share", None) is None or not pred.amber_n:',
     "a rank inside uncertain printed beside a fractured or normal finding"),
    ("amber_bin_edge_below", "fracture_detection/chain/amber.py",
     '        if reported(b["from"]) <= p < reported(b["to"]):',
     '        if reported(b["from"]) < p <= reported(b["to"]):',
     "a film on a bin's edge given the share of the bin below it"),
    ("appliance_cut_highest_not_lowest", "fracture_detection/training/appliance.py",
     "    i = ok[-1]\n",
     "    i = ok[0]\n",
     "the cast/implant line said from the top film only: precise, but it finds almost nothing"),
    ("appliance_said_without_a_cut", "fracture_detection/chain/predictor.py",
     "        return cut is not None and p >= cut",
     "        return p >= (cut if cut is not None else 0.5)",
     "a cast/implant line said although no cut reached 90 % precision"),
    ("study_uncertain_beats_fractured", "fracture_detection/chain/decisions.py",
     'for verdict in ("fractured", "uncertain", "normal"):',
     'for verdict in ("uncertain", "fractured", "normal"):',
     "a study with a fractured view reported uncertain"),
    ("mura_rule_at_or_above", "fracture_detection/chain/decisions.py",
     "out = m > MURA_RULE_CUT",
     "out = m >= MURA_RULE_CUT",
     "a study mean of exactly 0.5 called abnormal"),
    ("evaluation_mura_rule_p_ge_half", "fracture_detection/evaluation/evaluate.py",
     "predicted=decisions.mura_rule(ps)",
     "predicted=ps >= 0.5",
     "the evaluation's MURA figures use another rule than the app"),
    ("youden_maximises_sensitivity", "fracture_detection/evaluation/metrics.py",
     "best = int(np.argmax(tpr - fpr))",
     "best = int(np.argmax(tpr))",
     "a threshold that calls everything fractured"),
    ("fracture_cut_highest_instead_of_lowest", "fracture_detection/chain/decisions.py",
     "high = float(ps[ok[-1]])  # the lowest qualifying cut",
     "high = float(ps[ok[0]])  # the lowest qualifying cut",
     "fewer films called 'Likely FRACTURE' than the promise allows: more left uncertain than needed"),
    ("text_shows_1_00", "fracture_detection/chain/decisions.py",
     "    if v >= top:\n",
     "    if v > 1:\n",
     "'1.00' printed for a probability below 1"),
    ("split_by_study", "fracture_detection/io/data.py",
     "groups[r.group].append(r)",
     "groups[r.study].append(r)",
     "one patient's studies on both sides of the split"),
    ("split_tie_by_file_order", "fracture_detection/io/data.py",
     "return min(counts, key=lambda k: (-counts[k], str(k)))",
     "return counts.most_common(1)[0][0]",
     "a new split that depends on the order the file system lists the films in"),
    ("patient_folders_ignored", "fracture_detection/io/data.py",
     'path=str(img), part=part_dir.name.lower(), label=label, group=patient or f"file:{rel}",',
     'path=str(img), part=part_dir.name.lower(), label=label, group=f"file:{rel}",',
     "one patient's films on both sides of the split"),
    ("saved_split_not_reused", "fracture_detection/training/trainer.py",
     "for saved in (path, reuse):",
     "for saved in (path,):",
     "a model trained into a new folder learns from the bundle's test films"),
    ("patient_name_in_message", "fracture_detection/io/images.py",
     'raise ImageError("The DICOM file holds no image.")',
     'raise ImageError(f"The DICOM file of {ds.PatientName} holds no image.")',
     "a patient's name in an error message"),
]


def copy_repository(dest: Path) -> None:
    """Tracked and untracked (not ignored) files, with the virtual environment linked."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    if (ROOT / ".venv").exists():
        (dest / ".venv").symlink_to((ROOT / ".venv").resolve())


def fast_tier(repo: Path, first: bool = False) -> tuple[int, list[str], float]:
    """Run pytest -m 'not slow' in ``repo`` (``first``: stop at the first failure): exit status,
    the failed tests, seconds."""
    python = repo / ".venv" / "bin" / "python"
    cmd = [str(python if python.exists() else sys.executable), "-m", "pytest", "-q", "-m", "not slow",
           "-p", "no:cacheprovider", "-rfE", "--no-header", "tests"] + (["-x"] if first else [])
    start = time.time()
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    failed = sorted({re.sub(r"\[.*", "", m.split(" - ")[0]) for m in
                     re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.M)})
    if proc.returncode not in (0, 1):
        failed.append(f"(pytest exit {proc.returncode}: {proc.stdout.strip().splitlines()[-1:]})")
    return proc.returncode, failed, time.time() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these mistakes")
    ap.add_argument("--list", action="store_true", help="list the mistakes and exit")
    ap.add_argument("--skip-baseline", action="store_true", help="do not first check that the unchanged copy passes")
    ap.add_argument("--first", action="store_true", help="stop each run at the first failing test")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m[0] in args.only]
    if args.list or not chosen:
        for name, file, *_, why in MUTATIONS:
            print(f"{name:36} {file:34} {why}")
        return 0 if args.list else 2
    bad = 0
    with tempfile.TemporaryDirectory(prefix="bite-") as tmp:
        repo = Path(tmp) / "repo"
        copy_repository(repo)
        for name, file, old, new, _ in chosen:
            count = (repo / file).read_text().count(old)
            if count != 1:
                print(f"{name}: the text to change occurs {count} times in {file}; update MUTATIONS", file=sys.stderr)
                return 1
        if not args.skip_baseline:
            code, failed, secs = fast_tier(repo)
            print(f"unchanged copy: {'passes' if code == 0 else 'FAILS'} ({secs:.0f} s){'' if code == 0 else ': '}"
                  + ", ".join(failed), flush=True)
            if code != 0:
                return 1
        print("\n| mistake | what it would do | fast tier | tests that failed |\n|---|---|---|---|", flush=True)
        for name, file, old, new, why in chosen:
            path = repo / file
            original = path.read_text()
            path.write_text(original.replace(old, new))
            try:
                code, failed, secs = fast_tier(repo, args.first)
            finally:
                path.write_text(original)
            caught = code != 0
            bad += not caught
            shown = ", ".join(f.split("::")[-1] for f in failed[:4]) + (f" (+{len(failed) - 4} more)" if len(failed) > 4
                                                                      else "")
            print(f"| {name} | {why} | {'failed' if caught else '**passed: NOT CAUGHT**'} ({len(failed)} tests, "
                  f"{secs:.0f} s) | {shown} |", flush=True)
    print(f"\n{len(chosen) - bad} of {len(chosen)} mistakes caught by the fast tier"
          + (" (each run stopped at its first failure)." if args.first else "."))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
