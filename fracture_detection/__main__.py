"""python -m fracture_detection [IMAGE ...]: the app; with --json or --report, the command line."""
import sys

from fracture_detection.cli import app_main

if __name__ == "__main__":
    sys.exit(app_main())
