"""Dataset readers and patient-grouped splits.

Every reader returns one :class:`Record` per image.  ``part`` is the dataset's own part label in
lower case (FracAtlas' flag, Roboflow's class or ``body_parts.csv`` part, MURA's study type, a folder's
name), which is what the fracture models select their films by; ``view`` is what the film shows as a
reader names it (``finger``, ``hand``, ``wrist``, ``forearm``, ``elbow``, ``humerus``, ``shoulder``,
``shoulder_chest``, ``chest``, ``other``: :data:`VIEWS`), from ``views.csv`` at the data root where it
names the film, else the part where the part is such a word, else ''; ``region`` (a property) is what
the body-part model, the gate and the chain route by: ``hand`` for a finger, hand, wrist or forearm film,
``elbow``, ``shoulder`` for a shoulder or shoulder-and-chest film, ``other`` for a humerus-shaft, chest or
other film, and the part itself for a film with no view (``leg``, ``hip``, ``spine``, ``mixed``).
``label`` is 1 for fractured/abnormal, 0 for normal and ``None`` when unknown, ``group`` is what a
split must keep together (patient where known, else study or source image).

Layouts:
  * ``mura``      MURA-v1.1/{train,valid}/XR_<PART>/patient<N>/study<K>_{positive,negative}/image<J>.png
                  (labels are *abnormal*, broader than *fractured*)
  * ``folders``   ROOT/<Part>/<label>/[<patient>/[<study>/]]<image>, label in fractured/positive/abnormal
                  or normal/negative; a folder under the label folder names the patient (kept within one
                  split, across parts and labels), one under it the study
  * ``manifest``  ROOT/manifest.csv with columns ``path,part,label[,patient][,study][,appliance]``
                  (paths relative to ROOT); a patient's films are kept within one split
  * ``fracatlas`` FracAtlas as published (images/Fractured, images/Non_fractured, dataset.csv)
  * ``roboflow``  the Roboflow bone-fracture YOLO export with body_parts.csv
  * ``spine``     the Roboflow spine-region export ({train,valid}/images): spine films, none of the
                  modelled parts (examples of what must be rejected); no fracture label
  * ``shared``    a folder holding ``fracatlas/``, ``roboflow-bone-fracture/`` and ``spine-region/``
"""
from __future__ import annotations

import csv
import hashlib
import os
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image

from .images import ImageError, find_images, load_image, to_model_input

TARGET_PARTS = ("elbow", "hand", "shoulder")
MURA_PARTS = ("elbow", "finger", "forearm", "hand", "humerus", "shoulder", "wrist")
LAYOUTS = ("auto", "mura", "folders", "manifest", "fracatlas", "roboflow", "spine", "shared")
MANIFEST_FILE = "manifest.csv"  # the manifest layout: one row per film
POSITIVE_WORDS = {"fractured", "fracture", "positive", "abnormal", "1"}
NEGATIVE_WORDS = {"normal", "negative", "non_fractured", "not_fractured", "0"}
SPLITS = ("train", "val", "test")
SPLIT_FILE = "split.csv"  # beside the weights: the split every model of a folder was trained on
APPLIANCE_FILE = "appliances.csv"  # at a data root: appliances seen on the films, labelled by eye
APPLIANCES = ("cast", "splint", "implant", "external")  # 'external': an external fixator
VIEW_FILE = "views.csv"  # at a data root: what each film shows, labelled by eye
# what a film shows, as a reader names it, and the region (the fracture model) it is routed to; "other":
# no model here reads it (a humerus shaft, a chest, children's whole-trunk films, anything else)
VIEW_REGIONS = {"finger": "hand", "hand": "hand", "wrist": "hand", "forearm": "hand", "elbow": "elbow",
                "humerus": "other", "shoulder": "shoulder", "shoulder_chest": "shoulder", "chest": "other",
                "other": "other"}
VIEWS = tuple(VIEW_REGIONS)
VIEW_CONFIDENCES = ("high", "low")  # views.csv's optional confidence column: how sure the view by eye is
NOT_IN_SPLIT = ("view", "view_confidence")  # read from views.csv each time, never from split.csv
OTHER_REGION = "other"


class DatasetError(Exception):
    """A data folder that cannot be used; ``str(err)`` is one sentence for the user."""


