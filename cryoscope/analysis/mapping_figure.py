"""``mapping.png``: the charging-state map laid out like the paper's Fig. 4.

(a) APD intensity and (b) lifetime (mean photon delay per frame) against time, (c) the spectral
time trace with one configuration stripe per center and the jumps of two centers at once marked,
(d) each center's peak energy with its jumps marked by kind, (e) the state diagram as a table:
the states (configurations) with their share of frames and the number of transitions from each to
each other (a table stays readable with a dozen states, where arrows between them would cross);
beside (c), each center's numbers and the jumps by kind.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from cryoscope.analysis.centers import CONFIGURATIONS
from cryoscope.analysis.figure_layout import (
    color,
    colors,
    legend,
    new_figure,
    place,
    place_text,
)
from cryoscope.analysis.report import AnalysisResult
from cryoscope.analysis.trace import IntensityTrace

__all__ = ["frame_stripe", "intensity_trace", "mapping_figure", "spectral_trace_image",
           "transition_counts"]

_CONFIG_COLORS = {"X": "tab:green", "X*": "tab:orange", "dark": "0.35"}
_KIND_MARKERS = {"charging": "v", "discharging": "^", "surface_charge": "s", "diffusion": "."}

#: Most frame columns drawn in a spectral time trace (beyond it, runs of frames are averaged).
MAX_IMAGE_FRAMES = 1600


def spectral_trace_image(ax: Axes, energy_ev: np.ndarray, spectra: np.ndarray,
                         energy_range: tuple[float, float] | None = None) -> None:
    """The spectral time trace ``[frames, pixels]`` (frame against energy) as one image over
    ``energy_range`` (eV; default all pixels), which becomes the y limits: the spectra
    resampled linearly onto a uniform energy grid of as many points (the pixels' energies are
    nearly, not exactly, evenly spaced) — one image instead of a quadrilateral per pixel and
    frame — and, beyond :data:`MAX_IMAGE_FRAMES` frames, averaged over runs of consecutive frames
    (more columns than a figure has pixels show nothing more), so its cost grows no faster than
    the data and its memory not with the frames. Only the pixels in range are resampled; beyond
    one per pixel row of the axes they are averaged in runs (no narrow line falls between the
    rows the canvas would pick), and they are colored here (magma, 0 to the 99.9th percentile
    of all pixels), so the canvas only scales a small RGBA image."""
    n_frames = spectra.shape[0]
    step_frames = max(1, math.ceil(n_frames / MAX_IMAGE_FRAMES))
    if step_frames > 1:
        usable = n_frames // step_frames * step_frames
        spectra = spectra[:usable].reshape(-1, step_frames, spectra.shape[1]).mean(axis=1)
    vmax = float(np.percentile(spectra, 99.9)) if spectra.size else 1.0
    lo, hi = energy_range if energy_range else (energy_ev[0], energy_ev[-1])
    first = max(int(np.searchsorted(energy_ev, lo, side="right")) - 1, 0)
    last = min(int(np.searchsorted(energy_ev, hi)), energy_ev.size - 1)
    n_grid = max(last - first + 1, 2)
    grid = np.linspace(energy_ev[first], energy_ev[last], n_grid)
    right = np.clip(np.searchsorted(energy_ev, grid, side="right"), 1, energy_ev.size - 1)
    left = right - 1
    w = ((grid - energy_ev[left])
         / np.maximum(energy_ev[right] - energy_ev[left], 1e-15)).astype(np.float32)
    image = spectra[:, left].astype(np.float32)
    image *= 1 - w
    image += spectra[:, right] * w
    rows = max(int(ax.bbox.height), 1)  # energy points beyond the axes' pixel rows: averaged
    per_row = n_grid // rows
    if per_row > 1:
        usable = n_grid // per_row * per_row
        image = image[:, :usable].reshape(image.shape[0], -1, per_row).mean(axis=2)
        grid = grid[:usable].reshape(-1, per_row).mean(axis=1)
    image *= np.float32(1 / vmax if vmax > 0 else 1.0)
    rgba = matplotlib.colormaps["magma"](image.T, bytes=True)
    step = grid[1] - grid[0]
    ax.imshow(rgba, aspect="auto", origin="lower", interpolation="nearest",
              extent=(0, spectra.shape[0] * step_frames, grid[0] - step / 2,
                      grid[-1] + step / 2))
    ax.set_xlim(0, n_frames)
    ax.set_ylim(lo, hi)


def intensity_trace(ax: Axes, trace: IntensityTrace, lw: float) -> None:
    """The count rate (kcps) against time from the trace's first bin, as a line; beyond two
    points per pixel column of ``ax`` it is drawn as each column's minimum and maximum, which
    covers the same pixels as every bin would."""
    t = trace.start_s - trace.start_s[0]
    rate = trace.rate_cps / 1e3
    per_column = rate.size // max(int(ax.bbox.width), 1)
    if per_column > 2:
        usable = rate.size // per_column * per_column
        runs = rate[:usable].reshape(-1, per_column)
        t = np.repeat(t[:usable:per_column], 2)
        rate = np.column_stack([runs.min(axis=1), runs.max(axis=1)]).ravel()
    ax.plot(t, rate, lw=lw, color="0.3")


def transition_counts(labels: np.ndarray, n_states: int) -> np.ndarray:
    """``[from, to]`` number of frame-to-frame changes between states."""
    out = np.zeros((n_states, n_states), int)
    change = labels[1:] != labels[:-1]
    np.add.at(out, (labels[:-1][change], labels[1:][change]), 1)
    return out


def frame_stripe(ax: Axes, start: np.ndarray, stop: np.ndarray, facecolors: np.ndarray,
                 y0: float, y1: float) -> None:
    """One colored bar per frame from ``start`` to ``stop`` (data x) between ``y0`` and ``y1``
    (axes fraction), ``facecolors`` ``[frames, 3]`` RGB: a single collection, fast for thousands
    of frames."""
    a, b = np.asarray(start, float), np.asarray(stop, float)
    verts = np.empty((a.size, 4, 2))
    verts[:, :, 0] = np.column_stack([a, b, b, a])
    verts[:, :, 1] = (y0, y0, y1, y1)
    ax.add_collection(PolyCollection(list(verts), facecolors=facecolors, linewidths=0,
                                     transform=ax.get_xaxis_transform()), autolim=False)


def mapping_figure(result: AnalysisResult) -> Figure:
    """The Fig. 4 layout (see the module docstring)."""
    # Inches: panels (a)-(d) in a wide left column, (a) and (b) sharing the time axis; the state
    # diagram, the centers' table and the legend of (d) in the right column.
    fig = new_figure(14, 11.5)
    left, wide, right_x, narrow = 0.8, 8.6, 9.65, 4.1
    cmap = result.centers
    sp = result.spectra
    labels = result.states.labels
    n_frames = labels.size
    start = result.photons.frames.start_ps[:n_frames] * 1e-12
    t = start - start[0] if n_frames else start
    n_centers = len(cmap.centers)

    ax_a = place(fig, left, 0.35, wide, 1.5)
    tr = result.trace
    intensity_trace(ax_a, tr, lw=0.3)
    frame_stripe(ax_a, t, t + result.measurement.exposure_s, colors(labels), 0.93, 1.0)
    ax_a.set(ylabel=f"kcps ({tr.bin_s * 1e3:g} ms)",
             title="(a) intensity (state of each frame on top)")
    ax_a.set_xlim(0, t[-1] + result.measurement.exposure_s if n_frames else 1)
    ax_a.tick_params(labelbottom=False)

    ax = place(fig, left, 2.2, wide, 1.3, sharex=ax_a)
    ax.plot(t, result.frame_delay_ns, ".", ms=2, color="tab:purple")
    ax.set(xlabel="time (s)", ylabel="mean delay (ns)", title="(b) lifetime per frame")

    ax = place(fig, left, 4.55, wide, 3.1)
    e = sp.energy_ev
    energy_range = None
    if cmap.lines:
        lo = min(ln.energy_ev for ln in cmap.lines) - 0.01
        hi = max(ln.energy_ev for ln in cmap.lines) + 0.006
        energy_range = (max(lo, e[0]), min(hi, e[-1]))
    spectral_trace_image(ax, e, sp.merged, energy_range)
    if cmap.lines:
        palette = np.array([to_rgb(_CONFIG_COLORS[name]) for name in CONFIGURATIONS])
        for c in range(n_centers):
            y0, y1 = 1.0 - 0.035 * (c + 1), 1.0 - 0.035 * c
            frame_stripe(ax, np.arange(n_frames), np.arange(1, n_frames + 1),
                         palette[cmap.configuration[:, c]], y0, y1)
    _letter_jumps(ax, [j.frame for j in result.jumps if len(j.centers) > 1], n_frames)
    ax.set(xlabel="frame", ylabel="energy (eV)",
           title="(c) spectral time trace; dotted, lettered: both centers jump\n"
                 "stripes: each center's configuration (green X, orange X*, grey dark), "
                 "top stripe center 0")

    ax = place(fig, left, 8.55, wide, 2.4)
    if n_centers:
        for c in range(n_centers):
            ax.plot(np.arange(n_frames), cmap.frame_energy_ev[:, c] * 1000, ".-", ms=2, lw=0.5,
                    color=color(c), label=f"center {c}")
        marks: dict[tuple[str, int], list[tuple[int, float]]] = {}  # (kind, center or -1: both)
        for j in result.jumps:
            for c, kind in zip(j.centers, j.kinds, strict=True):
                y = cmap.frame_energy_ev[j.frame, c] * 1000
                if math.isfinite(y):
                    marks.setdefault((kind, -1 if len(j.centers) > 1 else c), []).append(
                        (j.frame, y))
        for (kind, c), xy in marks.items():
            ax.plot(*zip(*xy, strict=True), _KIND_MARKERS[kind], ls="none", ms=6, mfc="none",
                    color="k" if c < 0 else color(c))
        for kind, marker in _KIND_MARKERS.items():
            ax.plot([], [], marker, color="k", mfc="none", label=kind)
    ax.set(xlabel="frame", ylabel="peak energy (meV)",
           title="(d) peak of each center; jumps by kind (black: both centers at once)")
    legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)

    _state_diagram(place(fig, right_x + 1.0, 0.35, narrow - 1.0, 3.6), result)

    rows = []
    if n_centers:
        for ctr in cmap.centers:
            pol = ctr.polarization
            rows.append(f"center {ctr.id}: ZPL {ctr.zpl_ev:.4f} eV "
                        f"(spread {ctr.zpl_spread_mev:.2f} meV)")
            rows.append(f"   φ = {pol.phi_deg:.1f} ± {pol.phi_err_deg:.1f}°, p = {pol.p:.2f}"
                        if pol is not None and pol.determined
                        else f"   p, φ not determined ({pol.problem})" if pol is not None
                        else "   no polarization fit")
            rows.append(f"   trion {ctr.charged_zpl_ev:.4f} eV ({ctr.trion_shift_mev:+.1f} meV)")
            rows.append(f"   LO replicas {ctr.replica_shifts_mev[0]:.1f}, "
                        f"{ctr.replica_shifts_mev[1]:.1f} meV")
    kinds: dict[str, int] = {}
    for j in result.jumps:
        kinds[j.kind] = kinds.get(j.kind, 0) + 1
    rows.append("jumps:" + ("".join(f"\n{n:5d} {k}" for k, n in sorted(kinds.items()))
                            or " none"))
    place_text(fig, right_x, 4.55, "\n".join(rows), fontsize=8, family="monospace")
    return fig


def _state_diagram(ax: Axes, result: AnalysisResult) -> None:
    """The states (number, each center's configuration, share of frames, in the state's color)
    against the states they went to: the number of frame-to-frame transitions from the row's
    state to the column's, darker for more."""
    labels = result.states.labels
    n_states = result.states.n_states
    counts = transition_counts(labels, n_states)
    shares = np.bincount(labels, minlength=n_states) / max(labels.size, 1)
    ax.imshow(np.sqrt(counts), cmap="Greys", vmin=0, vmax=2 * math.sqrt(max(counts.max(), 1)),
              interpolation="nearest", aspect="auto")
    # 7 pt text, smaller when the cells get smaller than 10 × 16 pt (many states).
    px_per_cell_pt = ax.figure.dpi / 72 * max(n_states, 1)
    cell_w, cell_h = ax.bbox.width / px_per_cell_pt, ax.bbox.height / px_per_cell_pt
    size = min(7.0, 0.7 * cell_h, 0.45 * cell_w)
    for a, b in zip(*np.nonzero(counts), strict=True):
        ax.text(b, a, str(counts[a, b]), ha="center", va="center", fontsize=size)
    ticks = np.arange(n_states)
    ax.set_xticks(ticks, [str(s) for s in ticks], fontsize=size)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for s in range(n_states):  # row labels as texts: colored, and no tick to build for each
        ax.text(-0.02, s, f"{s}: {'/'.join(result.states.names(s))} ({shares[s]:.0%})",
                ha="right", va="center", fontsize=size, color=color(s),
                transform=ax.get_yaxis_transform())
    ax.set_xlabel("to state")
    ax.set_title("(e) states; transitions from row to column", loc="right")


def jump_label(index: int) -> str:
    """The letters of the ``index``-th jump (from 0): A … Z, then AA, AB, … as spreadsheet
    columns, so that every jump of a long run has its own."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def _letter_jumps(ax: Axes, frames: list[int], n_frames: int) -> None:
    """Dotted white lines at ``frames``, lettered (:func:`jump_label`) along the bottom of
    ``ax``; a letter closer than 2 % of the frames to the previous one goes a row higher (up to
    three rows)."""
    if not frames:
        return
    ax.vlines(frames, 0, 1, transform=ax.get_xaxis_transform(), color="w", ls=":", lw=0.7)
    row, last = 0, -math.inf
    for i, f in enumerate(frames):
        row = (row + 1) % 3 if f - last < 0.02 * max(n_frames, 1) else 0
        last = f
        ax.text(f, 0.01 + 0.06 * row, jump_label(i), color="w",
                fontsize=7, ha="center", va="bottom", transform=ax.get_xaxis_transform())
