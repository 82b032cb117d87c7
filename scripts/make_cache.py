#!/usr/bin/env python3
"""Cache the fracture models' training images in one compact file, to train where the data cannot go.

    python scripts/make_cache.py --data ../shared/data --weights weights --out .cache/fracture-224.npz
    python training_fracture.py --data .cache/fracture-224.npz --out weights-new --frozen-through none

Keeps the split saved in WEIGHTS/split.csv (never makes a new one, so the body-part model's
test images stay unseen) and only the images training_fracture.py would use, letterboxed to
--image-size and stored as JPEG. See fracture_detection/training/cache.py.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fracture_detection import cli  # noqa: E402


def main(argv=None):
    from fracture_detection.io.data import LAYOUTS, TARGET_PARTS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the dataset folder the split was made on")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto")
    parser.add_argument("--weights", type=Path, required=True, help="folder whose split.csv is kept")
    parser.add_argument("--image-size", type=int, default=448, help="the fracture models' input size")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (1-95)")
    parser.add_argument("--parts", nargs="+", default=list(TARGET_PARTS))
    parser.add_argument("--out", type=Path, required=True, help="the cache file to write (.npz)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from fracture_detection.training.cache import make_cache, read_cache
    from fracture_detection.io.data import SPLIT_FILE
    make_cache(args.data, args.weights / SPLIT_FILE, args.out, args.image_size, args.layout, tuple(args.parts),
               args.quality, verbose=0 if args.quiet else 1)
    records = read_cache(args.out, args.image_size).records
    print(f"Wrote {args.out}: {len(records)} images, {args.out.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
