"""Where fractures are: annotation boxes in, suspected regions out.

Boxes are ``(x0, y0, x1, y1)`` fractions of the image as it is shown (after its EXIF
orientation is applied, as :func:`images.load_image` does).  Models see a letterboxed square
(:func:`images.to_model_input`); :class:`Letterbox` converts between the two.

* :func:`read_boxes`: a record's fracture boxes from the annotation file beside its image
  (YOLO boxes or polygons: FracAtlas ``Annotations/YOLO``, Roboflow ``labels/``, or a ``.txt``
  with the image's name in plain folders).
* :func:`grid_targets`: boxes -> the per-cell targets and weights a dense fracture head learns.
* :func:`regions_from_map`: a per-cell probability map -> suspected regions in image pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# EXIF orientation -> how a point (x, y) in [0, 1] of the stored pixels moves when shown
_ORIENT = {
    2: lambda x, y: (1 - x, y), 3: lambda x, y: (1 - x, 1 - y), 4: lambda x, y: (x, 1 - y),
    5: lambda x, y: (y, x), 6: lambda x, y: (1 - y, x), 7: lambda x, y: (1 - y, 1 - x), 8: lambda x, y: (y, 1 - x),
}


def label_file(image_path) -> Path | None:
    """The YOLO label file of an image, where the layouts this tool reads keep one."""
    p = Path(image_path)
    candidates = [p.with_suffix(".txt"),                                           # plain folders
                  p.parent.parent / "labels" / (p.stem + ".txt")]                   # Roboflow export
    if p.parent.parent.name == "images":                                           # FracAtlas
        candidates.append(p.parent.parent.parent / "Annotations" / "YOLO" / (p.stem + ".txt"))
    return next((c for c in candidates if c.is_file()), None)


def parse_yolo(text: str) -> np.ndarray:
    """Rows ``class xc yc w h`` (boxes) or ``class x1 y1 x2 y2 ...`` (polygons, >= 3 points) ->
    ``(k, 4)`` boxes ``x0, y0, x1, y1`` in [0, 1]."""
    out = []
    for line in text.splitlines():
        v = line.split()
        if len(v) == 5:
            xc, yc, w, h = map(float, v[1:])
            out.append([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2])
        elif len(v) >= 7 and len(v) % 2 == 1:
            pts = np.array(v[1:], dtype=float).reshape(-1, 2)
            out.append([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
    return np.clip(np.array(out, dtype="float32").reshape(-1, 4), 0.0, 1.0)


def read_boxes(image_path) -> np.ndarray:
    """The fracture boxes of an image as shown (``(0, 4)`` when it has none or no label file)."""
    lf = label_file(image_path)
    if lf is None:
        return np.zeros((0, 4), dtype="float32")
    boxes = parse_yolo(lf.read_text())
    try:
        with Image.open(image_path) as im:
            orientation = im.getexif().get(274, 1)
    except OSError:
        orientation = 1
    move = _ORIENT.get(orientation)
    if move is None or not len(boxes):
        return boxes
    xa, ya = move(boxes[:, 0], boxes[:, 1])
    xb, yb = move(boxes[:, 2], boxes[:, 3])
    return np.stack([np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb)], 1)


def shown_size(path) -> tuple[int, int]:
    """(height, width) of an image file as shown (EXIF orientation applied)."""
    with Image.open(path) as im:
        w, h = im.size
        if im.getexif().get(274, 1) in (5, 6, 7, 8):
            w, h = h, w
    return h, w


def square_boxes(path) -> tuple[np.ndarray, tuple[int, int]]:
    """An image's fracture boxes as fractions of its letterboxed square, and its shown size."""
    shape = shown_size(path)
    return Letterbox(*shape).to_square(read_boxes(path)), shape


