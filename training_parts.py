#!/usr/bin/env python3
"""Train the body-part classifier: what a film shows, as a reader names it (finger, hand, wrist, forearm,
elbow, shoulder, or other), and so which fracture model reads it (its region: hand for a finger, hand,
wrist or forearm film; elbow; shoulder).

    python training_parts.py --data ../shared/data --out weights-new
    python training_parts.py --data /path/to/MURA-v1.1 --out weights-mura --backbone resnet50 --pretrained imagenet
    python training_parts.py --data ../shared/data --out weights-smoke --smoke     # the pipeline, in minutes

Writes body_part.keras, body_part.tflite (what the app runs), body_part.json and split.csv to --out
(required; the split is the bundle's weights/split.csv where --out has none: --split, --new-split).  The model returns the class probabilities, an out-of-distribution score and
P(cast or implant); the gate's cuts (the target regions' summed probability, the region floor, the score's
threshold) and the appliance threshold are chosen on the validation images and stored in body_part.json
(see fracture_detection/training/gate.py), as is which region each view goes to.  The views come from
views.csv and roboflow-bone-fracture/body_parts.csv at the data root (MURA: its study types).

    python training_parts.py --data ../shared/data --out weights --gate-only   # the gate's cuts again
"""
import argparse
from pathlib import Path

from fracture_detection import cli

HERE = Path(__file__).resolve().parent
IMAGE_SIZE = 160  # the body part is plain at low resolution; smaller is faster


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_training_args(parser, default_split=HERE / "weights" / "split.csv", image_size=IMAGE_SIZE)
    parser.add_argument("--synthetic-negatives", type=int, default=300,
                        help="generated non-radiographs (photos, documents) added to the 'other' class")
    parser.add_argument("--trunk-cache", type=Path, metavar="FILE.npz",
                        help="keep the frozen trunk's features of every image in this file and reuse them when "
                             "the images, split and trunk are the same (predictions_test.py "
                             "--leave-one-region-out reads the same file)")
    parser.add_argument("--classes", choices=("views", "regions"), default="views",
                        help="views: learn the views of the --parts regions (finger, hand, wrist, forearm, elbow, "
                             "shoulder) and route by region; regions: learn the regions themselves")
    parser.add_argument("--balance", choices=("regions", "views"), default="regions",
                        help="how the loss weighs the classes: regions (the default), each target region and "
                             "'other' alike, a region's views sharing its weight and other's films sharing "
                             "theirs by the square root of how many show each thing (humerus, leg, spine, ...); "
                             "views, each class alike (as the bundle before 2026-12-03: it refused a humerus "
                             "shaft half as often)")
    parser.add_argument("--gate-budget", choices=("region_source", "region", "pooled"),
                        help="where the gate's budget of target films turned away (1 %%) must hold: in each region "
                             "and each source's films of it (the default in training), in each region, or over all "
                             "of them; with --gate-only, default: as the model's metadata says")
    parser.add_argument("--gate-only", action="store_true",
                        help="train nothing: run the body-part model already in --out on its validation images "
                             "(the folder's split.csv) and choose the gate's cuts again")
    args = parser.parse_args(argv)
    cli.check_training_args(parser, args, IMAGE_SIZE)
    if args.smoke and args.synthetic_negatives == parser.get_default("synthetic_negatives"):
        args.synthetic_negatives = 6
    from fracture_detection.training.body_part import rechoose_gate, train_body_part
    if args.gate_only:
        rechoose_gate(args.out, args.data, verbose=0 if args.quiet else 1, budget_by=args.gate_budget)
        return
    train_body_part(args.data, args.layout, args.out, cli.config_from_args(args), tuple(args.parts),
                    synthetic=args.synthetic_negatives, trunk_cache=args.trunk_cache, views=args.classes == "views",
                    budget_by=args.gate_budget or "region_source", balance=args.balance)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
