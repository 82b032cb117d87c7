#!/usr/bin/env python3
"""Write the LiteRT file (.tflite) of every Keras model in a weights folder, and list it in
the model's metadata.  Training does this itself under TensorFlow; run this after training
with another Keras backend (e.g. KERAS_BACKEND=torch on a GPU), or on older weights.

    python scripts/export_litert.py [--weights weights] [--drop-keras]

--drop-keras removes each .keras file once its .tflite is written and checked (the bundled
weights keep only the fracture models' .keras files, for fine-tuning; the installed app has none).
"""
import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=ROOT / "weights")
    parser.add_argument("--drop-keras", action="store_true", help="delete each .keras file after its export")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from fracture_detection.models import artifacts
    from fracture_detection.io import files
    from fracture_detection.models.runtime import export_litert, mirrored
    models = [m for m in artifacts.find_models(args.weights) if m.path.is_file()]
    if not models:
        raise artifacts.WeightsError(f"No Keras models were found in {args.weights}.")
    for info in models:
        entry = export_litert(info.load(), info.task, info.path.with_suffix(".tflite"), mirrored(info.meta))
        if entry is None:
            raise artifacts.WeightsError("LiteRT files can only be written with KERAS_BACKEND=tensorflow.")
        files.atomic_write_json(info.path.with_suffix(".json"), dict(info.meta, litert=entry))
        print(f"{entry['file']}: largest difference to the Keras model {entry['max_difference_to_keras']:.1e}")
        if args.drop_keras:
            info.path.unlink()


if __name__ == "__main__":
    from fracture_detection import cli
    raise SystemExit(cli.run(main))
