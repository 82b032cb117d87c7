"""A part's fracture model as the mean of models already trained (``training_fracture.py --ensemble-of``).

The hand region's own model reads FracAtlas's hand, wrist and forearm films well and the Roboflow
export's finger, wrist and forearm films near chance (it never saw them); the model trained on every
region reads those better and FracAtlas's hand films worse.  Their mean keeps most of the first on
FracAtlas and most of the second on the Roboflow films.  The ensemble is one model with the outputs of
one (:func:`models.locator.ensemble`), so the chain, the app and the LiteRT export take it as it is; its
cuts, rank inside "uncertain" and region threshold are chosen on the validation films of the part's
whole *region* (a film's view, :attr:`data.Record.region`), from every source, each radiograph once.
"""
from __future__ import annotations

from pathlib import Path

from ..io import data
from ..models import artifacts, locator
from ..models.runtime import save_model
from .fracture import rechoose_cuts


def parse_member(text: str) -> tuple[Path, str]:
    """``FOLDER:PART`` (a models folder and the part whose Keras fracture model to take)."""
    folder, sep, part = str(text).rpartition(":")
    if not sep or not folder or not part:
        raise data.DatasetError(f"--ensemble-of takes FOLDER:PART (e.g. weights:hand), not '{text}'.")
    return Path(folder), part


def _member(folder: Path, part: str):
    info = artifacts.fracture_models(folder).get(part)
    if info is None or not info.path.is_file():
        raise artifacts.WeightsError(f"{folder} holds no Keras fracture model of the {part} (fracture_{part}.keras).")
    return info


def save_ensemble(member_specs, part: str, out_dir: Path, data_root: Path, runtime: str = "auto",
                  verbose: int = 1) -> Path:
    """``fracture_<part>`` in ``out_dir`` as the mean of the Keras fracture models ``member_specs``
    (``[(folder, part), ...]``, the first one's cast/implant detector kept), its cuts chosen by
    :func:`fracture.rechoose_cuts` on the part's whole region.  ``out_dir`` needs the split
    (``split.csv``) the members were trained on."""
    out_dir = Path(out_dir)
    if not (out_dir / data.SPLIT_FILE).is_file():
        raise data.DatasetError(f"{out_dir} has no {data.SPLIT_FILE}: copy the split the members were trained on.")
    infos = [_member(Path(folder), p) for folder, p in member_specs]
    if len(infos) < 2:
        raise data.DatasetError("--ensemble-of needs at least two models.")
    first = infos[0].meta
    try:
        model = locator.ensemble([i.load() for i in infos])
    except ValueError as exc:
        raise artifacts.WeightsError(str(exc)) from None
    meta = dict(first, part=part,
                architecture="ensemble: the mean of " + "; ".join(
                    f"fracture_{i.meta.get('part')} trained on {', '.join((i.meta.get('training') or {}).get('regions') or [i.meta.get('part', '?')])}"
                    for i in infos),
                ensemble={"members": [{"file": i.path.name if Path(folder).resolve() == out_dir.resolve()
                                       else f"{Path(folder).name}/{i.path.name}", "part": i.meta.get("part"),
                                       "regions": (i.meta.get("training") or {}).get("regions"),
                                       "command": (i.meta.get("training") or {}).get("command"),
                                       "validation_auc": (i.meta.get("validation") or {}).get("auc")}
                                      for (folder, _), i in zip(member_specs, infos)],
                          "appliance_from": "the first member",
                          # the frozen trunk every member shares (through this layer) runs once per film
                          "shared_trunk": locator.shared_trunk(model)})
    meta.pop("test", None)
    save_model(model, meta, out_dir, f"fracture_{part}")
    rechoose_cuts(out_dir, data_root, (part,), runtime, verbose, region=True)
    return out_dir / f"fracture_{part}.keras"
