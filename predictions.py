#!/usr/bin/env python3
"""Analyse X-rays with the bundled models: body part, then fracture.

    python predictions.py PATH [PATH ...] [--json] [--report FILE.pdf] [--one-study] [--weights DIR]

PATH is an image (PNG, JPEG, BMP, TIFF, WebP, DICOM) or a folder, searched recursively.
--json prints one JSON object per image per line; --report writes one PDF for the whole
batch (a summary page, then a page per image).  Films are one study in the report only when
their folders say so (MURA's patient/study folders) or --one-study says the PATHs are the views
of one study; any other film is read on its own.  Exit status: 0 when every input was
analysed, 1 when any input could not be read (the others are still analysed), 2 for a
usage error.  Decision support, not a diagnosis.
"""
import argparse
import json
import sys
from pathlib import Path

from fracture_detection import cli
from fracture_detection.models.runtime import RUNTIMES

HERE = Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    parser.add_argument("--json", action="store_true", help="one JSON object per image per line")
    parser.add_argument("--report", type=Path, metavar="FILE.pdf",
                        help="also write a PDF report: a summary page, then one page per image")
    parser.add_argument("--one-study", action="store_true",
                        help="the PATHs are the views of one study (as opening several files together in the app)")
    parser.add_argument("--weights", type=Path, default=HERE / "weights", help="folder of trained models")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="auto: each model's LiteRT file where there is one (fast start), else Keras")
    args = parser.parse_args(argv)

    from fracture_detection.chain.predictor import Predictor, collect_inputs, describe
    files, problems = collect_inputs(args.paths)
    predictor = Predictor(args.weights, runtime=args.runtime)
    progress = None if args.json else cli.progress_printer()
    results = problems + predictor.predict(files, batch_size=args.batch_size, progress=progress)
    for r in results:
        print(json.dumps(r.to_json()) if args.json else describe(r), flush=True)
    if args.report:
        from fracture_detection.app.presentation import group_studies
        from fracture_detection.app.report import write_report
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


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
