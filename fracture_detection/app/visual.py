"""Pictures for people: the heatmap and fracture regions over the X-ray, their legends, and the
model figures worth showing.

The heatmap is drawn on an absolute 0-1 scale (a value means the same colour on every image; it
is never rescaled per image), and regions are coloured by their score on fixed bins, so that the
window and the PDF report read alike.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from ..chain.decisions import format_probabilities

HEAT_ALPHA = 0.45          # opacity at a heat of 1; cool regions stay nearly transparent
HEAT_GAMMA = 0.7
# fracture regions: (lowest score, colour, legend text), highest bin first. Blues and violet, never the
# findings' red, amber and green: a box's colour says how strong its cells are, not a second verdict.
REGION_BINS = ((0.8, "#00e5ff", "cell score ≥ 0.80"), (0.5, "#448aff", "0.50–0.79"), (0.0, "#b388ff", "< 0.50"))


@lru_cache(maxsize=1)
def _heat_tables() -> tuple[list[int], list[int]]:
    """The palette (inferno, 256 entries) and the opacity of each heat level 0-255."""
    from matplotlib import colormaps
    palette = (colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    alpha = (255 * HEAT_ALPHA * np.linspace(0, 1, 256) ** HEAT_GAMMA).round().astype(np.uint8)
    return palette.ravel().tolist(), alpha.tolist()


def warm_up() -> None:
    """Make the heatmap's tables now (importing matplotlib takes a few tenths of a second)."""
    _heat_tables()


def heat_image(heat: np.ndarray) -> Image.Image:
    """A [0, 1] map as an 8-bit grey image on the absolute scale (0 -> 0, 1 -> 255)."""
    return Image.fromarray((np.clip(np.asarray(heat, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8))


def heat_layer(heat: Image.Image) -> Image.Image:
    """An RGBA layer for an 8-bit heat image: inferno colours, more opaque where hotter."""
    palette, alpha = _heat_tables()
    coloured = heat.copy()
    coloured.putpalette(palette)
    layer = coloured.convert("RGBA")
    layer.putalpha(heat.point(alpha))
    return layer


def compose(base: Image.Image, heat: Image.Image | None) -> Image.Image:
    """``base`` (grey or RGB) with the heat layer of the same size over it, as RGB."""
    if heat is None:
        return base.convert("RGB")
    return Image.alpha_composite(base.convert("RGBA"), heat_layer(heat)).convert("RGB")


def heatmap_overlay(rgb: np.ndarray, heat: np.ndarray) -> Image.Image:
    """Blend a [0, 1] heatmap (same height and width as ``rgb``) over the image."""
    return compose(Image.fromarray(np.ascontiguousarray(rgb)), heat_image(heat))


def colourbar(length: int, thickness: int, background: int = 128) -> Image.Image:
    """The heatmap's colour scale from 0 (left) to 1 (right), as drawn over a grey of ``background``."""
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, length).round().astype(np.uint8), (thickness, 1)))
    return compose(Image.new("L", (length, thickness), background), ramp)


def region_colour(score: float) -> str:
    for low, colour, _ in REGION_BINS:
        if score >= low:
            return colour
    return REGION_BINS[-1][1]


def region_label(score: float) -> str:
    """A region's score as shown beside its box: two decimals, "> 0.99" rather than 1.00."""
    return format_probabilities(score)[0]


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def box_edges(box, line: float) -> list[tuple]:
    """The four strokes of a box's outline, ``line`` wide on each side of its edge."""
    x0, y0, x1, y1 = box
    return [(x0 - line, y0 - line, x1 + line, y0 + line), (x0 - line, y1 - line, x1 + line, y1 + line),
            (x0 - line, y0 - line, x0 + line, y1 + line), (x1 - line, y0 - line, x1 + line, y1 + line)]


def place_labels(boxes, sizes, bounds, line: float = 3.0, gap: float = 1.0) -> list[tuple]:
    """Where each box's label goes, as rectangles ``(x0, y0, x1, y1)``: ``sizes[k]`` = (w, h) is the
    label of ``boxes[k]``, ``bounds`` = (width, height) the canvas, ``line`` how far an outline
    reaches on each side of a box's edge.  Places are tried in order (above the box at its left,
    then right corner; below it; beside it; inside its four corners), each kept within ``bounds``; the first
    that overlaps neither a label placed before (boxes in their order: strongest first) nor any
    box's outline, nor lies inside another box (where it would read as that box's), wins; else
    the one that overlaps least (another label counting most, another box's inside least)."""
    edges = [e for b in boxes for e in box_edges(b, line)]
    width, height = bounds
    placed: list[tuple] = []
    for k, ((x0, y0, x1, y1), (w, h)) in enumerate(zip(boxes, sizes)):
        others = [b for j, b in enumerate(boxes) if j != k]
        g = line + gap
        spots = [(x0, y0 - g - h), (x1 - w, y0 - g - h), (x0, y1 + g), (x1 - w, y1 + g),          # above, below
                 (x0 - g - w, y0), (x1 + g, y0), (x0 - g - w, y1 - h), (x1 + g, y1 - h),          # beside
                 (x0 + g, y0 + g), (x1 - g - w, y0 + g), (x0 + g, y1 - g - h), (x1 - g - w, y1 - g - h)]
        best, best_cost = None, None
        for x, y in spots:
            x, y = min(max(0.0, x), max(0.0, width - w)), min(max(0.0, y), max(0.0, height - h))
            rect = (x, y, x + w, y + h)
            cost = (100 * sum(_overlap(rect, r) for r in placed) + sum(_overlap(rect, e) for e in edges)
                    + 0.05 * sum(_overlap(rect, b) for b in others))
            if best_cost is None or cost < best_cost:
                best, best_cost = rect, cost
            if cost == 0:
                break
        placed.append(best)
    return placed


