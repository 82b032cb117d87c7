#!/usr/bin/env python3
"""Compare fracture-model designs on the films where a reader needs help: the untreated fractures.

    python benchmarks/compare_designs.py --data ../shared/data \
        --design "per part (all fractured films)=weights" \
        --design "per part, appliance films out of the positives=/work/exp/c" \
        --design "every region, appliance films out=/work/exp/bc" --shipped 3

Each DIR is a weights folder made by training_fracture.py on the same split (its split.csv). Every
design's models run on each part's validation films at the cuts stored with them (chosen on those
films); the figures are untreated fractured films against every normal film of the part, per part
and with the parts pooled. Writes weights/fracture_designs.json, which the model card shows.
"""
import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from fracture_detection import cli  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the data the weights' split.csv refers to")
    parser.add_argument("--design", action="append", required=True, metavar="NAME=DIR",
                        help="a design's name and its weights folder (repeat)")
    parser.add_argument("--shipped", type=int, metavar="K", help="which --design (1-based) the bundle ships")
    parser.add_argument("--note", action="append", default=[], help="a line for the model card (repeat)")
    parser.add_argument("--out", type=Path, default=HERE / "weights" / "fracture_designs.json")
    args = parser.parse_args(argv)
    designs = []
    for k, spec in enumerate(args.design, 1):
        name, sep, folder = spec.partition("=")
        if not sep:
            parser.error(f"--design {spec!r}: expected NAME=DIR")
        designs.append((name, Path(folder), k == args.shipped))

    from fracture_detection.training.designs import compare_designs
    compare_designs(designs, args.data, args.out, args.note)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
