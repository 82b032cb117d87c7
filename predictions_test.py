#!/usr/bin/env python3
"""Evaluate the models on labelled X-rays and write metrics and plots.

    python predictions_test.py                          # the saved test split of weights/
    python predictions_test.py --data /path/MURA-v1.1   # MURA's official valid split
    python predictions_test.py --data DIR --layout folders --out results/
    python predictions_test.py --data DIR --layout folders --out results/ --recalibrate weights-site

Writes predictions.csv (one row per film), metrics.json, report.md and PNG plots (training curves,
ROC with its interval band and the two cuts, the three findings against the truth, calibration, kappa
against the MURA paper) to --out. The fracture figures count each radiograph once: the augmented
copies of one upload (predictions.csv's radiograph column) are averaged into one, and the bootstrap
resamples radiographs. With --data, films the weights' split.csv lists as training or validation films
are left out, with a warning (--all-films keeps them).

    python predictions_test.py --leave-one-region-out [--trunk-cache .cache/body-part-trunk.npz]

also retrains the body-part model's top layers and gate once per non-target region, without that
region, and reports how much of the left-out region is rejected (see
fracture_detection/training/loro.py; about an hour on a 2-core CPU, less with a trunk cache that
training_parts.py --trunk-cache wrote).
"""
import argparse
from pathlib import Path

from fracture_detection import cli

HERE = Path(__file__).resolve().parent


def main(argv=None):
    from fracture_detection.io.data import LAYOUTS
    from fracture_detection.training.loro import EPOCHS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="labelled dataset (default: the weights' saved test split)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto")
    parser.add_argument("--data-root", type=Path, metavar="DIR",
                        help="where the weights' training data is now, when it moved (their saved split's paths "
                             "are relative to it)")
    parser.add_argument("--all-films", action="store_true",
                        help="with --data: also evaluate films the weights' split.csv lists as training or "
                             "validation films (left out by default, with a warning)")
    parser.add_argument("--weights", type=Path, default=HERE / "weights", help="folder of trained models")
    parser.add_argument("--out", type=Path, default=HERE / "evaluation", help="output folder (default: evaluation/)")
    parser.add_argument("--recalibrate", type=Path, metavar="NEW_WEIGHTS",
                        help="with --data: write a copy of the models folder to this new folder with each part's two "
                             "cuts chosen again on these films, so that they keep the two promises here (a part with "
                             "too few labelled films keeps its cuts); use it with --weights NEW_WEIGHTS")
    parser.add_argument("--min-films", type=int, nargs=2, metavar=("FRACTURED", "NORMAL"), default=(20, 20),
                        help="labelled films a part needs before --recalibrate moves its cuts (default: 20 20)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95 %% intervals")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--write-model-card", action="store_true",
                        help="store the test figures in the weights' metadata and write weights/MODEL_CARD.md "
                             "(only with the saved test split)")
    parser.add_argument("--leave-one-region-out", action="store_true",
                        help="also retrain the body-part model's top layers and gate without each non-target "
                             "region in turn and report how much of it is rejected (needs the training data)")
    parser.add_argument("--loro-epochs", type=int, default=EPOCHS,
                        help="fine-tuning epochs per left-out region (default: %(default)s)")
    parser.add_argument("--trunk-cache", type=Path, metavar="FILE.npz",
                        help="the frozen trunk's features, shared with training_parts.py --trunk-cache")
    args = parser.parse_args(argv)
    if args.write_model_card and args.data is not None:
        parser.error("--write-model-card needs the saved test split (leave out --data)")
    if args.recalibrate is not None and args.data is None:
        parser.error("--recalibrate chooses cuts on a site's films: pass them with --data")
    if args.leave_one_region_out and args.data is not None:
        parser.error("--leave-one-region-out retrains on the weights' own data and split (leave out --data)")

    from fracture_detection.evaluation.evaluate import evaluate
    m = evaluate(args.weights, args.out, args.data, args.layout, args.batch_size, args.bootstrap,
                 verbose=not args.quiet, progress=None if args.quiet else cli.progress_printer("evaluated"),
                 saved_root=args.data_root, all_films=args.all_films, recalibrate_to=args.recalibrate,
                 min_films=tuple(args.min_films))
    if args.leave_one_region_out:
        from fracture_detection.training import loro
        from fracture_detection.evaluation import loro_report
        m["leave_one_region_out"] = loro.leave_one_region_out(
            args.weights, epochs=args.loro_epochs, trunk_cache=args.trunk_cache,
            verbose=not args.quiet)
        loro_report.write_results(args.out, m, args.weights)
    if args.write_model_card:
        from fracture_detection.evaluation.model_card import store_test_figures, write_model_card
        store_test_figures(args.weights, m)
        print(f"Wrote {write_model_card(args.weights, m)}")
    print((args.out / "report.md").read_text())
    print(f"Wrote {args.out / 'predictions.csv'}, {args.out / 'metrics.json'}, {args.out / 'report.md'} and plots."
          + (f" Recalibrated models: {args.recalibrate} (python predictions.py --weights {args.recalibrate} ...)."
             if args.recalibrate else ""))
    return 0 if m["images"] else 1


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
