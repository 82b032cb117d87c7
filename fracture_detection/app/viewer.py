"""The image view: zoom, pan, fit / 1:1, window/level, heatmap and fracture regions.

A :class:`Picture` is made off the event loop (in the worker thread): the X-ray as a pyramid of
halvings and the heatmap at low resolution.  Drawing takes only the visible part of the level
nearest above the screen's resolution, so a frame costs a few milliseconds whatever the size
of the film.  Upscaling: *Fit* may enlarge a small film with a good filter (Lanczos); an
explicit zoom of 2× or more shows the real pixels as blocks; 1:1 shows them as they are.
"""
from __future__ import annotations

import tkinter as tk

import customtkinter as ctk
import numpy as np
from PIL import Image, ImageTk

from .visual import REGION_BINS, colourbar, heat_image, heat_layer, place_labels, region_colour, region_label

SMALL_SIDE = 512            # levels up to this size stay in memory for every image of a worklist
HEAT_SIDE = 256             # the heatmap is smooth: this resolution is plenty at any zoom
PIXEL_ZOOM = 2.0            # from this explicit magnification on, pixels are shown as blocks
MAX_ZOOM = 32.0
WHEEL_STEP = 1.25
AS_STORED = (128.0, 256.0)  # window (level, width) that leaves 8-bit pixels as they are
PRESETS = ("As stored", "Auto contrast", "High contrast")   # window presets (W/L)
DEFAULT_PRESET = "Auto contrast"   # films open readable; "As stored" is a click away in the menu
DRAG_DOUBLING = 240         # px of horizontal right-drag that doubles (right) or halves (left) the width
DRAG_LEVEL = 1 / 512        # vertical right-drag: the level moves this share of the width per pixel
MIN_WIDTH = 16              # the narrowest window a drag gives
CANVAS_BG = "#161616"
LEGEND_HEIGHT = 26          # a fixed strip under the image: the legends never cover the film