@dataclass
class Record:
    path: str
    part: str
    label: int | None
    group: str
    study: str
    source: str
    patient: str = ""
    split: str = ""          # '' until assigned; 'test' preset for MURA's official valid split
    note: str = ""
    appliance: str = ""      # 'none' or one of APPLIANCES where labelled by eye (appliances.csv), '' unknown
    view: str = ""           # one of VIEWS (views.csv, else the part where it is one), '' unknown; not in split.csv
    view_confidence: str = ""  # 'high' or 'low' where views.csv says how sure its view is by eye, else ''; not in split.csv

    @property
    def region(self) -> str:
        """What the film is routed by: its view's region (:data:`VIEW_REGIONS`), else its dataset part."""
        return VIEW_REGIONS.get(self.view, self.part)

    @property
    def radiograph(self) -> str:
        """The radiograph a film is a copy of: the Roboflow export's augmented copies of one upload (about
        three, rotated or brightness-shifted) share it, so that a figure counts each radiograph once;
        every other film is its own."""
        return f"{self.group}|{self.label}|{self.appliance}" if self.source == "roboflow" else self.path

    @property
    def treated(self) -> bool | None:
        """A cast, splint, implant or fixator in view (True), labelled as none (False), or not known (None)."""
        return None if not self.appliance else self.appliance in APPLIANCES

    def fracture_part(self, by_region: bool) -> str:
        """The fracture model that reads the film: its region where the body-part model routes by region
        (a Roboflow wrist film is read by the hand model, as in the app), else its dataset part."""
        return self.region if by_region else self.part

    @property
    def view_sure(self) -> bool:
        """The view by eye is sure: ``views.csv`` rates it high, or it comes from a label with no rating
        (Roboflow's ``body_parts.csv``, whose unsure films are left out; MURA's study type; a folder's
        name). False for a low rating (mostly hand versus wrist) and for a film with no view."""
        return bool(self.view) and self.view_confidence != "low"

    def to_row(self, root: Path) -> dict:
        row = asdict(self)
        row.pop("view")  # from views.csv (or the part) each time the data is read: one source
        row.pop("view_confidence")
        row["path"] = _relative(self.path, root)
        row["label"] = "" if self.label is None else self.label
        return row


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(Path(path).resolve())


# --- MURA ---------------------------------------------------------------------------

def _mura_root(root: Path) -> Path | None:
    for cand in (root, root / "MURA-v1.1"):
        if (cand / "train").is_dir() or (cand / "valid").is_dir():
            if any(p.name.startswith("XR_") for sub in ("train", "valid") if (cand / sub).is_dir()
                   for p in (cand / sub).iterdir()):
                return cand
    return None


def _mura_record(path: Path, mura: Path, split: str, label: int | None) -> Record | None:
    parts = path.relative_to(mura / split).parts
    if len(parts) < 4 or not parts[0].startswith("XR_"):
        return None
    study_type, patient, study = parts[0], parts[1], parts[2]
    if label is None:
        label = 1 if study.endswith("_positive") else 0 if study.endswith("_negative") else None
    return Record(
        path=str(path), part=study_type[3:].lower(), label=label,
        group=f"mura:{patient}", patient=f"mura:{patient}",
        study=f"mura:{split}/{study_type}/{patient}/{study}", source="mura",
        split="test" if split == "valid" else "",
    )


def read_mura(root) -> list[Record]:
    """Read MURA-v1.1; uses the ``*_image_paths.csv`` / ``*_labeled_studies.csv`` files when present."""
    mura = _mura_root(Path(root))
    if mura is None:
        raise DatasetError(f"{root} is not a MURA-v1.1 folder (no train/ or valid/ with XR_* folders).")
    records: list[Record] = []
    for split in ("train", "valid"):
        if not (mura / split).is_dir():
            continue
        labels: dict[str, int] = {}
        studies_csv = mura / f"{split}_labeled_studies.csv"
        if studies_csv.is_file():
            with open(studies_csv, newline="") as fh:
                for row in csv.reader(fh):
                    if len(row) >= 2 and row[1].strip() in ("0", "1"):
                        labels[_mura_key(row[0])] = int(row[1])
        paths_csv = mura / f"{split}_image_paths.csv"
        if paths_csv.is_file():
            with open(paths_csv, newline="") as fh:
                rel = [row[0].strip() for row in csv.reader(fh) if row and row[0].strip()]
            # paths in the CSV start with 'MURA-v1.1/'
            paths = [mura.parent / r if r.startswith(mura.name + "/") else mura / r for r in rel]
            paths = [p for p in paths if p.is_file()]
        else:
            paths = [p for p in find_images(mura / split) if not p.name.startswith("._")]
        for p in paths:
            study_key = _mura_key(p.parent.relative_to(mura.parent).as_posix())
            rec = _mura_record(p, mura, split, labels.get(study_key))
            if rec is not None:
                records.append(rec)
    return records


