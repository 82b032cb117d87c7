#!/usr/bin/env python3
"""Train one fracture model per body part: fractured / normal, and where.

    python training_fracture.py --data ../shared/data
    python training_fracture.py --data /path/to/MURA-v1.1 --parts hand
    python training_fracture.py --data .cache/fracture-448.npz --frozen-through none   # scripts/make_cache.py

Each model scores every cell of a grid over the image and takes the image's probability from
its most suspicious cells; cells learn from fracture boxes where the data has them (FracAtlas,
the Roboflow export, or a YOLO .txt beside each image in plain folders).  On MURA the label is
"abnormal", which is broader than "fractured", and there are no boxes.
Writes fracture_<part>.keras, .tflite (what the app runs) and .json (threshold, uncertain band,
region threshold and, with --test-time-mirroring auto, mirroring, all chosen on the validation
split) and split.csv to --out (default: weights/).
"""
import argparse
from pathlib import Path

from fracture_detection import cli

HERE = Path(__file__).resolve().parent
IMAGE_SIZE = 448  # the resolution the radiographs have (373-512 px): fracture lines are fine detail


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_training_args(parser, default_out=HERE / "weights", image_size=IMAGE_SIZE)
    parser.add_argument("--feature-cache", type=Path, metavar="DIR",
                        help="keep the frozen backbone's features here and reuse them in later runs on the same "
                             "images (most of a CPU run's time)")
    parser.add_argument("--test-time-mirroring", choices=("off", "auto"), default="off",
                        help="auto: also score the mirror image and average, where that raises the validation AUC "
                             "(twice the time per image; off by default to keep a folder at >= 30 images/s)")
    args = parser.parse_args(argv)
    from fracture_detection.training.fracture import train_fracture
    train_fracture(args.data, args.layout, args.out, cli.config_from_args(args), tuple(args.parts),
                   args.feature_cache, mirroring=args.test_time_mirroring)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