class Picture:
    """An X-ray ready to draw: ``levels[k]`` is the image halved ``k`` times (level 0 is the
    original, kept while :meth:`drop_full` has not been called), ``heat`` the heatmap as an
    8-bit image on the absolute 0-1 scale, at most :data:`HEAT_SIDE` a side."""

    def __init__(self, levels: list[Image.Image], heat: Image.Image | None, size: tuple[int, int]):
        self.levels, self.heat, self.size = levels, heat, size

    @classmethod
    def from_array(cls, rgb: np.ndarray, heatmap=None) -> "Picture":
        """``rgb`` as :func:`images.load_image` returns it; ``heatmap(shape)`` gives the [0, 1] map
        for a ``(height, width)`` (e.g. ``Prediction.heatmap``), or None."""
        from ..io.images import is_grey
        img = Image.fromarray(np.ascontiguousarray(rgb[:, :, 0] if is_grey(rgb) else rgb))
        levels = [img]
        while max(levels[-1].size) > 64:
            levels.append(levels[-1].reduce(2))
        heat = None
        if heatmap is not None:
            f = min(1.0, HEAT_SIDE / max(img.size))
            h = heatmap((max(1, round(img.height * f)), max(1, round(img.width * f))))
            heat = heat_image(h) if h is not None else None
        return cls(levels, heat, img.size)

    @property
    def has_full(self) -> bool:
        return self.levels[0].size == self.size

    @property
    def nbytes(self) -> int:
        return sum(im.width * im.height * len(im.getbands()) for im in self.levels)

    def drop_full(self) -> None:
        """Keep only the levels of at most :data:`SMALL_SIDE` a side (memory for long worklists)."""
        small = [im for im in self.levels if max(im.size) <= SMALL_SIDE]
        self.levels = small or self.levels[-1:]

    def with_full(self, other: "Picture") -> None:
        self.levels = other.levels

    def pixel_range(self) -> tuple[float, float]:
        """The 1st and 99th percentile of the pixels (of the smallest level)."""
        if getattr(self, "_range", None) is None:
            small = np.asarray(self.levels[-1].convert("L"))
            lo, hi = np.percentile(small, [1, 99])
            self._range = float(lo), float(max(hi, lo + 8))
        return self._range

    def auto_window(self) -> tuple[float, float]:
        """Level and width spanning the 1st to 99th percentile of the pixels."""
        lo, hi = self.pixel_range()
        return (lo + hi) / 2, hi - lo

    def render(self, box, out_size, window=AS_STORED, heat: bool = False, smooth: bool = True) -> Image.Image:
        """The part ``box`` = (x0, y0, x1, y1) of the original image, in original pixels, drawn at
        ``out_size`` = (width, height) screen pixels, windowed, with the heatmap if asked."""
        x0, y0, x1, y1 = box
        w, h = out_size
        scale = w / max(1e-9, x1 - x0)               # screen pixels per original pixel
        level = self._level_for(scale)
        fx, fy = self.size[0] / level.width, self.size[1] / level.height
        lbox = (x0 / fx, y0 / fy, x1 / fx, y1 / fy)
        on_level = scale * fx                          # screen pixels per level pixel
        if abs(on_level - 1) < 1e-6 or (not smooth and on_level >= PIXEL_ZOOM):
            resample = Image.NEAREST
        else:
            resample = Image.LANCZOS
        out = level.resize((w, h), resample, box=lbox)
        if tuple(window) != AS_STORED:
            lut = window_lut(*window)
            out = out.point(lut * len(out.getbands()))
        if heat and self.heat is not None:
            hx, hy = self.heat.width / self.size[0], self.heat.height / self.size[1]
            layer = self.heat.resize((w, h), Image.BILINEAR, box=(x0 * hx, y0 * hy, x1 * hx, y1 * hy))
            return Image.alpha_composite(out.convert("RGBA"), heat_layer(layer)).convert("RGB")
        return out

    def _level_for(self, scale: float) -> Image.Image:
        """The smallest level that still has at least one pixel per screen pixel."""
        best = self.levels[0]
        for im in self.levels:
            if im.width / self.size[0] * 1.0001 >= scale:
                best = im
        return best


def window_lut(level: float, width: float) -> list[int]:
    """0-255 -> 0-255 for a window of ``width`` centred on ``level``."""
    v = (np.arange(256) - (level - width / 2)) / max(width, 1.0) * 255
    return np.clip(v, 0, 255).round().astype(np.uint8).tolist()


