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


def draw_regions(img: Image.Image, regions, scale: float = 1.0, font=None) -> Image.Image:
    """A copy of ``img`` with each region's box (in original pixels, times ``scale``) drawn in its
    score's colour with a dark outline, labelled with the score; labels go on top of every box."""
    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 300))
    for region in regions:
        x0, y0, x1, y1 = (v * scale for v in region["box"])
        colour = region_colour(region["score"])
        draw.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), outline="black", width=width + 2)
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
    for region in regions:
        x0, y0 = (v * scale for v in region["box"][:2])
        text = region_label(region["score"])
        tx, ty = x0, max(0, y0 - (font.size if font else 11) - 4)
        box = draw.textbbox((tx, ty), text, font=font)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill="black")
        draw.text((tx, ty), text, fill=region_colour(region["score"]), font=font)
    return out


def model_summary(meta: dict) -> str:
    """One line on how good a model measured, preferring the held-out test figures."""
    name = f"{meta.get('name', 'model')} ({meta.get('backbone', '?')}, {meta.get('created', '')[:10]})"
    test = meta.get("test")
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