def _mura_key(study_path: str) -> str:
    return study_path.strip().rstrip("/")


# --- plain folders ------------------------------------------------------------------

def _label_from_word(word: str) -> int | None:
    w = word.strip().lower().replace("-", "_").replace(" ", "_")
    if w in POSITIVE_WORDS:
        return 1
    if w in NEGATIVE_WORDS:
        return 0
    return None


def read_folders(root) -> list[Record]:
    """ROOT/<Part>/<label>/[<patient>/[<study>/]]<image>.  An image directly in its label folder is its
    own group; a folder under the label folder is a patient, whose films (of any part and label) share
    one group and so one split; a folder under that is one of the patient's studies.  A label folder
    whose name is not a known label is an error that lists them (nothing is dropped without a word)."""
    root = Path(root)
    records, unknown = [], []
    for part_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for label_dir in sorted(p for p in part_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            label = _label_from_word(label_dir.name)
            if label is None:
                unknown.append(label_dir.relative_to(root).as_posix())
                continue
            for img in find_images(label_dir):
                rel = img.relative_to(root).as_posix()
                inner = img.relative_to(label_dir).parts[:-1]
                patient = f"patient:{inner[0]}" if inner else ""
                study = f"study:{inner[0]}/{inner[1]}" if len(inner) > 1 else f"file:{rel}"
                records.append(Record(
                    path=str(img), part=part_dir.name.lower(), label=label, group=patient or f"file:{rel}",
                    study=study, source="folders", patient=patient,
                ))
    if unknown:
        raise DatasetError(
            f"{root} has label folders this tool does not know: {', '.join(unknown)} (name them fractured, "
            "positive or abnormal, or normal or negative).")
    return records


def read_manifest(root) -> list[Record]:
    """``ROOT/manifest.csv``: ``path,part,label[,patient][,study][,appliance]``, paths relative to ROOT.
    A film's group is its patient where given (so a patient's films stay within one split), else its
    study, else the film itself; ``appliance`` (none, cast, splint, implant, external) is a label by eye."""
    root = Path(root)
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise DatasetError(f"{root} has no {MANIFEST_FILE}.")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "part", "label"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path} lacks the column(s) {', '.join(sorted(missing))} (expected "
                               "path,part,label[,patient][,study][,appliance]).")
        rows = list(reader)
    records, bad, absent = [], [], []
    for n, row in enumerate(rows, start=2):
        label = _label_from_word(row["label"] or "")
        appliance = (row.get("appliance") or "").strip().lower()
        if label is None or not row["part"].strip() or appliance not in ("",) + APPLIANCES + ("none",):
            bad.append(str(n))
            continue
        img = root / row["path"].strip()
        if not img.is_file():
            absent.append(row["path"].strip())
            continue
        rel = img.relative_to(root).as_posix() if not os.path.isabs(row["path"]) else str(img)
        patient = f"patient:{row['patient'].strip()}" if (row.get("patient") or "").strip() else ""
        study = f"study:{row['study'].strip()}" if (row.get("study") or "").strip() else ""
        records.append(Record(path=str(img), part=row["part"].strip().lower(), label=label,
                              group=patient or study or f"file:{rel}", study=study or f"file:{rel}",
                              source="manifest", patient=patient, appliance=appliance))
    if bad:
        raise DatasetError(f"{path} has rows with an unknown label, part or appliance (lines {', '.join(bad[:10])}"
                           + (", ..." if len(bad) > 10 else "") + ").")
    if absent:
        raise DatasetError(f"{path} names {len(absent)} file(s) that do not exist, e.g. {absent[0]}.")
    return records


# --- FracAtlas ----------------------------------------------------------------------