class Viewer(ctk.CTkFrame):
    """A canvas that shows one :class:`Picture`, with its toolbar.

    Mouse: wheel zooms at the pointer, left-drag pans, right-drag sets the window (horizontal:
    width, vertical: level), double-click switches between fit and 1:1 at the pointer."""

    def __init__(self, master, on_change=None, **kw):
        super().__init__(master, **kw)
        self.on_change = on_change
        self.picture: Picture | None = None
        self.regions: list[dict] = []
        self.quiet = False          # the film is not "Likely FRACTURE": its boxes are drawn quietly
        self.all_regions = False    # on such a film, every region rather than the top one (A toggles)
        self.placeholder = ""
        self.scale, self.ox, self.oy = 1.0, 0.0, 0.0
        self.fit_mode = True
        self.window = AS_STORED
        self._drag = None
        self._pending = None
        self._photo = None
        self._legend_photos: dict[int, ImageTk.PhotoImage] = {}   # colour bars by length
        self.last_render_ms = 0.0
        self.last_image, self.last_origin = None, (0, 0)   # what the last frame drew, and where
        self._build()

    # --- widgets ---------------------------------------------------------------------

    def _build(self):
        self.grid_columnconfigure(0, weight=1)
        self.grid_rowconfigure(1, weight=1)
        bar = ctk.CTkFrame(self, fg_color="transparent")
        bar.grid(row=0, column=0, sticky="ew", padx=6, pady=(6, 2))
        self.fit_button = ctk.CTkButton(bar, text="Fit", width=38, command=self.fit)
        self.one_button = ctk.CTkButton(bar, text="1:1", width=38, command=lambda: self.one_to_one())
        self.reset_button = ctk.CTkButton(bar, text="Reset", width=46, command=self.reset)
        self.preset_menu = ctk.CTkOptionMenu(bar, values=list(PRESETS), width=100, command=self.apply_preset)
        self.preset_menu.set(DEFAULT_PRESET)
        self.heat_switch = ctk.CTkSwitch(bar, text="Heatmap", width=40, switch_width=32, command=self.redraw)
        self.boxes_switch = ctk.CTkSwitch(bar, text="Boxes", width=40, switch_width=32, command=self.redraw)
        self.boxes_switch.select()
        for i, w in enumerate((self.fit_button, self.one_button, self.reset_button, self.preset_menu,
                               self.heat_switch, self.boxes_switch)):
            w.grid(row=0, column=i, padx=(0, 4))
        self.canvas = tk.Canvas(self, bg=CANVAS_BG, highlightthickness=0, width=1, height=1, cursor="fleur")
        self.canvas.grid(row=1, column=0, sticky="nsew", padx=6)
        self.legend = tk.Canvas(self, bg=CANVAS_BG, highlightthickness=0, width=1, height=LEGEND_HEIGHT)
        self.legend.grid(row=2, column=0, sticky="ew", padx=6, pady=(0, 6))
        self.legend.bind("<Configure>", lambda _e: self._draw_legend())
        c = self.canvas
        c.bind("<Configure>", self._on_configure)
        c.bind("<ButtonPress-1>", self._press)
        c.bind("<B1-Motion>", self._pan_motion)
        c.bind("<ButtonRelease-1>", self._release)
        c.bind("<Double-Button-1>", self._double)
        right = "2" if self.tk.call("tk", "windowingsystem") == "aqua" else "3"
        c.bind(f"<ButtonPress-{right}>", self._press)
        c.bind(f"<B{right}-Motion>", self._window_motion)
        c.bind(f"<ButtonRelease-{right}>", self._release)
        c.bind("<MouseWheel>", lambda e: self.zoom(WHEEL_STEP if e.delta > 0 else 1 / WHEEL_STEP, e.x, e.y))
        c.bind("<Button-4>", lambda e: self.zoom(WHEEL_STEP, e.x, e.y))
        c.bind("<Button-5>", lambda e: self.zoom(1 / WHEEL_STEP, e.x, e.y))

    # --- what is shown ---------------------------------------------------------------

    def show(self, picture: Picture | None, regions=(), placeholder: str = "", keep_view: bool = False,
             quiet: bool = False):
        """Show a picture (None: only ``placeholder`` text).  A new picture is fitted to the view and
        windowed by the chosen preset (each film its own auto contrast); a window the reader set
        by dragging ("Custom") is kept, as a reader expects while stepping through a study.
        ``quiet``: the film is not "Likely FRACTURE", so its boxes are drawn thin and dashed, and only
        the top one unless the reader asked for all (:meth:`toggle_all_regions`)."""
        same_size = picture is not None and self.picture is not None and picture.size == self.picture.size
        self.picture, self.regions, self.placeholder = picture, list(regions or []), placeholder
        self.quiet = quiet
        if not (keep_view and same_size):
            self.fit_mode = True
            self._fit_geometry()
        if self.preset_menu.get() in PRESETS:
            self.window = self._preset_window(self.preset_menu.get())
        self.redraw()

    @property
    def heat_on(self) -> bool:
        return bool(self.heat_switch.get())

    @property
    def boxes_on(self) -> bool:
        return bool(self.boxes_switch.get())

    def toggle_heat(self):
        self.heat_switch.toggle()

    def toggle_boxes(self):
        self.boxes_switch.toggle()

    def toggle_all_regions(self):
        """On a film that is not "Likely FRACTURE": every region, or only the top one (the default)."""
        self.all_regions = not self.all_regions
        self.redraw()

    @property
    def shown_regions(self) -> list[dict]:
        """The regions drawn: all of them on a "Likely FRACTURE" film, else the top one unless asked for all."""
        if not self.boxes_on:
            return []
        return self.regions if not self.quiet or self.all_regions else self.regions[:1]

    # --- geometry --------------------------------------------------------------------

    def _view_size(self) -> tuple[int, int]:
        return max(1, self.canvas.winfo_width()), max(1, self.canvas.winfo_height())

    def _fit_geometry(self):
        if self.picture is None:
            return
        cw, ch = self._view_size()
        w, h = self.picture.size
        self.scale = max(1e-4, min(cw / w, ch / h))
        self.ox, self.oy = (cw - w * self.scale) / 2, (ch - h * self.scale) / 2

    def fit(self):
        self.fit_mode = True
        self._fit_geometry()
        self.redraw()

    def one_to_one(self, x: float | None = None, y: float | None = None):
        cw, ch = self._view_size()
        self.zoom_to(1.0, cw / 2 if x is None else x, ch / 2 if y is None else y)

    def zoom(self, factor: float, x: float, y: float):
        self.zoom_to(self.scale * factor, x, y)

    def zoom_to(self, scale: float, x: float, y: float):
        """Zoom to ``scale`` screen pixels per image pixel, keeping the image point under (x, y)."""
        if self.picture is None:
            return
        cw, ch = self._view_size()
        lowest = min(0.5 * min(cw / self.picture.size[0], ch / self.picture.size[1]), 1.0)
        scale = min(MAX_ZOOM, max(lowest, scale))
        ix, iy = (x - self.ox) / self.scale, (y - self.oy) / self.scale
        self.scale, self.fit_mode = scale, False
        self.ox, self.oy = x - ix * scale, y - iy * scale
        if abs(scale - 1.0) < 1e-9:  # 1:1 on whole pixels, so that each pixel is shown as it is
            self.ox, self.oy = round(self.ox), round(self.oy)
        self.redraw()

    def pan(self, dx: float, dy: float):
        self.ox, self.oy = self.ox + dx, self.oy + dy
        self.fit_mode = False
        self.redraw()

    def set_window(self, level: float, width: float):
        """Set the window; its level stays within the film's own range of pixels and its width at
        least :data:`MIN_WIDTH`, so that a window never turns the film black or white."""
        lo, hi = self.picture.pixel_range() if self.picture is not None else (0.0, 255.0)
        self.window = (float(np.clip(level, lo, hi)), float(np.clip(width, MIN_WIDTH, 512)))
        self.redraw()

    def _preset_window(self, name: str) -> tuple[float, float]:
        if self.picture is None or name == "As stored":
            return AS_STORED
        level, width = self.picture.auto_window()
        return level, width if name == "Auto contrast" else width / 2

    def apply_preset(self, name: str):
        self.preset_menu.set(name)
        self.window = self._preset_window(name)
        self.redraw()

    def reset(self):
        """Fit, and the default window (:data:`DEFAULT_PRESET`)."""
        self.apply_preset(DEFAULT_PRESET)
        self.fit()

    def image_to_canvas(self, x: float, y: float) -> tuple[float, float]:
        return self.ox + x * self.scale, self.oy + y * self.scale

    # --- events ----------------------------------------------------------------------

    def _on_configure(self, _event=None):
        if self.fit_mode:
            self._fit_geometry()
        self.redraw()

    def _press(self, e):
        self._drag = (e.x, e.y)
        self.canvas.focus_set()

    def _release(self, _e):
        self._drag = None

    def _pan_motion(self, e):
        if self._drag is not None:
            self.pan(e.x - self._drag[0], e.y - self._drag[1])
            self._drag = (e.x, e.y)

    def _window_motion(self, e):
        if self._drag is not None:
            dx, dy = e.x - self._drag[0], e.y - self._drag[1]
            self._drag = (e.x, e.y)
            self.preset_menu.set("Custom")
            level, width = self.window
            self.set_window(level + dy * width * DRAG_LEVEL, width * 2 ** (dx / DRAG_DOUBLING))

    def _double(self, e):
        if abs(self.scale - 1.0) < 1e-6:
            self.fit()
        else:
            self.one_to_one(e.x, e.y)

    # --- drawing ---------------------------------------------------------------------

    def redraw(self):
        """Draw at the next idle moment (many events in a row make one frame)."""
        if self._pending is None:
            self._pending = self.after_idle(self._render)

    def _render(self):
        import time
        self._pending = None
        start = time.perf_counter()
        c = self.canvas
        c.delete("all")
        cw, ch = self._view_size()
        pic = self.picture
        if pic is None:
            c.create_text(cw / 2, ch / 2, text=self.placeholder, fill="#b0b0b0", width=max(100, cw - 60),
                          font=("TkDefaultFont", 13), justify="center", tags="placeholder")
            self._photo = self.last_image = None
            self._draw_legend()
            return
        w, h = pic.size
        # the visible part of the image, in image pixels, and where it lands on the canvas
        x0, y0 = max(0.0, -self.ox / self.scale), max(0.0, -self.oy / self.scale)
        x1, y1 = min(w, (cw - self.ox) / self.scale), min(h, (ch - self.oy) / self.scale)
        if x1 > x0 and y1 > y0:
            sx0, sy0 = self.image_to_canvas(x0, y0)
            sx1, sy1 = self.image_to_canvas(x1, y1)
            left, top = round(sx0), round(sy0)
            out = (max(1, round(sx1) - left), max(1, round(sy1) - top))
            img = pic.render((x0, y0, x1, y1), out, self.window, self.heat_on, smooth=self.fit_mode)
            self.last_image, self.last_origin = img, (left, top)
            self._photo = ImageTk.PhotoImage(img, master=self.canvas)
            c.create_image(left, top, image=self._photo, anchor="nw", tags="image")
        if self.shown_regions:
            self._draw_regions()
        self._draw_legend()
        self.last_render_ms = (time.perf_counter() - start) * 1000
        if self.on_change:
            self.on_change()

    def _draw_regions(self):
        """Each region's box in its score's colour, then every label on top of all the boxes, each
        where :func:`place_labels` finds room: never over another label or box's outline where it
        can move, and always on the canvas."""
        c = self.canvas
        boxes, regions = [], self.shown_regions
        dash, width, font = ((5, 4), 1, ("TkDefaultFont", 9)) if self.quiet else ((), 2, ("TkDefaultFont", 10, "bold"))
        for r in regions:
            box = (*self.image_to_canvas(*r["box"][:2]), *self.image_to_canvas(*r["box"][2:]))
            c.create_rectangle(*box, outline="black", width=width + 2, dash=dash, tags="region")
            c.create_rectangle(*box, outline=region_colour(r["score"]), width=width, dash=dash,
                               tags=("region", "region-box", "quiet" if self.quiet else "bold"))
            boxes.append(box)
        labels = [c.create_text(0, 0, text=region_label(r["score"]), anchor="nw", fill=region_colour(r["score"]),
                                font=font, tags=("region", "region-label"))
                  for r in regions]
        extents = [c.bbox(label) for label in labels]
        sizes = [(e[2] - e[0] + 4, e[3] - e[1]) for e in extents]
        for label, e, rect in zip(labels, extents, place_labels(boxes, sizes, self._view_size())):
            c.move(label, rect[0] + 2 - e[0], rect[1] - e[1])
            back = c.create_rectangle(*rect, fill="black", outline="", tags=("region", "region-label-back"))
            c.tag_lower(back, label)

    @property
    def readout(self) -> str:
        """Zoom and window, as shown at the right of the strip under the image."""
        if self.picture is None:
            return ""
        level, width = self.window
        return f"{'Fit ' if self.fit_mode else ''}{self.scale:.0%} · W {width:.0f} L {level:.0f}"

    def _draw_legend(self):
        """Under the image: the heatmap's colour bar (absolute 0-1), the boxes' score colours, and
        at the right the zoom and window.  Where the strip is narrow the legends are worded
        shortly, and the zoom and window go on a dark patch over the image's top right corner."""
        c = self.legend
        c.delete("all")
        self.canvas.delete("readout")
        right = c.winfo_width() - 8
        readout = c.create_text(right, LEGEND_HEIGHT / 2, text=self.readout, anchor="e", fill="#c8c8c8",
                                font=("TkDefaultFont", 9), tags="readout")
        end = self._draw_legends(short=False)
        if end > c.bbox(readout)[0] - 8:
            c.delete("legend")
            end = self._draw_legends(short=True)
        if end > c.bbox(readout)[0] - 8:  # no room beside the legends: the readout goes over the image
            c.delete(readout)
            v = self.canvas
            item = v.create_text(v.winfo_width() - 10, 9, text=self.readout, anchor="ne", fill="#f0f0f0",
                                 font=("TkDefaultFont", 9), tags="readout")
            x0, y0, x1, y1 = v.bbox(item)
            v.tag_lower(v.create_rectangle(x0 - 4, y0 - 2, x1 + 4, y1 + 2, fill="#000000", outline="",
                                           stipple="", tags=("readout", "readout-back")), item)

    def _draw_legends(self, short: bool) -> int:
        """The heatmap's and boxes' legends from the strip's left; returns where they end."""
        c = self.legend
        x, y, font = 8, LEGEND_HEIGHT / 2, ("TkDefaultFont", 9)

        def text(s, **kw):
            nonlocal x
            item = c.create_text(x, y, text=s, anchor="w", fill="white", font=font, tags="legend", **kw)
            x = c.bbox(item)[2] + 6

        if self.heat_on and self.picture is not None and self.picture.heat is not None:
            length = 60 if short else 120
            if length not in self._legend_photos:
                self._legend_photos[length] = ImageTk.PhotoImage(colourbar(length, 10), master=self.legend)
            text("Heat 0" if short else "Heatmap  0")
            c.create_image(x, y, image=self._legend_photos[length], anchor="w", tags=("legend", "colourbar"))
            x += length + 6
            text("1" if short else "1 (absolute)")
            x += 8 if short else 14
        if self.boxes_on and self.regions:
            text("Boxes:")
            for _, colour, label in REGION_BINS:
                c.create_rectangle(x, y - 5, x + 10, y + 5, fill=colour, outline="white", tags="legend")
                x += 14
                text(label.replace("cell score ", "") if short else label)
                x += 0 if short else 4
            if self.quiet and len(self.regions) > 1:   # the toggle: click it, or press A
                n = len(self.regions)
                words = ((f"all {n} (A)" if short else f"all {n} regions · top only: A") if self.all_regions else
                         (f"top of {n} (A)" if short else f"top region of {n} · all: A"))
                item = c.create_text(x + 4, y, text=words, anchor="w", fill="#9ecbff", font=font + ("underline",),
                                     tags=("legend", "regions-toggle"))
                c.tag_bind(item, "<Button-1>", lambda _e: self.toggle_all_regions())
                c.tag_bind(item, "<Enter>", lambda _e: c.configure(cursor="hand2"))
                c.tag_bind(item, "<Leave>", lambda _e: c.configure(cursor=""))
                x = c.bbox(item)[2] + 6
        return x
