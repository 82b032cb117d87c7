#!/usr/bin/env python3
"""Compare a cross-validated design with the bundled models on the same validation films, paired.

    python benchmarks/compare_cross_validated.py --data ../shared/data --candidate /tmp/cv --baseline weights

The candidate folder comes from ``training_fracture.py --cv-folds K`` (its ``out_of_fold_<part>.csv``).
On the baseline's validation films, which no fold model of the candidate saw when it scored them, the
untreated fractures against the normal films: both AUCs and their difference, with a paired bootstrap
interval. Writes weights/fracture_cross_validation.json, which the model card shows.
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from fracture_detection import cli  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the data both folders' split.csv refer to")
    parser.add_argument("--candidate", type=Path, required=True, help="a cross-validated weights folder")
    parser.add_argument("--baseline", type=Path, default=HERE / "weights", help="default: the bundled weights")
    parser.add_argument("--out", type=Path, default=HERE / "weights" / "fracture_cross_validation.json")
    args = parser.parse_args(argv)
    from fracture_detection.training.designs import compare_out_of_fold
    compare_out_of_fold(args.candidate, args.baseline, args.data, args.out)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
