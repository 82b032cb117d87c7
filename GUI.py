#!/usr/bin/env python3
"""The desktop app: open elbow, hand or shoulder X-rays and see the model's finding.

    python GUI.py [IMAGE ...]

Several images open together as one study. Decision support, not a diagnosis.
"""
import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path, help="X-rays to open (views of one study)")
    parser.add_argument("--weights", type=Path, default=HERE / "weights", help="folder of trained models")
    args = parser.parse_args(argv)
    from fracture_detection import cli
    from fracture_detection.app import window
    cli.quiet_tensorflow()
    window.main(args.weights, args.images)


if __name__ == "__main__":
    main()
