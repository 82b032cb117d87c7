#!/usr/bin/env python3
"""Train one fracture model per body part: fractured / normal, and where.

    python training_fracture.py --data ../shared/data --out weights-new
    python training_fracture.py --data /path/to/MURA-v1.1 --out weights-mura --parts hand
    python training_fracture.py --data .cache/fracture-448.npz --out weights-gpu --frozen-through none
    python training_fracture.py --data ../shared/data --out weights --cuts-only   # new cuts for --out's models
    python training_fracture.py --data ../shared/data --out weights-smoke --smoke  # the pipeline, in minutes
    python training_fracture.py --data SITE --layout folders --init-from weights --out weights-site  # from the bundle
    python training_fracture.py --data ../shared/data --out weights --amber-only   # only the rank inside "uncertain"
    python training_fracture.py --data ../shared/data --out weights --appliance-cut-only   # the cast/implant cut
    python training_fracture.py --data ../shared/data --out weights --parts hand --ensemble-of w:hand w:elbow

Each model scores every cell of a grid over the image and takes the image's probability from
its most suspicious cells; cells learn from fracture boxes where the data has them (FracAtlas,
the Roboflow export, or a YOLO .txt beside each image in plain folders).  On MURA the label is
"abnormal", which is broader than "fractured", and there are no boxes.
Writes fracture_<part>.keras, .tflite (what the app runs) and .json (the two cuts, the region threshold
and, with --test-time-mirroring auto, mirroring, all chosen on the validation split) and split.csv to
--out (required). The split is the bundle's weights/split.csv where --out has none (--split, --new-split). The cuts keep two promises on the validation films: "No fracture found" only
below a cut under which at most 5 % of the untreated fractures fall (no cast, splint or implant in view,
from the data's appliances.csv; every fracture where there is none, e.g. MURA), "Likely FRACTURE" only
from a cut above which at least 90 % of the films are fractured.
"""
import argparse
from pathlib import Path

from fracture_detection import cli