@dataclass(frozen=True)
class Letterbox:
    """An ``height x width`` image centred on a black square, as :func:`images.to_model_input` does."""
    height: int
    width: int

    @property
    def side(self) -> int:
        return max(self.height, self.width)

    def to_square(self, boxes: np.ndarray) -> np.ndarray:
        """Image fractions -> fractions of the letterboxed square."""
        s, top, left = self.side, (self.side - self.height) // 2, (self.side - self.width) // 2
        b = np.asarray(boxes, dtype="float32").reshape(-1, 4)
        return np.stack([(b[:, 0] * self.width + left) / s, (b[:, 1] * self.height + top) / s,
                         (b[:, 2] * self.width + left) / s, (b[:, 3] * self.height + top) / s], 1)

    def cells_inside(self, rows: int, cols: int) -> np.ndarray:
        """Which cells of a ``rows x cols`` grid over the square overlap the image itself."""
        s, top, left = self.side, (self.side - self.height) // 2, (self.side - self.width) // 2
        ys, xs = np.arange(rows) * s / rows, np.arange(cols) * s / cols
        in_y = (ys + s / rows > top) & (ys < top + self.height)
        in_x = (xs + s / cols > left) & (xs < left + self.width)
        return in_y[:, None] & in_x[None, :]

    def to_pixels(self, square_boxes: np.ndarray) -> np.ndarray:
        """Fractions of the letterboxed square -> pixel boxes of the image, clipped to it."""
        s, top, left = self.side, (self.side - self.height) // 2, (self.side - self.width) // 2
        b = np.asarray(square_boxes, dtype="float64").reshape(-1, 4) * s
        b[:, [0, 2]] = np.clip(b[:, [0, 2]] - left, 0, self.width)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]] - top, 0, self.height)
        return b


# --- what the dense head learns --------------------------------------------------------

OUTSIDE_WEIGHT = 0.25  # cells of a fractured image outside its boxes: probably normal, not certainly