def shown_regions(pred) -> list[dict]:
    """The regions a page shows by default: all of them on a "Likely FRACTURE" film, else the top one
    (drawn quietly: a box on a film the rule does not call fractured must not read as a finding)."""
    regions = list(getattr(pred, "regions", None) or [])
    return regions if pred.finding == "fractured" else regions[:1]


def dashed_rectangle(draw: ImageDraw.ImageDraw, box, colour: str, width: int, dash: int):
    """A rectangle's outline in dashes ``dash`` pixels long (Pillow draws only solid ones)."""
    x0, y0, x1, y1 = box
    for a, b, horizontal, at in ((x0, x1, True, y0), (x0, x1, True, y1), (y0, y1, False, x0), (y0, y1, False, x1)):
        t = a
        while t < b:
            e = min(b, t + dash)
            draw.line((t, at, e, at) if horizontal else (at, t, at, e), fill=colour, width=width)
            t += 2 * dash


def draw_regions(img: Image.Image, regions, scale: float = 1.0, font=None, quiet: bool = False) -> Image.Image:
    """A copy of ``img`` with each region's box (in original pixels, times ``scale``) drawn in its
    score's colour with a dark outline, labelled with the score on a dark patch placed by
    :func:`place_labels` (never over another label or box's outline where it can move); labels go
    on top of every box.  ``quiet``: thin dashed outlines (a film not called fractured)."""
    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 300))
    if quiet:
        width = max(1, width // 2)
        dash = max(4, round(max(out.size) / 80))
        boxes = [tuple(v * scale for v in r["box"]) for r in regions]
        for box, region in zip(boxes, regions):
            dashed_rectangle(draw, box, "black", width + 2, dash)
            dashed_rectangle(draw, box, region_colour(region["score"]), width, dash)
        return _draw_labels(out, draw, boxes, regions, width, font)
    boxes = [tuple(v * scale for v in r["box"]) for r in regions]
    for (x0, y0, x1, y1), region in zip(boxes, regions):
        draw.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), outline="black", width=width + 2)
        draw.rectangle((x0, y0, x1, y1), outline=region_colour(region["score"]), width=width)
    return _draw_labels(out, draw, boxes, regions, width, font)


def _draw_labels(out, draw, boxes, regions, width, font):
    texts = [region_label(r["score"]) for r in regions]
    extents = [draw.textbbox((0, 0), t, font=font) for t in texts]
    sizes = [(e[2] - e[0] + 4, e[3] - e[1] + 2) for e in extents]
    for rect, text, e, region in zip(place_labels(boxes, sizes, out.size, line=width + 2), texts, extents, regions):
        draw.rectangle(rect, fill="black")
        draw.text((rect[0] + 2 - e[0], rect[1] + 1 - e[1]), text, fill=region_colour(region["score"]), font=font)
    return out


def model_summary(meta: dict) -> str:
    """One line on how good a model measured, preferring the held-out test figures."""
    name = f"{meta.get('name', 'model')} ({meta.get('backbone', '?')}, {meta.get('created', '')[:10]})"
    test = meta.get("test")
    untreated = ((test or {}).get("by_kind") or {}).get("untreated") or {}
    if untreated.get("n_fractured"):
        called = untreated["fractured_called"]
        right = untreated.get("likely_fracture_right")
        return (f"{name}: test, fractures with nothing in view: AUC {untreated['auc']:.2f}, "
                f"{called['normal']:.0%} called normal, {called['uncertain']:.0%} uncertain"
                + (f"; Likely FRACTURE right {right:.0%}" if right is not None else "")
                + f" ({untreated['n_fractured']} fractured, {untreated['n_normal']} normal "
                  f"{'radiographs' if test.get('counted') == 'radiographs' else 'films'})")
    if test:
        if "auc" in test:
            lo, hi = test.get("auc_ci95", [None, None])
            ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None else ""
            return (f"{name}: test AUC {test['auc']:.2f}{ci}, sensitivity {test['sensitivity']:.2f}, "
                    f"specificity {test['specificity']:.2f} on {test['n']} images")
        return f"{name}: test accuracy {test['accuracy']:.1%} on {test['n']} images"
    val = meta.get("validation") or {}
    if "auc" in val and val["auc"] is not None:
        return f"{name}: validation AUC {val['auc']:.2f} on {val.get('n', '?')} images (no test figures stored)"
    if val.get("accuracy") is not None:
        return f"{name}: validation accuracy {val['accuracy']:.1%} on {val.get('n', '?')} images"
    return name
