#!/usr/bin/env python3
"""Analyse X-rays with the bundled models: body part, then fracture.

    python predictions.py PATH [PATH ...] [--json] [--report FILE.pdf] [--one-study] [--weights DIR]

The same command as the installed `fracture-screen` (fracture_detection/cli.py, predict_main):
see --help.  Decision support, not a diagnosis.
"""
from fracture_detection import cli


def main(argv=None):
    return cli.predict_main(argv)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
