"""Layout checks of the analysis figures: nothing clipped at the figure's edges, no two axes
(with their tick labels, axis labels, titles and legends) overlapping, no two labels overlapping."""

from __future__ import annotations

from itertools import combinations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox, BboxBase

#: Pixels two boxes may share (antialiased edges that touch).
TOLERANCE_PX = 1.0


def _overlap(a: Bbox, b: Bbox) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE_PX
            and min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE_PX)


def _inside(box: Bbox, outer: BboxBase) -> bool:
    return (box.x0 >= outer.x0 - TOLERANCE_PX and box.y0 >= outer.y0 - TOLERANCE_PX
            and box.x1 <= outer.x1 + TOLERANCE_PX and box.y1 <= outer.y1 + TOLERANCE_PX)


def _labels(fig: Figure) -> list[Text]:
    """Every visible, non-empty text of the figure but the tick labels: titles, axis labels,
    offset texts, legend texts, texts placed in the axes or in the figure. (An axes' tight box holds
    its tick labels, and matplotlib keeps them apart from its axis labels.)"""
    out: list[Text] = []
    for ax in fig.axes:
        ticks = [*ax.xaxis.get_major_ticks(), *ax.xaxis.get_minor_ticks(),
                 *ax.yaxis.get_major_ticks(), *ax.yaxis.get_minor_ticks()]
        tick_labels = {id(label) for tick in ticks for label in (tick.label1, tick.label2)}
        out += [t for t in ax.findobj(Text) if id(t) not in tick_labels]
    out += fig.texts
    return [t for t in out if t.get_visible() and t.get_text()]


def layout_problems(fig: Figure) -> list[str]:
    """What is clipped or overlaps in ``fig`` once drawn (empty: a clean layout)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    problems = []
    boxes = [(ax, ax.get_tightbbox(renderer)) for ax in fig.axes]
    for ax, box in boxes:
        if box is not None and not _inside(box, fig.bbox):
            problems.append(f"axes {ax.get_title(loc='center') or ax.get_title(loc='right')!r} "
                            f"reaches outside the figure: {box} vs {fig.bbox}")
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        if box_a is not None and box_b is not None and _overlap(box_a, box_b):
            problems.append(f"axes {a.get_title()!r} and {b.get_title()!r} overlap")
    texts = [(t, t.get_window_extent(renderer)) for t in _labels(fig)]
    for t, box in texts:
        if not _inside(box, fig.bbox):
            problems.append(f"text {t.get_text()!r} is clipped")
    for (s, box_s), (t, box_t) in combinations(texts, 2):
        if _overlap(box_s, box_t):
            problems.append(f"texts {s.get_text()!r} and {t.get_text()!r} overlap")
    return problems
