"""Pictures for people: the heatmap over the X-ray, and the model figures worth showing."""
from __future__ import annotations

import numpy as np
from PIL import Image


def heatmap_overlay(rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Blend a [0, 1] heatmap (same height and width) over the image with a perceptual colour map."""
    from matplotlib import colormaps
    colours = (colormaps["inferno"](heat)[:, :, :3] * 255).astype(np.float32)
    weight = (alpha * np.clip(heat, 0, 1) ** 0.7)[:, :, None]  # cool regions stay nearly transparent
    out = rgb.astype(np.float32) * (1 - weight) + colours * weight
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


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