def dhash(path: str, size: int = 16) -> int:
    """Difference hash (size*size bits) of an image, for finding near-duplicates."""
    with Image.open(path) as im:
        small = np.asarray(im.convert("L").resize((size + 1, size), Image.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def near_duplicate_groups(paths: list[str], max_distance: int = 8) -> list[int]:
    """Union-find over dHash distances: indices of images within ``max_distance`` bits share a group."""
    hashes = [dhash(p) for p in paths]
    n = len(hashes)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    words = np.array([[(h >> (64 * k)) & (2 ** 64 - 1) for k in range(4)] for h in hashes], dtype=np.uint64)
    for i in range(n - 1):
        x = np.bitwise_xor(words[i + 1:], words[i])
        dist = np.unpackbits(x.view(np.uint8), axis=1).sum(axis=1)
        for j in np.nonzero(dist <= max_distance)[0]:
            a, b = find(i), find(i + 1 + int(j))
            if a != b:
                parent[b] = a
    return [find(i) for i in range(n)]


def read_fracatlas(root) -> list[Record]:
    """FracAtlas: part from the csv flags (images with several parts are 'mixed'), label from the folder."""
    root = Path(root)
    csv_path = root / "dataset.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{root} has no dataset.csv, so it is not a FracAtlas folder.")
    flags = {}
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            flags[row["image_id"]] = row
    records = []
    for folder, label in (("Fractured", 1), ("Non_fractured", 0)):
        for img in find_images(root / "images" / folder):
            row = flags.get(img.name)
            if row is None:
                continue
            parts = [p for p in ("hand", "leg", "hip", "shoulder") if row.get(p) == "1"]
            part = parts[0] if len(parts) == 1 else "mixed"
            note = ";".join(k for k in ("hardware", "multiscan") if row.get(k) == "1")
            records.append(Record(path=str(img), part=part, label=label, group="", study=f"fracatlas:{img.stem}",
                                  source="fracatlas", note=note))
    groups = near_duplicate_groups([r.path for r in records])
    members = defaultdict(list)
    for rec, g in zip(records, groups):
        rec.group = f"fracatlas:{Path(records[g].path).stem}"
        members[rec.group].append(rec)
    for recs in members.values():  # identical images with opposite labels: labels unreliable
        if len({r.label for r in recs}) > 1:
            for r in recs:
                r.note = (r.note + ";" if r.note else "") + "conflicting_duplicate"
    return records


# --- Roboflow bone-fracture export ----------------------------------------------------

ROBOFLOW_CLASS_PARTS = {0: "elbow", 1: "finger", 2: "forearm", 3: "humerus", 4: "humerus", 5: "shoulder", 6: "wrist"}


def read_roboflow(root) -> list[Record]:
    """Annotated images are fractured (part from the class); unannotated ones are normal with the part
    from ``body_parts.csv``.  Augmented copies of one upload share a group."""
    root = Path(root)
    parts_csv = root / "body_parts.csv"
    if not parts_csv.is_file():
        raise DatasetError(f"{root} has no body_parts.csv, so unannotated images have no body part.")
    with open(parts_csv, newline="") as fh:
        unannotated = {(r["split"], r["file"]): r for r in csv.DictReader(fh)}
    records = []
    for split in ("train", "val"):
        for img in find_images(root / split / "images"):
            label_file = root / split / "labels" / (img.stem + ".txt")
            classes = []
            if label_file.is_file():
                classes = [int(line.split()[0]) for line in label_file.read_text().splitlines() if line.strip()]
            upload = img.name.split(".rf.")[0]
            if classes:
                part, label, note = ROBOFLOW_CLASS_PARTS[Counter(classes).most_common(1)[0][0]], 1, ""
            else:
                row = unannotated.get((split, img.name))
                if row is None:
                    continue
                part, label, note = row["body_part"], 0, row["note"]
            if part == "unsure":
                continue
            records.append(Record(path=str(img), part=part, label=label, group=f"roboflow:{upload}",
                                  study=f"roboflow:{upload}", source="roboflow", note=note))
    return records


# --- Roboflow spine-region export -------------------------------------------------------

def read_spine(root) -> list[Record]:
    """Spine films (part ``spine``, no fracture label); files of one source name (the part before
    ``.rf.``) share a group."""
    root = Path(root)
    records = []
    for split in ("train", "valid", "test"):
        for img in find_images(root / split / "images"):
            name = img.name.split(".rf.")[0]
            records.append(Record(path=str(img), part="spine", label=None, group=f"spine:{name}",
                                  study=f"spine:{name}", source="spine-region"))
    if not records:
        raise DatasetError(f"{root} holds no spine-region images ({{train,valid}}/images).")
    return records


SHARED_FOLDERS = {"fracatlas": read_fracatlas, "roboflow-bone-fracture": read_roboflow, "spine-region": read_spine}


# --- dispatch ------------------------------------------------------------------------

def detect_layout(root: Path) -> str:
    if (root / MANIFEST_FILE).is_file():
        return "manifest"
    if _mura_root(root) is not None:
        return "mura"
    if any((root / name).is_dir() for name in SHARED_FOLDERS):
        return "shared"
    if (root / "dataset.csv").is_file() and (root / "images").is_dir():
        return "fracatlas"
    if (root / "body_parts.csv").is_file():
        return "roboflow"
    if (root / "data.yaml").is_file() and any((root / s / "images").is_dir() for s in ("train", "valid")):
        return "spine"
    if any(_label_from_word(d.name) is not None for p in root.iterdir() if p.is_dir() for d in p.iterdir()
           if d.is_dir()):
        return "folders"
    raise DatasetError(
        f"{root} is not a dataset layout this tool knows (MURA-v1.1, <Part>/<label>/ folders, a manifest.csv, "
        "FracAtlas, or the shared FracAtlas + Roboflow folder)."
    )


def read_dataset(root, layout: str = "auto") -> list[Record]:
    """Read any supported layout; raises :class:`DatasetError` for a missing, empty or unknown folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"The data folder {root} does not exist.")
    if layout not in LAYOUTS:
        raise DatasetError(f"Unknown layout '{layout}'; choose one of {', '.join(LAYOUTS)}.")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "shared":
        records = [r for name, reader in SHARED_FOLDERS.items() if (root / name).is_dir()
                   for r in reader(root / name)]
    else:
        records = {"mura": read_mura, "folders": read_folders, "manifest": read_manifest, "fracatlas": read_fracatlas,
                   "roboflow": read_roboflow, "spine": read_spine}[layout](root)
    if not records:
        raise DatasetError(f"No labelled images were found in {root}.")
    attach_appliances(records, root)
    attach_views(records, root)
    return records


def appliance_key(r: Record, root: Path) -> str:
    """How ``appliances.csv`` and ``views.csv`` name a record's image: the FracAtlas file name,
    ``<split>/<upload>`` for a Roboflow image (one label for every augmented copy of an upload), else
    the path under the root."""
    path = Path(r.path)
    if r.source == "fracatlas":
        return path.name
    if r.source == "roboflow":
        return f"{path.parent.parent.name}/{path.name.split('.rf.')[0]}"
    return _relative(r.path, Path(root))


def _read_label_table(root: Path, name: str, column: str, allowed,
                      optional: bool = False) -> dict[tuple[str, str], str]:
    """``(source, key) -> value`` of ``column`` from ``<root>/<name>`` (empty when there is none): the
    shared data's files name their rows by ``source`` and ``key``; a plain one needs only ``path``
    (relative to the root) and the column.  A value outside ``allowed`` is one sentence. An
    ``optional`` column may be missing (empty table) or empty in a row (the row is left out)."""
    path = Path(root) / name
    if not path.is_file():
        return {}
    out = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if optional and column not in (reader.fieldnames or ()):
            return {}
        if column not in (reader.fieldnames or ()) or not {"key", "path"} & set(reader.fieldnames or ()):
            raise DatasetError(f"{path} lacks a {column} column or a key (or path) column.")
        for row in reader:
            value = (row.get(column) or "").strip().lower()
            if optional and not value:
                continue
            if value not in allowed:
                raise DatasetError(f"{path} names an unknown {column} '{value}' (expected one of "
                                   f"{', '.join(allowed)}).")
            source = {"roboflow-bone-fracture": "roboflow"}.get(row.get("source", ""), row.get("source", ""))
            out[(source or "folders", (row.get("key") or row.get("path") or "").strip())] = value
    return out


def read_appliances(root: Path) -> dict[tuple[str, str], str]:
    """``(source, key) -> appliance`` from ``<root>/appliances.csv`` (empty when there is none)."""
    return _read_label_table(root, APPLIANCE_FILE, "appliance", ("none",) + APPLIANCES)


def attach_appliances(records: list[Record], root) -> int:
    """Fill ``Record.appliance`` from the data root's ``appliances.csv``; returns how many were found.
    Only the fractured films were labelled in the shared data: a normal film stays unknown ('')."""
    table = read_appliances(Path(root))
    found = 0
    for r in records:
        kind = table.get(("folders" if r.source == "manifest" else r.source, appliance_key(r, root)))
        if kind is not None:
            r.appliance, found = kind, found + 1
    return found


def read_views(root: Path) -> dict[tuple[str, str], str]:
    """``(source, key) -> view`` from ``<root>/views.csv`` (empty when there is none)."""
    return _read_label_table(root, VIEW_FILE, "view", VIEWS)


def attach_views(records: list[Record], root) -> int:
    """Fill ``Record.view``: the data root's ``views.csv`` where it names the film (it overrides the
    dataset's part for routing, see :attr:`Record.region`), else the part where the part is a view's
    word (MURA's study types, Roboflow's ``body_parts.csv``, a folder named Wrist), else ''; and
    ``Record.view_confidence`` from its optional ``confidence`` column.  Returns how many ``views.csv``
    named."""
    table = read_views(Path(root))
    sure = _read_label_table(Path(root), VIEW_FILE, "confidence", VIEW_CONFIDENCES, optional=True) if table else {}
    found = 0
    for r in records:
        key = ("folders" if r.source == "manifest" else r.source, appliance_key(r, root))
        view = table.get(key) if table else None
        if view is not None:
            found += 1
        r.view = view or (r.part if r.part in VIEW_REGIONS else "")
        r.view_confidence = sure.get(key, "") if view is not None else ""
    return found


# --- splits ----------------------------------------------------------------------------

def assign_splits(records: list[Record], seed: int = 42,
                  fractions: tuple[float, float, float] = (0.72, 0.18, 0.10)) -> list[Record]:
    """Assign train/val/test by group, stratified by (part, label), seeded.

    Records whose ``split`` is already 'test' (MURA's official valid set) stay there and the
    rest is divided train/val in the ratio of the first two fractions.  A group never spans
    two splits.
    """
    preset_test = any(r.split == "test" for r in records)
    names = ("train", "val") if preset_test else SPLITS
    target = np.array(fractions[: len(names)], dtype=float)
    target /= target.sum()
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.split != "test" or not preset_test:
            groups[r.group].append(r)
    strata: dict[tuple, list[str]] = defaultdict(list)
    for g, recs in groups.items():
        strata[_stratum(recs)].append(g)
    counts = np.zeros(len(names))  # global, so that small strata still feed every split
    for key in sorted(strata, key=str):
        gs = sorted(strata[key], key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
        for g in gs:
            n = len(groups[g])
            # put the group where the split is furthest below its share
            deficit = target * (counts.sum() + n) - counts
            choice = int(np.argmax(deficit))
            counts[choice] += n
            for r in groups[g]:
                r.split = names[choice]
    return records


def _stratum(recs: list[Record]) -> tuple:
    """A group's (part, label): its most common one, a tie going to the smallest in text order (not to
    whichever the file system listed first)."""
    counts = Counter((r.part, r.label) for r in recs)
    return min(counts, key=lambda k: (-counts[k], str(k)))


def apply_split(records: list[Record], path: Path, root: Path) -> int:
    """Give ``records`` the splits saved in ``path`` where it lists them (by path, as written or
    resolved); the others keep ``split == ''``.  Returns how many were listed."""
    saved = {r.path: r.split for r in read_split(path, root)}
    resolved = {str(Path(p).resolve()): s for p, s in saved.items()}
    listed = 0
    for r in records:
        split = saved.get(r.path) or resolved.get(str(Path(r.path).resolve()))
        if split:
            r.split, listed = split, listed + 1
        elif r.split != "test":  # MURA's official valid split stays preset
            r.split = ""
    return listed


def extend_split(records: list[Record], seed: int = 42) -> list[Record]:
    """Assign a split to the records that have none, keeping every existing assignment: a new
    image joins its group's split where the group already has one; new groups are divided as
    :func:`assign_splits` would (grouped, stratified, seeded)."""
    group_split = {r.group: r.split for r in records if r.split}
    new = [r for r in records if not r.split]
    for r in new:
        r.split = group_split.get(r.group, "")
    unassigned = [r for r in new if not r.split]
    if unassigned:
        assign_splits(unassigned, seed=seed)
    return records


def write_split(records: list[Record], path: Path, root: Path) -> None:
    from .files import atomic_write_text
    names = [f.name for f in fields(Record) if f.name not in NOT_IN_SPLIT]
    import io
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow(r.to_row(root))
    atomic_write_text(path, buf.getvalue())


def read_split(path: Path, root: Path) -> list[Record]:
    """Read a split file written by :func:`write_split`; paths are resolved against ``root``."""
    with open(path, newline="") as fh:
        records = [record_from_row(row, root) for row in csv.DictReader(fh)]
    attach_appliances(records, root)
    attach_views(records, root)
    return records


def record_from_row(row: dict, root: Path) -> Record:
    """The inverse of :meth:`Record.to_row`: a relative path is resolved against ``root`` (columns
    that are not a record's, e.g. from a newer version, are left out)."""
    known = {f.name for f in fields(Record)}
    row = {k: v for k, v in row.items() if k in known}
    row = dict(row, label=None if row["label"] in ("", None) else int(row["label"]))
    row["path"] = str(Path(root) / row["path"]) if not os.path.isabs(row["path"]) else row["path"]
    return Record(**row)


def summarise(records: list[Record]) -> str:
    """Counts per split, part and label, as a small text table."""
    c = Counter((r.split or "-", r.part, r.label) for r in records)
    lines = [f"{'split':6} {'part':10} {'fractured':>9} {'normal':>7}"]
    for split in sorted({k[0] for k in c}):
        for part in sorted({k[1] for k in c if k[0] == split}):
            lines.append(f"{split:6} {part:10} {c[(split, part, 1)]:9d} {c[(split, part, 0)]:7d}")
    return "\n".join(lines)


# --- what the fracture models learn from ------------------------------------------------

FRACTURE_EXCLUDED_NOTES = ("possible_fracture", "conflicting_duplicate")


def fracture_records(records: list[Record], part: str, by_region: bool = False) -> list[Record]:
    """Images of one part with a trustworthy fracture label; ``by_region``: of the part's whole region
    (:attr:`Record.region`: Roboflow's finger, wrist and forearm films are the hand region's)."""
    return [r for r in records if r.fracture_part(by_region) == part and r.label is not None
            and not any(n in r.note for n in FRACTURE_EXCLUDED_NOTES)]


def load_pixels(sources, size: int, desc: str = "Loading images", verbose: int = 1):
    """Read and letterbox every source (path or array) to ``uint8 (N, size, size, 3)``.

    Unreadable files are skipped with a warning; returns ``(pixels, kept_indices)``.
    """
    def one(src):
        try:
            return to_model_input(load_image(src), size).astype(np.uint8)
        except ImageError as exc:
            return exc

    out = np.zeros((len(sources), size, size, 3), dtype=np.uint8)
    kept = []
    if verbose:
        print(desc, flush=True)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for i, res in enumerate(pool.map(one, sources)):
            if isinstance(res, ImageError):
                print(f"  skipped {sources[i]}: {res}", file=sys.stderr)
            else:
                out[len(kept)] = res
                kept.append(i)
            if verbose == 1 and ((i + 1) % 200 == 0 or i + 1 == len(sources)):
                print(f"  {i + 1}/{len(sources)}", file=sys.stderr, flush=True)
    return out[: len(kept)], np.array(kept, dtype=int)


UNKNOWN_APPLIANCE = -1   # appliance_label: not known


def appliance_label(r: Record) -> int:
    """1 when a cast, splint, implant or fixator is in view, 0 when the film can be trusted to show
    none, else :data:`UNKNOWN_APPLIANCE`.

    The labels by eye (``appliances.csv``, every fractured film of the shared data) come first. Else
    FracAtlas's hardware flag and Roboflow's notes (``cast``, ``hardware``) say yes; FracAtlas's normal
    films (hardware flagged on every image) and Roboflow's unannotated films with no note say no; the
    rest (spine films, some with hardware, other sources) is unknown."""
    if r.appliance:
        return int(r.appliance in APPLIANCES)
    notes = set(r.note.split(";"))
    if notes & {"cast", "hardware"}:
        return 1
    if r.source == "fracatlas" and r.label == 0:
        return 0
    if r.source == "roboflow" and r.label == 0 and not r.note:
        return 0
    return UNKNOWN_APPLIANCE
