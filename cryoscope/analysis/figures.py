"""PNG figures laid out like the paper's Fig. 2 (overview), Fig. 4d (peak tracking) and Fig. 4
(the charging-state map, :mod:`.mapping_figure`), and g²(τ) of the two APDs when the file has a
second one.

Figures are plain :class:`matplotlib.figure.Figure` objects on the Agg canvas, laid out at fixed
places (:mod:`.figure_layout`): no pyplot state, no GUI backend, safe in headless runs and next to
a Qt application.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from cryoscope.analysis.figure_layout import (
    color,
    colors,
    corner_legend,
    figure_style,
    legend,
    new_figure,
    place,
    save_png,
)
from cryoscope.analysis.lifetime import model_counts
from cryoscope.analysis.lines import line_model
from cryoscope.analysis.mapping_figure import (
    frame_stripe,
    intensity_trace,
    mapping_figure,
    spectral_trace_image,
)
from cryoscope.analysis.polarization import polarization_model
from cryoscope.analysis.report import AnalysisResult

__all__ = ["g2_figure", "overview_figure", "tracking_figure", "write_figures"]

log = logging.getLogger(__name__)


def overview_figure(result: AnalysisResult) -> Figure:
    """Spectral time trace, intensity trace, decays per state, FLID, state spectra, polarization."""
    # Inches: a wide left column and a narrow right one, three rows; the gaps hold the tick
    # labels, axis labels and titles.
    fig = new_figure(14, 10)
    left, wide, right_x, narrow = 0.8, 7.9, 9.65, 4.1
    tops, height = (0.35, 3.68, 7.01), 2.43
    sp = result.spectra
    labels = result.states.labels
    n_frames = labels.size
    state_colors = colors(labels)

    ax = place(fig, left, tops[0], wide, height)
    energy_range = None
    if result.lines:
        lo = min(ln.zpl_ev for ln in result.lines) - 0.045
        hi = max(ln.zpl_ev for ln in result.lines) + 0.01
        energy_range = (max(lo, sp.energy_ev[0]), min(hi, sp.energy_ev[-1]))
    spectral_trace_image(ax, sp.energy_ev, sp.merged, energy_range)
    frame_stripe(ax, np.arange(n_frames), np.arange(1, n_frames + 1), state_colors, 0.97, 1.0)
    ax.set(xlabel="frame", ylabel="energy (eV)", title="(b) spectral time trace (V + H)")

    ax = place(fig, left, tops[1], wide, height)
    tr = result.trace
    intensity_trace(ax, tr, lw=0.4)
    starts = (result.photons.frames.start_ps[:n_frames] - result.photons.frames.start_ps[0]) * 1e-12
    stops = (result.photons.frames.stop_ps[:n_frames] - result.photons.frames.start_ps[0]) * 1e-12
    frame_stripe(ax, starts, stops, state_colors, 0.95, 1.0)
    ax.set(xlabel="time (s)", ylabel=f"kcps ({tr.bin_s * 1e3:g} ms bins)",
           title="(c) APD intensity")

    ax = place(fig, right_x, tops[0], narrow, height)
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(NullLocator())  # decades only: 60 fewer ticks to build and draw
    ax.yaxis.set_major_formatter(FuncFormatter(_decade))
    fits: list[np.ndarray] = []
    fit_colors = []
    for st in result.state_results:
        h = st.histogram
        if h.counts.sum() == 0:
            continue
        t0 = st.decay.t0_ns if st.decay else 0.0
        # Delay after the pulse of each bin: the bins from the one just after t0 on, wrapping
        # around the period, shown in runs of `rebin` bins.
        x = np.mod(h.centers_ns - t0, h.period_ns)
        first = int(np.argmin(x))
        order = np.roll(np.arange(x.size), -first)
        rebin = 8
        n = (order.size // rebin) * rebin
        xs = x[order][:n].reshape(-1, rebin).mean(axis=1)
        ys = np.maximum(h.counts[order][:n].reshape(-1, rebin).sum(axis=1), 0.5)
        ax.plot(xs, ys, ".", ms=2, color=color(st.id))
        if st.decay:
            d = st.decay
            # The model's counts in the same runs: evaluated at the runs' edges only (the bins'
            # edges in the same order, one period long), not at every bin.
            edges = np.concatenate([h.edges_ns[first:], h.edges_ns[1:first + 1] + h.period_ns])
            runs = np.append(edges[:n + 1:rebin], edges[-1])
            mu = model_counts(runs, np.array(d.weights) * d.photons, np.array(d.taus_ns),
                              d.background_per_bin / np.diff(h.edges_ns).mean(), d.t0_ns,
                              d.sigma_ns)[:n // rebin]
            fits.append(np.column_stack([xs, mu]))
            fit_colors.append(color(st.id))
    ax.add_collection(LineCollection(fits, colors=fit_colors, linewidths=1, zorder=3))
    ax.set(xlabel="delay after pulse (ns)", ylabel="counts", xlim=(-2, 400),
           title="(d, e) decays per state (lifetimes: legend of g, h)")

    ax = place(fig, right_x, tops[1], narrow, height)
    fl = result.flid
    if fl.histogram.size and fl.histogram.sum() > 0:
        ax.imshow(fl.histogram, aspect="auto", origin="lower", cmap="viridis",
                  extent=(fl.delay_edges_ns[0], fl.delay_edges_ns[-1], fl.count_edges[0],
                          fl.count_edges[-1]), interpolation="nearest")
    ax.set(xlabel="mean delay in gate (ns)", ylabel=f"counts per {fl.bin_s * 1e3:g} ms",
           title="(f) FLID")

    ax = place(fig, left, tops[2], wide, height)
    cmap = result.centers
    styles = ("--", ":", "-.")
    points: list[tuple[np.ndarray, np.ndarray]] = []
    parts: list[np.ndarray] = []  # each center's component of each state's fit
    part_styles, part_colors = [], []
    for st in result.state_results:
        norm = max(st.n_frames, 1)
        taus = (", ".join(f"{t:.3g}" for t in st.decay.taus_ns) + " ns" if st.decay
                else "no decay fit")
        ax.plot(sp.energy_ev, st.spectrum / norm, lw=0.8, color=color(st.id),
                label=f"state {st.id} ({'/'.join(result.states.names(st.id))}, "
                      f"{st.fraction:.0%}): {taus}")
        points.append((sp.energy_ev, st.spectrum / norm))
        if st.fit and cmap.lines:
            fit = st.fit
            for ln in fit.lines:
                center = min(cmap.lines, key=lambda m: abs(m.energy_ev - ln.zpl_ev)).center
                part = line_model(fit.energy_ev, np.array([ln.zpl_ev]), np.array([ln.area]),
                                  np.array([ln.fwhm_mev]), np.array([ln.replica_weights]),
                                  fit.resolution_sigma_mev, 0.0, fit.replica_broadening,
                                  fit.replica_shifts_mev)
                parts.append(np.column_stack([fit.energy_ev, part / norm]))
                part_styles.append(styles[center % 3])
                part_colors.append(color(st.id))
                points.append((fit.energy_ev, part / norm))
    if parts:
        ax.add_collection(LineCollection(parts, colors=part_colors, linestyles=part_styles,
                                         linewidths=0.8))
    for c in range(len(cmap.centers)):
        ax.plot([], [], styles[c % 3], color="k", lw=0.8, label=f"fit: center {c}")
    if result.lines:
        ax.set_xlim(min(ln.zpl_ev for ln in result.lines) - 0.045,
                    max(ln.zpl_ev for ln in result.lines) + 0.01)
    ax.set(xlabel="energy (eV)", ylabel="ADU per frame",
           title="(g, h) state spectra and fits; per state: configuration, share of frames, "
                 "lifetimes")
    corner_legend(ax, *_joined(points))

    ax = place(fig, right_x, tops[2], narrow, height)
    theta = result.frame_theta_deg
    fine = np.linspace(np.nanmin(theta), np.nanmax(theta) + 1e-9, 200)
    points = []
    for ctr in cmap.centers:
        sel = (cmap.peak_center == ctr.id) & ~result.frame_moving[cmap.peaks.frame]
        v, h = cmap.peak_v[sel], cmap.peak_h[sel]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = v / (v + h)
        ax.plot(theta[cmap.peaks.frame[sel]], ratio, ".", ms=2, color=color(ctr.id))
        points.append((theta[cmap.peaks.frame[sel]], ratio))
        pol = ctr.polarization
        if pol:
            curve = polarization_model(fine, pol.p, pol.phi_deg, pol.gain_ratio)
            ax.plot(fine, curve, color=color(ctr.id), lw=1.2,
                    label=f"center {ctr.id}: p={pol.p:.2f}, φ={pol.phi_deg:.1f}°")
            points.append((fine, curve))
    ax.set(xlabel="waveplate angle θ (deg)", ylabel="V / (V + H)", ylim=(0, 1),
           title="(a) polarization per center (all its lines, decomposed)")
    corner_legend(ax, *_joined(points))
    return fig


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _decade(value: float, _pos: int | None = None) -> str:
    """A log axis' tick label, ``10⁵``, in plain text: no mathtext (whose parser costs ~0.1 s
    to set up in every process)."""
    if value <= 0:
        return ""
    return "10" + str(round(math.log10(value))).translate(_SUPERSCRIPT)


def _joined(points: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """All x and all y of ``(x, y)`` pairs."""
    if not points:
        return np.empty(0), np.empty(0)
    return np.concatenate([p[0] for p in points]), np.concatenate([p[1] for p in points])


def tracking_figure(result: AnalysisResult) -> Figure:
    """Peak energy per region and frame, simultaneous jumps marked (paper Fig. 4d)."""
    fig = new_figure(9.5, 4)
    ax = place(fig, 0.85, 0.35, 6.35, 3.1)
    tracks = result.tracks
    frames = np.arange(tracks.peak_ev.shape[0])
    for r in range(tracks.peak_ev.shape[1]):
        lo, hi = tracks.regions_ev[r]
        ax.plot(frames, tracks.peak_ev[:, r] * 1000, ".-", ms=3, lw=0.6, color=color(r),
                label=f"center {r}\n({lo:.3f}-{hi:.3f} eV)")
    if tracks.simultaneous:
        ax.vlines(list(tracks.simultaneous), 0, 1, transform=ax.get_xaxis_transform(), color="k",
                  ls=":", lw=0.8, label="both centers jump")
    ax.set(xlabel="frame", ylabel="peak energy (meV)", title="peak of each center")
    legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig


def g2_figure(result: AnalysisResult) -> Figure:
    """Coincidences of APD 2 after APD 1 against the lag, peak windows and g²(0) marked."""
    fig = new_figure(9.5, 4)
    ax = place(fig, 0.85, 0.35, 8.4, 3.1)
    g2 = result.g2
    if g2 is None:
        ax.set_title("g²(τ): no coincidences of two APDs")
        return fig
    hist = g2.histogram
    period_us = hist.period_ps * 1e-6
    ax.stairs(hist.counts, hist.edges_ps * 1e-6, color="0.2", lw=0.8)
    ax.axvspan(-0.5 * period_us, 0.5 * period_us, color=color(0), alpha=0.15, lw=0)
    top = float(hist.counts.max()) if hist.counts.size else 1.0
    for k, area in zip(range(-hist.periods, hist.periods + 1), hist.peak_areas, strict=True):
        ax.axvline((k + 0.5) * period_us, color="0.6", ls=":", lw=0.6)
        ax.text(k * period_us, 1.02 * top, str(int(area)), ha="center", va="bottom", fontsize=7)
    ax.axvline(-(hist.periods + 0.5) * period_us, color="0.6", ls=":", lw=0.6)
    ax.set_xticks(np.arange(-hist.periods, hist.periods + 1) * period_us)  # one per peak
    ax.set_ylim(0, 1.12 * top)
    ax.set(xlabel="lag τ = t(APD 2) − t(APD 1) (µs)",
           ylabel=f"coincidences per {hist.period_ps / hist.bins_per_period / 1e3:g} ns",
           title=f"g²(τ): g²(0) = {g2.g2_zero:.3f} ± {g2.g2_zero_err:.3f} "
                 f"(peak areas marked; center {g2.center} / side mean {g2.side_mean:.1f})")
    return fig


def write_figures(result: AnalysisResult, directory: str | Path) -> list[Path]:
    """Write ``overview.png``, ``tracking.png``, ``mapping.png`` and, with two APDs,
    ``g2.png`` into ``directory``; returns their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    makers = [("overview.png", overview_figure), ("tracking.png", tracking_figure),
              ("mapping.png", mapping_figure)]
    if result.g2 is not None:
        makers.append(("g2.png", g2_figure))
    with figure_style():
        for name, make in makers:
            path = out / name
            save_png(make(result), path)
            paths.append(path)
    log.info("figures written to %s", out)
    return paths