def grid_targets(square_boxes: np.ndarray, label: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell target (1 inside a fracture box) and weight for one image on a ``grid x grid`` map.

    A cell is a target when a box covers its centre or covers at least a third of the cell (small
    boxes still mark the cell they sit in).  A normal image is 0 everywhere at full weight; a
    fractured image's other cells are 0 at :data:`OUTSIDE_WEIGHT`, since an annotator may have
    boxed only the main fracture; a fractured image without boxes teaches the map nothing."""
    target = np.zeros((grid, grid), dtype="float32")
    weight = np.ones((grid, grid), dtype="float32")
    if not label:
        return target, weight
    if not len(square_boxes):
        return target, np.zeros_like(weight)
    edges = np.arange(grid + 1) / grid
    lo, hi = edges[:-1], edges[1:]
    for x0, y0, x1, y1 in np.asarray(square_boxes, dtype="float64"):
        ox = np.clip(np.minimum(hi, x1) - np.maximum(lo, x0), 0, None) * grid   # overlap, in cells
        oy = np.clip(np.minimum(hi, y1) - np.maximum(lo, y0), 0, None) * grid
        cover = oy[:, None] * ox[None, :]
        centre = (((lo + hi) / 2 >= y0) & ((lo + hi) / 2 <= y1))[:, None] & \
                 (((lo + hi) / 2 >= x0) & ((lo + hi) / 2 <= x1))[None, :]
        best = np.unravel_index(np.argmax(cover), cover.shape)
        target[(cover >= 1 / 3) | centre] = 1.0
        target[best] = 1.0
    weight[target == 0] = OUTSIDE_WEIGHT
    return target, weight


# --- what a person is shown ------------------------------------------------------------

# A region spreads to touching cells of at least this share of its peak.  0.7 was chosen on the
# validation maps of the three bundled models (0.5, 0.6, ... 1.0 compared, each with its region
# threshold re-chosen): the best region sensitivity at one false region per image (mean 0.37 against
# 0.31 at 0.5) and the top region's centre in a true box on 40 % of fractured images against 33 %.
# Training records it in the model's metadata (localisation.region_extent); weights made before it
# was recorded used LEGACY_REGION_EXTENT.
REGION_EXTENT = 0.7
LEGACY_REGION_EXTENT = 0.5


# A region's box spans at most this share of the map's side each way (8 of 28 cells): a box over half the
# film says nothing about where to look.
MAX_REGION_SIDE = 0.3


def regions_from_map(prob_map: np.ndarray, image_shape, threshold: float, max_regions: int = 3,
                     always_top: bool = True, extent: float = REGION_EXTENT, exclude=None,
                     max_side: float = MAX_REGION_SIDE) -> list[dict]:
    """Suspected regions from a per-cell probability map over the letterboxed square.

    Peaks at or above ``threshold`` are taken from the highest down; each region spreads from its
    peak to touching cells (8-connected) that hold at least ``extent`` of the peak and
    belong to no region yet, so a region stays a compact patch around one suspicious place.  Its box
    spans its cells, its score is its peak.  With ``always_top`` the highest cell is a region even
    below the threshold (a fractured or uncertain finding always says where to look).  Cells over
    the letterbox's black border, or marked in ``exclude`` (cells holding a burnt-in marker or text:
    :func:`marker_cells`), are never part of a region; a region spreads at most ``max_side`` of the map's
    side across (at least 3 cells).  A region whose box lies mostly
    (:data:`NESTED_SHARE` of its area) inside a higher-scoring region's box is the same place: it
    is dropped, and does not count towards ``max_regions``.
    Returns ``[{"box": [x0, y0, x1, y1], "score": s}]`` in the image's pixels, highest first."""
    m = np.array(prob_map, dtype="float32")
    g_h, g_w = m.shape
    lb = Letterbox(*image_shape[:2])
    m[~lb.cells_inside(g_h, g_w)] = 0.0
    if exclude is not None:
        m[np.asarray(exclude, dtype=bool)] = 0.0
    span = max(3, round(max_side * max(g_h, g_w)))   # the most cells a region's box spans each way
    taken = np.zeros(m.shape, dtype=bool)
    out = []
    for flat in np.argsort(-m, axis=None, kind="stable"):
        if len(out) >= max_regions:
            break
        peak = np.unravel_index(flat, m.shape)
        score = float(m[peak])
        if taken[peak] or score <= 0 or (score < threshold and not (always_top and not out)):
            if score < threshold:
                break
            continue
        floor = extent * score
        stack, cells = [peak], []
        bottom, top, left, right = peak[0], peak[0], peak[1], peak[1]   # the rows and columns spanned so far
        taken[peak] = True
        while stack:
            y, x = stack.pop()
            cells.append((y, x))
            for ny in range(max(0, y - 1), min(g_h, y + 2)):
                for nx in range(max(0, x - 1), min(g_w, x + 2)):
                    if not taken[ny, nx] and m[ny, nx] >= floor and \
                            max(top, ny) - min(bottom, ny) < span and max(right, nx) - min(left, nx) < span:
                        taken[ny, nx] = True
                        stack.append((ny, nx))
                        bottom, top, left, right = min(bottom, ny), max(top, ny), min(left, nx), max(right, nx)
        ys, xs = np.array(cells).T
        px = lb.to_pixels(np.array([xs.min() / g_w, ys.min() / g_h, (xs.max() + 1) / g_w, (ys.max() + 1) / g_h]))[0]
        box = [int(np.floor(px[0])), int(np.floor(px[1])), int(np.ceil(px[2])), int(np.ceil(px[3]))]
        if px[2] > px[0] and px[3] > px[1] and not any(share_inside(box, r["box"]) >= NESTED_SHARE for r in out):
            out.append({"box": box, "score": round(score, 4)})
    return out


NESTED_SHARE = 0.5   # a region with at least this share of its box inside a stronger one's is that region


