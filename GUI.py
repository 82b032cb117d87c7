#!/usr/bin/env python3
"""The desktop app: open elbow, hand or shoulder X-rays and see the model's finding.

    python GUI.py [IMAGE ...]
    python GUI.py --install-desktop-entry      (or --uninstall-desktop-entry)

The same command as the installed `fracture-screen-gui` (fracture_detection/cli.py, gui_main):
see --help.  Decision support, not a diagnosis.
"""
from fracture_detection import cli


def main(argv=None):
    return cli.gui_main(argv)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
