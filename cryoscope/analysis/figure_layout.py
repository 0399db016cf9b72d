"""Fixed layout and rendering shared by the analysis figures.

Axes are placed at fixed positions given in inches (:func:`place`), margins sized once for the
labels they hold, instead of a constrained or tight layout, which measures every tick label of
every axes at every draw. Legends sit at fixed places or in the corner with the fewest data points
(:func:`corner_legend`, counted with numpy) — not ``loc="best"``, which tests every candidate place
against every drawn path. A figure is rendered once by the Agg canvas (no pyplot state, no GUI
backend) and written as a 256-color PNG (:func:`save_png`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

__all__ = ["DPI", "LEGEND_PT", "MAX_TICKS", "PNG_COMPRESS_LEVEL", "Corner", "color", "colors",
           "corner_legend", "emptiest_corner", "figure_style", "legend", "new_figure", "place",
           "place_text", "save_png"]

#: Resolution of the PNG files (pixels per inch).
DPI = 110
#: zlib level of the PNG files: 1 writes them about twice as fast as the default 6 (the
#: figures, 256-color images, are mostly flat color and compress well anyway).
PNG_COMPRESS_LEVEL = 1
#: At most about this many intervals between the labelled ticks of a linear axis (matplotlib's
#: default fits up to 9 on a wide axes; every tick is several artists to build and draw).
MAX_TICKS = 6
#: Font size of the legends (points).
LEGEND_PT = 7
#: A legend place inside the axes.
Corner = Literal["upper right", "upper left", "lower left", "lower right"]


@contextmanager
def figure_style() -> Iterator[None]:
    """Within: the settings the figures are drawn with — glyphs rasterized without FreeType's
    auto-hinter, which halves the cost of every label and looks as sharp at this resolution
    (build and save the figures inside)."""
    with matplotlib.rc_context({"text.hinting": "no_hinting"}):
        yield


#: The tab10 colors (RGB), looked up once (a colormap lookup copies the colormap); as an array.
_TAB10 = tuple(to_rgb(c) for c in matplotlib.color_sequences["tab10"])
_TAB10_ARRAY = np.array(_TAB10)


def color(i: int) -> tuple[float, float, float]:
    """The ``i``-th color of the tab10 cycle (states, centers, regions)."""
    return _TAB10[i % 10]


def colors(indices: np.ndarray) -> np.ndarray:
    """:func:`color` of each index: ``[n, 3]`` RGB."""
    out: np.ndarray = _TAB10_ARRAY[np.asarray(indices, int) % 10]
    return out


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure of the given size with an Agg canvas and no layout engine."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def place(fig: Figure, left_in: float, top_in: float, width_in: float, height_in: float,
          **kwargs: Any) -> Axes:
    """Axes whose data area starts ``left_in`` from the figure's left edge and ``top_in`` below
    its top edge, ``width_in`` × ``height_in`` large (inches); keyword arguments go to
    :meth:`Figure.add_axes` (``sharex``, …)."""
    w, h = fig.get_size_inches()
    rect = (left_in / w, 1.0 - (top_in + height_in) / h, width_in / w, height_in / h)
    ax = fig.add_axes(rect, **kwargs)
    ax.set_title("", y=1.0)  # titles at a fixed height: not moved after measuring tick labels
    for axis in (ax.xaxis, ax.yaxis):  # as many ticks as matplotlib would, at most MAX_TICKS
        locator = axis.get_major_locator()
        if isinstance(locator, MaxNLocator):
            locator.set_params(nbins=max(1, min(MAX_TICKS, axis.get_tick_space())))
    return ax


def place_text(fig: Figure, left_in: float, top_in: float, text: str, **kwargs: Any) -> None:
    """``text`` with its top left corner ``left_in`` from the figure's left edge and ``top_in``
    below its top edge (inches), without axes; keyword arguments go to :meth:`Figure.text`."""
    w, h = fig.get_size_inches()
    fig.text(left_in / w, 1.0 - top_in / h, text, ha="left", va="top", **kwargs)


def emptiest_corner(ax: Axes, x: np.ndarray, y: np.ndarray, width: float, height: float
                    ) -> Corner:
    """The corner of ``ax`` (a legend ``loc``) whose ``width`` × ``height`` box (axes fraction)
    holds the fewest of the points ``x``, ``y`` (data coordinates, the axes' limits and scales
    set): a cheap stand-in for ``loc="best"``. Ties go to the upper right, then upper left."""
    xy = np.column_stack([np.ravel(x), np.ravel(y)]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (ax.transScale + ax.transLimits).transform(xy)
    fx, fy = frac[:, 0], frac[:, 1]
    inside = (fx >= 0) & (fx <= 1) & (fy >= 0) & (fy <= 1)
    left, right = inside & (fx < width), inside & (fx > 1 - width)
    low, high = fy < height, fy > 1 - height
    counts: dict[Corner, int] = {
        "upper right": int(np.count_nonzero(right & high)),
        "upper left": int(np.count_nonzero(left & high)),
        "lower left": int(np.count_nonzero(left & low)),
        "lower right": int(np.count_nonzero(right & low))}
    return min(counts, key=lambda k: counts[k])


def corner_legend(ax: Axes, x: np.ndarray, y: np.ndarray, max_rows: int = 8) -> None:
    """A legend (in columns of at most ``max_rows`` entries) in the corner of ``ax`` with the
    fewest of the plotted points ``x``, ``y``; its size estimated from its labels."""
    labels = ax.get_legend_handles_labels()[1]
    if not labels:
        return
    ncol = -(-len(labels) // max_rows)
    rows = -(-len(labels) // ncol)
    width_pt = ax.bbox.width * 72 / ax.figure.dpi
    height_pt = ax.bbox.height * 72 / ax.figure.dpi
    # 7 pt text: ~0.55 em per character, 1.2 em per row, 4.5 em of handle and padding.
    box_w = ncol * (0.55 * max(len(s) for s in labels) + 4.5) * LEGEND_PT / width_pt
    box_h = (1.2 * rows + 1.5) * LEGEND_PT / height_pt
    legend(ax, emptiest_corner(ax, x, y, box_w, box_h), ncol=ncol)


def legend(ax: Axes, loc: Corner, **kwargs: Any) -> None:
    """A small legend at the fixed place ``loc`` when the axes has labelled artists."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc=loc, fontsize=LEGEND_PT, **kwargs)


def save_png(fig: Figure, path: Path) -> None:
    """Render ``fig`` once (Agg) and write it as PNG with an adaptive palette of 256 colors: the
    figures are flat fills, colormaps and antialiased edges, so the palette changes the pixels
    by about one level of 255 on average (more only on a few edge pixels, ~0.3 %), and the file
    is about three times smaller and faster to write than full RGBA."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    rgb = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                           "RGBA", 0, 1).convert("RGB")
    rgb.quantize(256, method=Image.Quantize.FASTOCTREE).save(
        path, format="png", compress_level=PNG_COMPRESS_LEVEL)
