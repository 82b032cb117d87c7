"""Fracture screening for elbow, hand and shoulder X-rays: decision support, not a diagnosis.

    from fracture_detection import analyse
    records = analyse(["xray.dcm", "folder/"])   # one dict per image, as `fracture-screen --json` prints

The package's folders are its layers (io < models < chain < evaluation < training < app < cli);
importing the package itself loads none of them, so ``analyse`` imports the chain only when called.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "analyse"]


def analyse(paths, weights=None, runtime: str = "auto", batch_size: int = 16) -> list[dict]:
    """Analyse images (files or folders, searched recursively): one record per image, the same
    dicts that ``fracture-screen --json`` prints a line each (keys documented in the README).

    ``paths``: one path or a list of them; ``weights``: a folder of trained models (default: the
    bundled ones); ``runtime``: ``auto``, ``litert`` or ``keras``.  A file that cannot be read is
    a record with ``finding == "error"`` and a one-sentence ``message``; missing weights raise
    :class:`fracture_detection.models.artifacts.WeightsError`.  Loads the models on each call
    (a few hundredths of a second for LiteRT files); for many calls, keep a
    :class:`fracture_detection.chain.predictor.Predictor`.
    """
    import os

    from .chain.predictor import Predictor, predict_paths
    from .models.artifacts import default_weights
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    predictor = Predictor(default_weights() if weights is None else weights, runtime=runtime)
    return [r.to_json() for r in predict_paths(predictor, paths, batch_size=batch_size)]
