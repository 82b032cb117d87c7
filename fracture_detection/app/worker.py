"""The worker thread: everything slow happens here, never in the Tk event loop.

It loads the models and then handles one request at a time (analyse a batch, re-read a picture,
write a report); it hands results back through a queue that the window polls.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from .viewer import Picture


@dataclass
class View:
    """One analysed image as the window shows it."""
    path: Path
    prediction: object            # fracture_detection.predictor.Prediction
    picture: Picture | None       # None when the file could not be read


class Worker(threading.Thread):
    """Loads the models, then runs requests one at a time off the UI thread."""

    def __init__(self, weights_dir, results: queue.Queue):
        super().__init__(daemon=True, name="inference")
        self.weights_dir, self.results, self.requests = weights_dir, results, queue.Queue()
        self.predictor = None

    def run(self):
        try:
            from ..chain.predictor import Predictor
            self.predictor = Predictor(self.weights_dir)
            self.results.put(("ready", self.predictor))
        except Exception as exc:  # missing or broken weights: say so in the window
            self.results.put(("fatal", _sentence(exc)))
            return
        while True:
            kind, payload = self.requests.get()
            try:
                self.results.put((kind, self._handle(kind, payload)))
            except Exception as exc:
                self.results.put(("error", (kind, payload, _sentence(exc))))
            if kind == "analyse":
                from .visual import warm_up
                warm_up()  # the heatmap's palette (matplotlib) is imported here, not in the event loop

    def _handle(self, kind, payload):
        if kind == "analyse":
            generation, paths = payload
            return generation, self._views(paths)
        if kind == "picture":
            generation, index, path = payload
            from ..chain.predictor import safe_load
            rgb = safe_load(path)
            return generation, index, None if isinstance(rgb, Exception) else Picture.from_array(rgb)
        if kind == "report":
            from .report import write_report
            path, preds, studies, fields = payload
            try:
                return write_report(path, preds, self.predictor, studies=studies, fields=fields)
            except OSError as exc:
                raise OSError(f"The report could not be written to {path.name}: "
                              f"{exc.strerror or 'the disk refused it'}") from None
        raise ValueError(kind)

    def _views(self, paths) -> list[View]:
        """One image at a time: the chain on a batch holds Python's lock for up to ~100 ms (reading
        ahead, letterboxing), one image for ~10 ms, so the event loop keeps its pace."""
        from ..chain.predictor import safe_read
        views = []
        for p in paths:
            rgb, warning = safe_read(p)   # the warning (e.g. the file ends early) reaches the prediction
            pred = self.predictor.predict_loaded([str(p)], [rgb if warning is None else (rgb, warning)])[0]
            views.append(View(Path(p), pred, None if isinstance(rgb, Exception) else
                              Picture.from_array(rgb, pred.heatmap)))
        return views


def _sentence(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith(".") else text + "."