def share_inside(box, other) -> float:
    """The share of ``box``'s area that lies inside ``other`` (both ``x0, y0, x1, y1``)."""
    w = min(box[2], other[2]) - max(box[0], other[0])
    h = min(box[3], other[3]) - max(box[1], other[1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    return max(0, w) * max(0, h) / area if area > 0 else 1.0


def box_centre_inside(box, true_boxes_px: np.ndarray) -> bool:
    """Whether a region's centre lies inside any of the true boxes (pixels)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    t = np.asarray(true_boxes_px).reshape(-1, 4)
    return bool(((t[:, 0] <= cx) & (cx <= t[:, 2]) & (t[:, 1] <= cy) & (cy <= t[:, 3])).any())


# --- burnt-in markers and text ----------------------------------------------------------

# A lead side marker ("L", "R") or burnt-in text is among the brightest things on a film, small, sharp-edged,
# on a darker background, and near the film's edge; bone is as bright but comes in large connected
# pieces.  These bounds were set by eye on FracAtlas films whose markers read "L", "Hand", "Wrist B/V", ...
MARKER_BRIGHT = 0.75       # a marker's pixels are at least this share of the way from the film's median to its peak
MARKER_MIN_LEVEL = 150     # ... and at least this bright (0-255)
MARKER_MAX_SIDE = 0.12     # a character's box is at most this share of the film's longer side
MARKER_EDGE = 0.35         # its centre lies within this share of the film's side from an edge
MARKER_BACKGROUND = 25     # the ring around it is the film's background: at most this much above its 25th percentile
MARKER_CONTRAST = 70       # the ring around it is at least this much darker (0-255) than the marker
MARKER_MAX_FILL = 0.8      # text strokes fill at most this share of their box (a solid blob is not text)
MARKER_MAX_ASPECT = 3.5    # a character is about as tall as wide; a bone's cortex or a cast's edge is a long strip


def marker_boxes(grey: np.ndarray, image_box=None) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x0, y0, x1, y1)`` (pixels of ``grey``, end exclusive) of what looks like a burnt-in
    marker or text: bright, small, high-contrast, stroke-like blobs near the edges of the film.

    ``image_box``: where the film lies within ``grey`` (a letterboxed square has black borders that
    are not the film's edge); default the whole array."""
    from scipy import ndimage
    g = np.asarray(grey, dtype=np.float32)
    if g.ndim == 3:
        g = g[..., 0]
    x0, y0, x1, y1 = image_box or (0, 0, g.shape[1], g.shape[0])
    film = g[y0:y1, x0:x1]
    if film.size == 0:
        return []
    peak, median = float(np.percentile(film, 99.9)), float(np.median(film))
    background = float(np.percentile(film, 25))
    level = max(MARKER_MIN_LEVEL, median + MARKER_BRIGHT * (peak - median))
    labels, n = ndimage.label(film >= level, structure=np.ones((3, 3)))
    side = max(film.shape)
    out = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        ys, xs = sl
        h, w = ys.stop - ys.start, xs.stop - xs.start
        if max(h, w) > MARKER_MAX_SIDE * side or max(h, w) < 3 or max(h, w) > MARKER_MAX_ASPECT * min(h, w):
            continue
        cy, cx = (ys.start + ys.stop) / 2, (xs.start + xs.stop) / 2
        edge = min(cx, cy, film.shape[1] - cx, film.shape[0] - cy)
        if edge > MARKER_EDGE * side:
            continue
        blob = labels[sl] == k
        if blob.mean() > MARKER_MAX_FILL:
            continue
        pad = max(2, max(h, w) // 2)
        ry, rx = slice(max(0, ys.start - pad), ys.stop + pad), slice(max(0, xs.start - pad), xs.stop + pad)
        ring = film[ry, rx][labels[ry, rx] == 0]
        if not len(ring) or float(np.median(ring)) > background + MARKER_BACKGROUND or \
                float(film[sl][blob].mean()) - float(np.median(ring)) < MARKER_CONTRAST:
            continue
        out.append((x0 + xs.start, y0 + ys.start, x0 + xs.stop, y0 + ys.stop))
    return out


def marker_cells(grey_square: np.ndarray, image_shape, rows: int, cols: int) -> np.ndarray:
    """Which cells of a ``rows x cols`` map over a letterboxed square (``grey_square``, the model's input)
    hold a burnt-in marker or text (:func:`marker_boxes`)."""
    side = grey_square.shape[0]
    lb = Letterbox(*image_shape[:2])
    top, left = (lb.side - lb.height) // 2, (lb.side - lb.width) // 2
    f = side / lb.side
    film = (int(left * f), int(top * f), int(np.ceil((left + lb.width) * f)), int(np.ceil((top + lb.height) * f)))
    cells = np.zeros((rows, cols), dtype=bool)
    for bx0, by0, bx1, by1 in marker_boxes(grey_square, film):
        cells[int(by0 * rows / side):int(np.ceil(by1 * rows / side)),
              int(bx0 * cols / side):int(np.ceil(bx1 * cols / side))] = True
    return ndimage_dilate(cells)


def ndimage_dilate(cells: np.ndarray) -> np.ndarray:
    """``cells`` grown by one cell each way (a region's spread around a marker is the marker's too)."""
    from scipy import ndimage
    return ndimage.binary_dilation(cells, structure=np.ones((3, 3), dtype=bool)) if cells.any() else cells
