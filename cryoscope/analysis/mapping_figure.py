"""``mapping.png``: the charging-state map laid out like the paper's Fig. 4.

(a) APD intensity and (b) lifetime (mean photon delay per frame) against time, (c) the spectral
time trace with one configuration stripe per center and the jumps of two centers at once marked,
(d) each center's peak energy with its jumps marked by kind, (e) the state diagram: the states
(configurations) with their share of frames and the number of transitions between them.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from cryoscope.analysis.report import AnalysisResult

__all__ = ["frame_stripe", "mapping_figure", "transition_counts"]

_CONFIG_COLORS = {"X": "tab:green", "X*": "tab:orange", "dark": "0.35"}
_KIND_MARKERS = {"charging": "v", "discharging": "^", "surface_charge": "s", "diffusion": "."}



#: Most frame columns drawn in a spectral time trace (beyond it, runs of frames are averaged).
MAX_IMAGE_FRAMES = 1600

def spectral_trace_image(ax: Axes, energy_ev: np.ndarray, spectra: np.ndarray) -> None:
    """The spectral time trace ``[frames, pixels]`` (frame against energy) as one image: the
    spectra resampled linearly onto a uniform energy grid of as many points (the pixels'
    energies are nearly, not exactly, evenly spaced) — one image instead of a quadrilateral per
    pixel and frame — and, beyond :data:`MAX_IMAGE_FRAMES` frames, averaged over runs of
    consecutive frames (more columns than a figure has pixels show nothing more), so its cost
    grows no faster than the data and its memory not with the frames."""
    n_frames = spectra.shape[0]
    step_frames = max(1, math.ceil(n_frames / MAX_IMAGE_FRAMES))
    if step_frames > 1:
        usable = n_frames // step_frames * step_frames
        spectra = spectra[:usable].reshape(-1, step_frames, spectra.shape[1]).mean(axis=1)
    grid = np.linspace(energy_ev[0], energy_ev[-1], energy_ev.size)
    right = np.clip(np.searchsorted(energy_ev, grid, side="right"), 1, energy_ev.size - 1)
    left = right - 1
    w = ((grid - energy_ev[left])
         / np.maximum(energy_ev[right] - energy_ev[left], 1e-15)).astype(np.float32)
    image = spectra[:, left].astype(np.float32)
    image *= 1 - w
    image += spectra[:, right] * w
    vmax = float(np.percentile(image, 99.9)) if image.size else 1.0
    step = grid[1] - grid[0] if grid.size > 1 else 1e-4
    ax.imshow(image.T, aspect="auto", origin="lower", cmap="magma", vmin=0, vmax=vmax,
              interpolation="nearest",
              extent=(0, spectra.shape[0] * step_frames, grid[0] - step / 2,
                      grid[-1] + step / 2))
    ax.set_xlim(0, n_frames)

def transition_counts(labels: np.ndarray, n_states: int) -> np.ndarray:
    """``[from, to]`` number of frame-to-frame changes between states."""
    out = np.zeros((n_states, n_states), int)
    change = labels[1:] != labels[:-1]
    np.add.at(out, (labels[:-1][change], labels[1:][change]), 1)
    return out


def frame_stripe(ax: Axes, start: np.ndarray, stop: np.ndarray, colors: list[Any],
                 y0: float, y1: float) -> None:
    """One colored bar per frame from ``start`` to ``stop`` (data x) between ``y0`` and ``y1``
    (axes fraction): a single collection, fast for thousands of frames."""
    verts = [((a, y0), (b, y0), (b, y1), (a, y1)) for a, b in zip(start, stop, strict=True)]
    ax.add_collection(PolyCollection(verts, facecolors=colors, linewidths=0,
                                     transform=ax.get_xaxis_transform()), autolim=False)


def _state_color(i: int) -> tuple[float, float, float, float]:
    return matplotlib.colormaps["tab10"](i % 10)


def mapping_figure(result: AnalysisResult) -> Figure:
    """The Fig. 4 layout (see the module docstring)."""
    fig = Figure(figsize=(14, 11), layout="constrained")
    grid = fig.add_gridspec(4, 3, height_ratios=[1, 1, 2, 1.6])
    cmap = result.centers
    sp = result.spectra
    labels = result.states.labels
    n_frames = labels.size
    start = result.photons.frame_start_ps[:n_frames] * 1e-12
    t = start - start[0] if n_frames else start
    n_centers = len(cmap.centers)

    ax = fig.add_subplot(grid[0, :2])
    tr = result.trace
    ax.plot(tr.start_s - tr.start_s[0], tr.rate_cps / 1e3, lw=0.3, color="0.3")
    frame_stripe(ax, t, t + result.measurement.exposure_s,
                 [_state_color(int(s)) for s in labels], 0.93, 1.0)
    ax.set(ylabel=f"kcps ({tr.bin_s * 1e3:g} ms)", title="(a) intensity (state of each frame "
           "on top)")
    ax.set_xlim(0, t[-1] + result.measurement.exposure_s if n_frames else 1)

    ax = fig.add_subplot(grid[1, :2], sharex=ax)
    ax.plot(t, result.frame_delay_ns, ".", ms=2, color="tab:purple")
    ax.set(xlabel="time (s)", ylabel="mean delay (ns)", title="(b) lifetime per frame")

    ax = fig.add_subplot(grid[2, :2])
    e = sp.energy_ev
    spectral_trace_image(ax, e, sp.merged)
    if cmap.lines:
        lo = min(ln.energy_ev for ln in cmap.lines) - 0.01
        hi = max(ln.energy_ev for ln in cmap.lines) + 0.006
        ax.set_ylim(max(lo, e[0]), min(hi, e[-1]))
        config = cmap.configuration
        names = ("X", "X*", "dark")
        for c in range(n_centers):
            y0, y1 = 1.0 - 0.035 * (c + 1), 1.0 - 0.035 * c
            frame_stripe(ax, np.arange(n_frames), np.arange(1, n_frames + 1),
                         [_CONFIG_COLORS[names[int(x)]] for x in config[:, c]], y0, y1)
    letters = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    for j in result.jumps:
        if len(j.centers) > 1:
            ax.axvline(j.frame, color="w", ls=":", lw=0.7)
            ax.text(j.frame, ax.get_ylim()[0], next(letters, "*"), color="w", fontsize=7,
                    ha="center", va="bottom")
    ax.set(xlabel="frame", ylabel="energy (eV)",
           title="(c) spectral time trace; stripes: each center's configuration "
                 "(green X, orange X*, grey dark), top stripe center 0; dotted: both centers jump")

    ax = fig.add_subplot(grid[3, :2])
    if n_centers:
        for c in range(n_centers):
            ax.plot(np.arange(n_frames), cmap.frame_energy_ev[:, c] * 1000, ".-", ms=2, lw=0.5,
                    color=_state_color(c), label=f"center {c}")
        for j in result.jumps:
            for c, kind in zip(j.centers, j.kinds, strict=True):
                y = cmap.frame_energy_ev[j.frame, c] * 1000
                if math.isfinite(y):
                    ax.plot(j.frame, y, _KIND_MARKERS[kind], ms=6, mfc="none",
                            color="k" if len(j.centers) > 1 else _state_color(c))
        for kind, marker in _KIND_MARKERS.items():
            ax.plot([], [], marker, color="k", mfc="none", label=kind)
    ax.set(xlabel="frame", ylabel="peak energy (meV)",
           title="(d) peak of each center; jumps by kind (black: both centers at once)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=3)

    ax = fig.add_subplot(grid[:2, 2])
    ax.set_axis_off()
    ax.set_title("(e) states and transitions")
    n_states = result.states.n_states
    counts = transition_counts(labels, n_states)
    angle = np.linspace(0, 2 * np.pi, n_states, endpoint=False) + np.pi / 2
    xy = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    for a in range(n_states):
        for b in range(n_states):
            if counts[a, b] == 0:
                continue
            p0, p1 = xy[a], xy[b]
            normal = np.array([-(p1 - p0)[1], (p1 - p0)[0]]) * 0.06
            ax.annotate("", xy=p1 * 0.82 + normal, xytext=p0 * 0.82 + normal,
                        arrowprops={"arrowstyle": "->", "lw": 0.4 + 0.2 * math.sqrt(counts[a, b]),
                                    "color": "0.4"})
            mid = 0.5 * (p0 + p1) * 0.82 + 2 * normal
            ax.text(mid[0], mid[1], str(counts[a, b]), fontsize=6, ha="center", va="center")
    for s in range(n_states):
        share = np.mean(labels == s) if n_frames else 0.0
        ax.text(xy[s, 0], xy[s, 1], f"{s}: {'/'.join(result.states.names(s))}\n{share:.0%}",
                ha="center", va="center", fontsize=7,
                bbox={"boxstyle": "round", "fc": _state_color(s), "alpha": 0.35})
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.4, 1.4)

    ax = fig.add_subplot(grid[2:, 2])
    ax.set_axis_off()
    rows = []
    if n_centers:
        for ctr in cmap.centers:
            pol = ctr.polarization
            rows.append(f"center {ctr.id}: ZPL {ctr.zpl_ev:.4f} eV "
                        f"(spread {ctr.zpl_spread_mev:.2f} meV)")
            rows.append(f"   φ = {pol.phi_deg:.1f} ± {pol.phi_err_deg:.1f}°, p = {pol.p:.2f}"
                        if pol else "   no polarization fit")
            rows.append(f"   trion {ctr.charged_zpl_ev:.4f} eV ({ctr.trion_shift_mev:+.1f} meV)")
            rows.append(f"   LO replicas {ctr.replica_shifts_mev[0]:.1f}, "
                        f"{ctr.replica_shifts_mev[1]:.1f} meV")
    kinds: dict[str, int] = {}
    for j in result.jumps:
        kinds[j.kind] = kinds.get(j.kind, 0) + 1
    rows.append("jumps: " + (", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"))
    ax.text(0, 1, "\n".join(rows), va="top", ha="left", fontsize=8, family="monospace",
            wrap=True)
    return fig
