#!/usr/bin/env python3
"""Train one fracture model per body part (fractured / normal).

    python training_fracture.py --data ../shared/data
    python training_fracture.py --data /path/to/MURA-v1.1 --parts hand
    python training_fracture.py --data .cache/fracture-224.npz --frozen-through none   # scripts/make_cache.py

On MURA the label is "abnormal", which is broader than "fractured".
Writes fracture_<part>.keras, .tflite (what the app runs) and .json (with the decision threshold
and uncertain band chosen on the validation split) and split.csv to --out (default: weights/).
"""
import argparse
from pathlib import Path

from fracture_detection import cli

HERE = Path(__file__).resolve().parent
IMAGE_SIZE = 224  # fracture lines are fine detail


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_training_args(parser, default_out=HERE / "weights", image_size=IMAGE_SIZE)
    parser.add_argument("--pretrain-all-parts", action=argparse.BooleanOptionalAction, default=False,
                        help="first learn fractures on every labelled radiograph (all regions), then specialise "
                             "per part")
    args = parser.parse_args(argv)
    from fracture_detection.training import train_fracture
    train_fracture(args.data, args.layout, args.out, cli.config_from_args(args), tuple(args.parts),
                   pretrain_all_parts=args.pretrain_all_parts)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