HERE = Path(__file__).resolve().parent
IMAGE_SIZE = 448  # the resolution the radiographs have (373-512 px): fracture lines are fine detail


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_training_args(parser, default_split=HERE / "weights" / "split.csv", image_size=IMAGE_SIZE)
    parser.add_argument("--feature-cache", type=Path, metavar="DIR",
                        help="keep the frozen backbone's features here and reuse them in later runs on the same "
                             "images (most of a CPU run's time)")
    parser.add_argument("--test-time-mirroring", choices=("off", "auto"),
                        help="auto: also score the mirror image and average, where that raises the validation AUC "
                             "(twice the time per image; off by default); with --cuts-only, decide it again for the "
                             "saved models on the films their cuts are chosen on (default there: keep each model's)")
    parser.add_argument("--pool-regions", action="store_true",
                        help="one model learns from every region's fractured and normal films (e.g. leg, hip, "
                             "forearm, wrist besides the target parts), saved once per part with that part's cuts")
    parser.add_argument("--appliance-weight", type=float, metavar="W",
                        help="weight of a fractured film with a cast, splint or implant in view (from the data's "
                             "appliances.csv): 0 leaves them out of the positives, so the appliance is not learnt "
                             "as the evidence of a fracture (default 1; with --init-from, the starting model's)")
    parser.add_argument("--cv-folds", type=int, default=0, metavar="K",
                        help="K-fold cross-validation over train + validation (K >= 2, grouped by patient or image "
                             "cluster): the cuts come from every film's out-of-fold score (written to "
                             "out_of_fold_<part>.csv) and the model saved trains on train + validation for the "
                             "epochs the folds chose (default: no cross-validation, cuts from validation)")
    parser.add_argument("--appliance-head-only", action="store_true",
                        help="train no fracture model: fit the cast/splint/implant detector on the films of --out's "
                             "split (labels by eye: the data's appliances.csv) and save the Keras models in --out "
                             "again with it (training adds it by itself where the data has those labels)")
    parser.add_argument("--cuts-only", action="store_true",
                        help="train nothing: run the fracture models already in --out on their validation films "
                             "(the folder's split.csv) and store new cuts, validation figures and the ranking "
                             "inside 'uncertain' (amber)")
    parser.add_argument("--by-region", action="store_true",
                        help="with --cuts-only: choose them on the validation films of each part's whole region "
                             "(a film's view: Roboflow's finger, wrist and forearm films are the hand region's), "
                             "from every source, rather than on the films the dataset named by that part")
    parser.add_argument("--ensemble-of", nargs="+", metavar="FOLDER:PART",
                        help="train nothing: save --parts' one part in --out as the mean of these Keras fracture "
                             "models (e.g. weights:hand weights:elbow; the first one's cast/implant detector kept), "
                             "its cuts chosen as with --cuts-only --by-region")
    parser.add_argument("--amber-only", action="store_true",
                        help="train nothing: store only the ranking inside 'uncertain' (the fractured share of the "
                             "validation films in each part of the uncertain range) at the models' present cuts")
    parser.add_argument("--appliance-cut-only", action="store_true",
                        help="train nothing: choose the cast/implant detector's cut again on the validation films "
                             "(the lowest with >= 90 %% precision; none: the line is never said)")
    parser.add_argument("--init-from", metavar="WEIGHTS",
                        help="fine-tune: start each part's fracture model from this models folder's Keras model "
                             "(.keras; 'bundle': the bundled models, a clone's weights/; backbone, image size, "
                             "frozen trunk and head come from it), reuse its split.csv where it lists the films, "
                             "choose the cuts and amber bins again on the site's validation films, carry its "
                             "cast/implant detector over, copy its other models into --out, and report before and "
                             "after on the held-out films (fine_tune.json, fine_tune.md)")
    parser.add_argument("--min-films", type=int, nargs=2, metavar=("FRACTURED", "NORMAL"),
                        help="with --init-from: the site's validation films of a part needed before its cuts and "
                             "amber bins are chosen on them, and the films with and without a cast, splint or "
                             "implant before the detector's cut is; with fewer, the starting model's are kept and "
                             "the output says so (default 20 20)")
    parser.add_argument("--no-appliance-head", action="store_true",
                        help="do not fit the cast/splint/implant detector at the end (--smoke leaves it out too)")
    args = parser.parse_args(argv)
    cli.check_training_args(parser, args, IMAGE_SIZE)
    if args.init_from is not None:
        args.init_from = cli.models_folder(args.init_from)
    elif args.min_films is not None:
        parser.error("--min-films goes with --init-from (fine-tuning)")
    if args.appliance_head_only:
        from fracture_detection.training.appliance import add_appliance_head
        add_appliance_head(args.out, args.data, verbose=0 if args.quiet else 1)
        return 0
    if args.amber_only:
        from fracture_detection.training.fracture import write_amber
        write_amber(args.out, args.data, tuple(args.parts), verbose=0 if args.quiet else 1)
        return 0
    if args.appliance_cut_only:
        from fracture_detection.training.appliance import rechoose_appliance_cut
        rechoose_appliance_cut(args.out, args.data, verbose=0 if args.quiet else 1)
        return 0
    if args.ensemble_of:
        from fracture_detection.training.ensemble import parse_member, save_ensemble
        if len(args.parts) != 1:
            parser.error("--ensemble-of makes one part's model: give that part with --parts")
        save_ensemble([parse_member(m) for m in args.ensemble_of], args.parts[0], args.out, args.data,
                      verbose=0 if args.quiet else 1)
        return 0
    if args.by_region and not args.cuts_only:
        parser.error("--by-region goes with --cuts-only")
    if args.cuts_only:
        from fracture_detection.training.fracture import rechoose_cuts
        rechoose_cuts(args.out, args.data, tuple(args.parts), verbose=0 if args.quiet else 1, region=args.by_region,
                      mirroring=args.test_time_mirroring)
        return 0
    from fracture_detection.training.fracture import HeadConfig, train_fracture
    if args.init_from is not None and args.split == parser.get_default("split"):
        args.split = args.init_from / "split.csv"  # the split the models started from were made on
    cfg = cli.config_from_args(args)
    cfg.appliance_head = not (args.no_appliance_head or args.smoke)
    train_fracture(args.data, args.layout, args.out, cfg, tuple(args.parts),
                   args.feature_cache, HeadConfig(appliance_weight=args.appliance_weight),
                   mirroring=args.test_time_mirroring or "off", pooled=args.pool_regions, init_from=args.init_from,
                   folds=args.cv_folds, min_films=args.min_films)


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
