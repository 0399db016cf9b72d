"""Emission centers (the dots of a molecule), their lines, and each frame's configuration.

From the peaks of every frame (:mod:`.peaks`):

1. **Centers.** Their number is the most peaks that at least ``MIN_MULTI_FRAMES`` of the frames
   show at once (at most ``MAX_CENTERS``). Each peak is assigned to a center by its V fraction
   V/(V + H) against each center's polarization curve at the frame's waveplate angle (a center's
   lines share its dipole), at most one peak per center and frame (co-occurring peaks are different
   centers), with an energy prior from the previous assignment; three rounds, the centers'
   p, φ refitted each round. Two "centers" that rarely emit together and share a dipole are one.
   Given energy regions (one per center), a peak belongs to the center whose region holds it.
2. **Lines.** A center's bright and dim peaks (``CHARGED_BRIGHTNESS`` of its 90th-percentile
   peak) are split apart into lines where their energies leave a gap of ``LINE_GAP_MEV``;
   a peak of a cluster with few peaks joins the nearest line within its reach (``JOIN_SPREAD``
   robust standard deviations of its peak energies, at least ``LINE_GAP_MEV``); beyond every
   reach it joins one only by the rules that follow, else (and at once when ``WEAK_BRIGHTNESS``
   weak: a chance peak) it is in no line. A dim cluster on a bright line is that line.
   A dim line ``CHARGED_SHIFT_MEV`` red of a bright line whose frames decay no slower (mean
   photon delay at most ``CHARGED_DELAY`` of the most frequent bright line's) is charged
   (``X*``, the trion); the rest are neutral (``X``). Lines of one charge closer than
   ``SAME_LINE_MEV`` are one (spectral diffusion), so the lines left are the neutral and charged
   ZPLs and their surface-charge variants; the most frequent bright line is the neutral ZPL.
3. **Configurations.** Per frame and center: the charge of the line of its brightest peak, or
   ``dark`` without a peak.
4. **Polarization.** Every frame's V and H spectra are decomposed into all its peaks at once
   (each a Voigt ZPL with its LO replicas, the profile of its center, plus a flat baseline); the
   V and H photons of a line over its frames with the stage still give p and φ
   (:func:`~cryoscope.analysis.polarization.fit_polarization`), and all of a center's give the
   center's.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np

from cryoscope.analysis.lines import (
    REPLICA_RANGE_MEV,
    REPLICA_SHIFTS_MEV,
    LineFit,
    SpectrumFit,
    find_zpls,
    fit_lines,
    line_model,
)
from cryoscope.analysis.peaks import FramePeaks
from cryoscope.analysis.polarization import PolarizationFit, fit_polarization, polarization_model
from cryoscope.analysis.spectra import SpectralFrames

__all__ = ["CONFIGURATIONS", "Center", "CenterMap", "Line", "LineProfile", "aligned_fit",
           "assign_centers", "decompose_peaks", "map_centers"]

log = logging.getLogger(__name__)

#: Configuration codes of a center in a frame.
CONFIGURATIONS = ("X", "X*", "dark")
#: Most centers looked for.
MAX_CENTERS = 3
#: Share of frames that must show k peaks at once for k centers.
MIN_MULTI_FRAMES = 0.25
#: Two centers that emit together in fewer than this share of their frames, with dipoles closer
#: than SAME_DIPOLE_DEG, are one.
MIN_COOCCURRENCE = 0.3
SAME_DIPOLE_DEG = 20.0
#: A center's peak energies are split into lines at gaps wider than this (meV).
LINE_GAP_MEV = 2.0
#: A peak of a small cluster joins a line within this many robust standard deviations of the
#: line's peak energies (its spectral diffusion), and within LINE_GAP_MEV of it at any rate.
JOIN_SPREAD = 5.0
#: A small cluster out of every line's reach whose peaks all have fewer photons than this share
#: of the center's 90th-percentile peak is in no line (chance peaks of stray light, EMCCD noise).
WEAK_BRIGHTNESS = 0.03
#: Lines of one center and charge closer than this are one (spectral diffusion; meV).
SAME_LINE_MEV = 5.0
#: Red shift (meV, negative) of a charged line from the neutral ZPL, and its most brightness.
CHARGED_SHIFT_MEV = (-28.0, -8.0)
CHARGED_BRIGHTNESS = 0.7
#: A charged line's frames decay no slower than this times the neutral line's (mean delay).
CHARGED_DELAY = 1.1
#: Fewest frames with nothing at the replicas' place for an aligned fit of those frames only.
MIN_CLEAR_FRAMES = 5
#: Most ZPLs in one aligned line fit.
MAX_FIT_LINES = 5
#: Model-mismatch floor of a peak's V fraction in the assignment.
FRACTION_FLOOR = 0.02
#: Log-likelihood penalty for a second peak of one center in one frame.
DUPLICATE_PENALTY = 30.0
#: Uncertain-line criteria: p at the boundary, broad lines, few photons or frames.
BOUNDARY_P = 0.98
BROAD_FWHM_MEV = 3.0
MIN_LINE_PHOTONS = 2000.0
MIN_LINE_FRAMES = 8


@dataclass(frozen=True)
class LineProfile:
    """Shape of one ZPL with its LO replicas (widths and shifts in meV)."""

    fwhm_mev: float = 0.5
    sigma_mev: float = 0.15
    replica_weights: tuple[float, float] = (0.0, 0.0)
    replica_broadening: float = 1.0
    replica_shifts_mev: tuple[float, float] = REPLICA_SHIFTS_MEV

    def counts(self, energy_ev: np.ndarray, center_ev: float) -> np.ndarray:
        """Photons per pixel of a line of unit area at ``center_ev`` (the line model of
        :func:`~cryoscope.analysis.lines.line_model`)."""
        return line_model(energy_ev, np.array([center_ev]), np.ones(1), np.array([self.fwhm_mev]),
                          np.array([self.replica_weights]), self.sigma_mev, 0.0,
                          self.replica_broadening, self.replica_shifts_mev)

    @classmethod
    def from_fit(cls, fit: SpectrumFit, line: LineFit) -> LineProfile:
        return cls(fwhm_mev=line.fwhm_mev, sigma_mev=fit.resolution_sigma_mev,
                   replica_weights=line.replica_weights,
                   replica_broadening=fit.replica_broadening,
                   replica_shifts_mev=fit.replica_shifts_mev)


@dataclass(frozen=True)
class Line:
    """One emission line of a center: the peaks it is seen as, its charge and polarization."""

    center: int
    charge: str  #: ``X`` (neutral) or ``X*`` (charged)
    peaks: np.ndarray  #: indices into the peak table
    energy_ev: float  #: median peak energy
    energy_err_ev: float  #: standard error of the median energy
    spread_mev: float  #: standard deviation of its peak energies (spectral diffusion)
    photons_per_frame: float  #: median photons of its peaks
    frames: np.ndarray  #: frames where it is seen
    polarization: PolarizationFit | None
    fit: LineFit | None  #: fit of its frames' spectra aligned on its peaks
    fit_spectrum: SpectrumFit | None
    uncertain: tuple[str, ...]  #: why its p and φ are not to be trusted (empty: fine)


@dataclass(frozen=True)
class Center:
    """One emission center (a dot)."""

    id: int
    lines: tuple[int, ...]  #: indices into :attr:`CenterMap.lines`
    neutral_line: int | None
    charged_line: int | None
    zpl_ev: float
    zpl_spread_mev: float
    charged_zpl_ev: float
    trion_shift_mev: float  #: charged minus neutral ZPL (meV; negative = red)
    polarization: PolarizationFit | None  #: from all its lines
    replica_shifts_mev: tuple[float, float]
    replica_shifts_err_mev: tuple[float, float]
    region_ev: tuple[float, float]  #: energy range of its lines (± LINE_GAP_MEV)


@dataclass(frozen=True)
class CenterMap:
    """Centers, lines, per-frame configurations and the decomposed peak photons."""

    peaks: FramePeaks
    peak_center: np.ndarray  #: int [peaks], −1 outside every region
    peak_line: np.ndarray  #: int [peaks], −1 if unassigned
    peak_v: np.ndarray  #: V photons of each peak from the frame decomposition
    peak_h: np.ndarray
    lines: tuple[Line, ...]
    centers: tuple[Center, ...]
    frame_line: np.ndarray  #: int [frames, centers]: line of the center's brightest peak, −1 dark
    frame_energy_ev: np.ndarray  #: float [frames, centers]: its energy, NaN when dark
    regions_given: bool

    @property
    def configuration(self) -> np.ndarray:
        """int [frames, centers]: index into :data:`CONFIGURATIONS`."""
        charge = np.array([CONFIGURATIONS.index(ln.charge) for ln in self.lines] + [2])
        return charge[self.frame_line]


# -- assignment ------------------------------------------------------------------------------


def _fraction(v: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.maximum(v + h, 1.0)
    return np.clip(v / n, 0.0, 1.0), n


def _center_fit(v: np.ndarray, h: np.ndarray, theta: np.ndarray) -> PolarizationFit | None:
    try:
        return fit_polarization(v, h, theta, counts_in_photons=True)
    except ValueError:
        return None


def _energy_prior(energy_mev: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Log density of energies on ``grid`` (meV), smoothed by 1 meV, floored."""
    if energy_mev.size == 0:
        return np.zeros(grid.size)
    d = np.exp(-0.5 * ((grid[:, None] - energy_mev[None, :]) / 1.0) ** 2).sum(axis=1)
    d /= d.sum()
    return np.log(d + 1e-3 * d.max())


def assign_centers(peaks: FramePeaks, theta_deg: np.ndarray, moving: np.ndarray,
                   n_centers: int | None = None) -> np.ndarray:
    """Center of every peak (int array) by polarization, co-occurrence and energy."""
    per_frame = np.bincount(peaks.frame, minlength=peaks.n_frames)
    if n_centers is None:
        n_centers = 1
        for k in range(2, MAX_CENTERS + 1):
            if np.mean(per_frame >= k) >= MIN_MULTI_FRAMES:
                n_centers = k
    if n_centers == 1 or peaks.n == 0:
        return np.zeros(peaks.n, int)
    f_obs, n = _fraction(peaks.v, peaks.h)
    theta = theta_deg[peaks.frame]
    still = ~moving[peaks.frame]
    e_mev = peaks.energy_ev * 1000.0
    # Seeds: the most frequent energy, then the peaks emitting together with the seeds so far.
    hist_edges = np.arange(e_mev.min() - 1, e_mev.max() + 1.5, 0.5)
    counts, _ = np.histogram(e_mev, hist_edges)
    mode = hist_edges[np.argmax(counts)] + 0.25
    label = np.full(peaks.n, -1)
    label[np.abs(e_mev - mode) < 1.5] = 0
    for c in range(1, n_centers):
        seeded = np.isin(peaks.frame, peaks.frame[label >= 0])
        label[seeded & (label < 0)] = c
    grid = np.arange(e_mev.min() - 3, e_mev.max() + 3, 0.25)
    starts = np.flatnonzero(np.r_[True, peaks.frame[1:] != peaks.frame[:-1]])
    stops = np.r_[starts[1:], peaks.n]
    for _round in range(3):
        fits = [_center_fit(peaks.v[(label == c) & still], peaks.h[(label == c) & still],
                            theta[(label == c) & still]) for c in range(n_centers)]
        ll = np.zeros((peaks.n, n_centers))
        for c, fit in enumerate(fits):
            prior = _energy_prior(e_mev[label == c], grid)
            ll[:, c] = np.interp(e_mev, grid, prior)
            if fit is not None:
                f = polarization_model(theta, fit.p, fit.phi_deg, fit.gain_ratio)
                var = 2.0 * f * (1 - f) / n + FRACTION_FLOOR ** 2
                ll[:, c] += -0.5 * (f_obs - f) ** 2 / var - 0.5 * np.log(var)
        for a, b in zip(starts, stops, strict=True):
            m = b - a
            best, best_score = None, -np.inf
            for combo in itertools.product(range(n_centers), repeat=m):
                dup = m - len(set(combo))
                score = ll[a + np.arange(m), combo].sum() - DUPLICATE_PENALTY * dup
                if score > best_score:
                    best, best_score = combo, score
            label[a:b] = best
    return _merge_alike(label, peaks, theta, still)


def _merge_alike(label: np.ndarray, peaks: FramePeaks, theta: np.ndarray, still: np.ndarray
                 ) -> np.ndarray:
    """Merge centers that rarely emit in the same frames and share their dipole."""
    while True:
        used = np.unique(label)
        if used.size < 2:
            return np.searchsorted(used, label)
        frames = [set(peaks.frame[label == c].tolist()) for c in used]
        fits = [_center_fit(peaks.v[(label == c) & still], peaks.h[(label == c) & still],
                            theta[(label == c) & still]) for c in used]
        merged = False
        for i, j in itertools.combinations(range(used.size), 2):
            both = len(frames[i] & frames[j]) / max(min(len(frames[i]), len(frames[j])), 1)
            fi, fj = fits[i], fits[j]
            dphi = (abs((fi.phi_deg - fj.phi_deg + 90) % 180 - 90) if fi and fj else 0.0)
            if both < MIN_COOCCURRENCE and dphi < SAME_DIPOLE_DEG:
                label = np.where(label == used[j], used[i], label)
                merged = True
                break
        if not merged:
            return np.searchsorted(np.unique(label), label)


def _region_centers(peaks: FramePeaks, regions_ev: np.ndarray) -> np.ndarray:
    label = np.full(peaks.n, -1)
    for c, (lo, hi) in enumerate(regions_ev):
        label[(peaks.energy_ev >= lo) & (peaks.energy_ev <= hi) & (label < 0)] = c
    return label


# -- lines -----------------------------------------------------------------------------------


def _robust_sd(x: np.ndarray) -> float:
    """Standard deviation of ``x`` from its median absolute deviation (outliers left out)."""
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _split_lines(e_mev: np.ndarray, photons: np.ndarray, delay_ns: np.ndarray
                 ) -> tuple[np.ndarray, list[str]]:
    """Line index and charge of each of one center's peaks, −1 for a peak in no line
    (``delay_ns``: the mean photon delay of each peak's frame, NaN if unknown)."""
    # Bright and dim peaks are split into lines apart: a dim trion line next to a wandering
    # neutral one stays a line of its own.
    top = np.percentile(photons, 90)
    dim = photons < CHARGED_BRIGHTNESS * top
    groups = []
    for part in (np.flatnonzero(~dim), np.flatnonzero(dim)):
        if part.size == 0:
            continue
        order = part[np.argsort(e_mev[part])]
        cut = np.flatnonzero(np.diff(e_mev[order]) > LINE_GAP_MEV) + 1
        groups += np.split(order, cut)
    small = max(3, int(0.02 * e_mev.size))
    big = [g for g in groups if g.size >= small] or [max(groups, key=len)]
    label = np.full(e_mev.size, -1)
    for i, g in enumerate(big):
        label[g] = i
    # Peaks of small clusters join the nearest line within its reach: JOIN_SPREAD robust standard
    # deviations of its peak energies (its spectral diffusion), at least LINE_GAP_MEV.
    centers = np.array([np.median(e_mev[g]) for g in big])
    reach = np.array([max(LINE_GAP_MEV, JOIN_SPREAD * _robust_sd(e_mev[g])) for g in big])
    rest = np.flatnonzero(label < 0)
    dist = np.abs(e_mev[rest, None] - centers[None, :]) / reach[None, :]
    near = dist.min(axis=1, initial=np.inf) <= 1.0
    label[rest[near]] = np.argmin(dist[near], axis=1)
    # The rest of a small cluster out of every line's reach is a candidate line: it joins a line
    # by the rules below (a dim cluster on a bright line, one charge within SAME_LINE_MEV), or
    # its peaks are in no line. Peaks all weak are in none at once (chance peaks of stray light
    # or EMCCD noise).
    lines = list(big)
    for g in groups:
        far = g[label[g] < 0]
        if far.size and photons[far].max() >= WEAK_BRIGHTNESS * top:
            label[far] = len(lines)
            lines.append(far)
    n_big, n_lines = len(big), len(lines)
    centers = np.array([np.median(e_mev[g]) for g in lines])
    inline = label >= 0
    bright = np.array([np.median(photons[label == i]) for i in range(n_lines)])
    frames = np.bincount(label[inline], minlength=n_lines)
    # Brightness is measured against the lines, not the candidates.
    is_dim = bright < CHARGED_BRIGHTNESS * bright[:n_big].max()
    bright_lines = np.flatnonzero(~is_dim[:n_big])
    ref = int(bright_lines[np.argmax(frames[bright_lines])])
    with np.errstate(invalid="ignore"):
        delay = np.array([np.nanmedian(delay_ns[label == i]) if np.any(
            np.isfinite(delay_ns[label == i])) else np.nan for i in range(n_lines)])
    # A trion decays faster: a line whose frames decay slower than the neutral line's is none.
    slower = np.isfinite(delay) & np.isfinite(delay[ref]) & (delay > CHARGED_DELAY * delay[ref])
    # Red of some bright (neutral) line by a trion shift: below it by CHARGED_SHIFT_MEV.
    shift = centers[:, None] - centers[None, bright_lines]
    red = np.any((shift >= CHARGED_SHIFT_MEV[0]) & (shift <= CHARGED_SHIFT_MEV[1]), axis=1)
    charged = red & is_dim & ~slower
    # A dim cluster on a bright line is that line (frames it shared with a switch).
    group_of = np.arange(n_lines)
    for weak in np.flatnonzero(is_dim).tolist():
        gap = np.abs(centers[bright_lines] - centers[weak])
        if gap.size and gap.min() < LINE_GAP_MEV:
            group_of[weak] = bright_lines[np.argmin(gap)]
            charged[weak] = False
    # Lines of one charge closer than SAME_LINE_MEV are one (spectral diffusion).
    for i, j in itertools.combinations(np.argsort(-frames), 2):
        if (charged[i] == charged[j] and abs(centers[i] - centers[j]) < SAME_LINE_MEV
                and group_of[i] == i and group_of[j] == j):
            group_of[group_of == group_of[j]] = group_of[i]
    # Candidates that joined no line are in none.
    kept = np.isin(group_of, group_of[:n_big])
    inline &= kept[np.maximum(label, 0)]
    used = np.unique(group_of[kept])
    final = np.where(inline, np.searchsorted(used, group_of)[np.maximum(label, 0)], -1)
    charges = ["X*" if charged[used[k]] else "X" for k in range(used.size)]
    return final, charges


# -- aligned fits and decomposition ----------------------------------------------------------


def aligned_fit(spectra: SpectralFrames, frames: np.ndarray, energy_ev: np.ndarray,
                ref_ev: float, replica_shifts_mev: tuple[float, float] | None = None,
                others_ev: np.ndarray | None = None, resolution_sigma_mev: float | None = None
                ) -> tuple[SpectrumFit | None, LineFit | None]:
    """Fit the frames' V + H spectra summed after shifting each so that its peak
    (``energy_ev`` per frame) sits at ``ref_ev``: the line without its spectral diffusion.

    ``replica_shifts_mev``: fixed replica shifts; None fits them. ``others_ev``: other lines
    known to emit in these frames, fitted as ZPLs of their own (else a line at a replica's
    position would be taken for the replica); without them, the aligned spectrum's peaks.
    ``resolution_sigma_mev``: fixed spectrograph resolution; None fits it."""
    e = spectra.energy_ev
    merged = spectra.merged
    total = np.zeros(e.size)
    for k, ek in zip(frames, energy_ev, strict=True):
        total += np.interp(e + (ek - ref_ev), e, merged[k], left=0.0, right=0.0)
    if others_ev is None:
        sigma = np.sqrt(spectra.noise.variance(np.maximum(total, 0), frames.size))
        others_ev = find_zpls(e, total, sigma)
    others = np.asarray(others_ev, float)
    zpls = np.r_[ref_ev, others[np.abs(others - ref_ev) > 1.5e-3]][:MAX_FIT_LINES]
    try:
        fit = fit_lines(e, total, zpls, spectra.noise, int(frames.size),
                        replica_shifts_mev=replica_shifts_mev,
                        resolution_sigma_mev=resolution_sigma_mev)
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.warning("aligned line fit at %.4f eV failed: %s", ref_ev, exc)
        return None, None
    line = min(fit.lines, key=lambda ln: abs(ln.zpl_ev - ref_ev))
    return fit, line


def _replicas_clear(peaks: FramePeaks, idx: np.ndarray) -> np.ndarray:
    """Mask of peaks ``idx`` whose frame has no other peak where their replicas lie
    (REPLICA_RANGE_MEV below them)."""
    clear = np.ones(idx.size, bool)
    for n, i in enumerate(idx):
        same = peaks.frame == peaks.frame[i]
        below = (peaks.energy_ev[i] - peaks.energy_ev[same]) * 1000.0
        clear[n] = not np.any((below > REPLICA_RANGE_MEV[0]) & (below < REPLICA_RANGE_MEV[1]))
    return clear


def _companions(peaks: FramePeaks, peak_line: np.ndarray, idx: np.ndarray, ref_ev: float
                ) -> np.ndarray:
    """Energies of the lines emitting in the frames of peaks ``idx`` (in at least a tenth of
    them) within the reach of an aligned fit at ``ref_ev``, most frequent first."""
    frames = np.unique(peaks.frame[idx])
    own = set(peak_line[idx].tolist())
    with_it = np.isin(peaks.frame, frames) & (peak_line >= 0)
    lines, counts = np.unique(peak_line[with_it], return_counts=True)
    out = []
    for ln in lines[np.argsort(-counts)]:
        if ln in own or counts[lines == ln][0] < 0.1 * frames.size:
            continue
        e = float(np.median(peaks.energy_ev[peak_line == ln]))
        if ref_ev - 0.05 < e < ref_ev + 0.008:
            out.append(e)
    return np.array(out)


def decompose_peaks(spectra: SpectralFrames, peaks: FramePeaks, profiles: list[LineProfile]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """V and H photons of every peak: each frame's V and H spectra fitted by linear least squares
    with all its peaks at once (``profiles[i]`` the shape of peak i) plus a flat baseline."""
    scale = spectra.noise.adu_per_photon
    e_mev = spectra.energy_ev * 1000.0
    out_v = np.zeros(peaks.n)
    out_h = np.zeros(peaks.n)
    starts = np.flatnonzero(np.r_[True, peaks.frame[1:] != peaks.frame[:-1]])
    stops = np.r_[starts[1:], peaks.n]
    for a, b in zip(starts, stops, strict=True):
        k = int(peaks.frame[a])
        centers = peaks.energy_ev[a:b] * 1000.0
        sel = (e_mev > centers.min() - 45.0) & (e_mev < centers.max() + 5.0)
        basis = np.ones((int(sel.sum()), b - a + 1))
        for j in range(b - a):
            basis[:, j] = profiles[a + j].counts(spectra.energy_ev[sel], centers[j] / 1000.0)
        rhs = np.stack([spectra.v[k, sel], spectra.h[k, sel]], axis=1) / scale
        coef, *_ = np.linalg.lstsq(basis, rhs, rcond=None)
        out_v[a:b] = coef[:-1, 0]
        out_h[a:b] = coef[:-1, 1]
    return out_v, out_h


# -- the whole map ---------------------------------------------------------------------------


def _uncertain(pol: PolarizationFit | None, fit: LineFit | None, photons: float,
               n_frames: int) -> tuple[str, ...]:
    why = []
    if pol is None:
        why.append("no polarization fit")
    elif pol.p > BOUNDARY_P:
        why.append(f"p = {pol.p:.2f} at the boundary")
    elif not pol.determined:
        why.append(pol.problem)
    if fit is not None and fit.fwhm_mev > BROAD_FWHM_MEV:
        why.append(f"FWHM {fit.fwhm_mev:.1f} meV")
    if photons < MIN_LINE_PHOTONS:
        why.append(f"{photons:.0f} photons")
    if n_frames < MIN_LINE_FRAMES:
        why.append(f"{n_frames} frames")
    return tuple(why)


def map_centers(spectra: SpectralFrames, peaks: FramePeaks, theta_deg: np.ndarray,
                moving: np.ndarray, regions_ev: np.ndarray | None = None,
                frame_delay_ns: np.ndarray | None = None) -> CenterMap:
    """Centers, lines, configurations and polarizations (see the module docstring).

    ``frame_delay_ns``: mean photon delay of each frame (a lifetime per frame), used to tell
    charged lines (faster) from surface-charge variants."""
    if regions_ev is not None:
        regions = np.asarray(regions_ev, float).reshape(-1, 2)
        peak_center = _region_centers(peaks, regions)
    else:
        peak_center = assign_centers(peaks, theta_deg, moving)
    n_centers = int(peak_center.max()) + 1 if peak_center.size and peak_center.max() >= 0 else 0
    if regions_ev is not None:
        n_centers = regions.shape[0]
    peak_line = np.full(peaks.n, -1)
    line_center: list[int] = []
    line_charge: list[str] = []
    for c in range(n_centers):
        idx = np.flatnonzero(peak_center == c)
        if idx.size == 0:
            continue
        delay = (frame_delay_ns[peaks.frame[idx]] if frame_delay_ns is not None
                 else np.full(idx.size, np.nan))
        which, charges = _split_lines(peaks.energy_ev[idx] * 1000.0, peaks.photons[idx], delay)
        peak_line[idx] = np.where(which >= 0, which + len(line_center), -1)
        line_center += [c] * len(charges)
        line_charge += charges
    # Lines in ascending energy.
    medians = np.array([np.median(peaks.energy_ev[peak_line == ln])
                        for ln in range(len(line_center))])
    order = np.argsort(medians)
    rank = np.empty(order.size, int)
    rank[order] = np.arange(order.size)
    peak_line = np.where(peak_line >= 0, rank[np.maximum(peak_line, 0)], -1)
    line_center = [line_center[i] for i in order]
    line_charge = [line_charge[i] for i in order]
    # Per frame and center: the line of its brightest peak.
    n_frames = peaks.n_frames
    frame_line = np.full((n_frames, n_centers), -1)
    frame_energy = np.full((n_frames, n_centers), np.nan)
    best = np.zeros((n_frames, n_centers))
    for i in np.flatnonzero(peak_line >= 0):
        k, c = peaks.frame[i], peak_center[i]
        if peaks.photons[i] > best[k, c]:
            best[k, c] = peaks.photons[i]
            frame_line[k, c] = peak_line[i]
            frame_energy[k, c] = peaks.energy_ev[i]
    # Aligned fits: each center's neutral line with free replica shifts (its profile), the
    # center's other lines with those shifts.
    n_lines = len(line_center)
    counts = np.bincount(peak_line[peak_line >= 0], minlength=n_lines)
    neutral_of: dict[int, int | None] = {}
    for c in range(n_centers):
        candidates = [ln for ln in range(n_lines)
                      if line_center[ln] == c and line_charge[ln] == "X"]
        neutral_of[c] = max(candidates, key=lambda ln: counts[ln], default=None)
    fits: list[tuple[SpectrumFit | None, LineFit | None]] = [(None, None)] * n_lines
    default = LineProfile()
    center_profile = [default] * n_centers
    fit_order = sorted((ln for ln in neutral_of.values() if ln is not None),
                       key=lambda ln: -counts[ln])
    fit_order += [ln for ln in range(n_lines) if ln not in fit_order]
    resolution = None
    for ln in fit_order:
        idx = np.flatnonzero(peak_line == ln)
        if idx.size < 3:
            continue
        c = line_center[ln]
        is_neutral = neutral_of[c] == ln
        shifts = None if is_neutral else center_profile[c].replica_shifts_mev
        ref = float(np.median(peaks.energy_ev[idx]))
        clear = _replicas_clear(peaks, idx)
        if np.count_nonzero(clear) >= MIN_CLEAR_FRAMES:
            idx = idx[clear]
        fits[ln] = aligned_fit(spectra, peaks.frame[idx], peaks.energy_ev[idx], ref, shifts,
                               _companions(peaks, peak_line, idx, ref), resolution)
        fit, line = fits[ln]
        if fit is not None and resolution is None:
            resolution = fit.resolution_sigma_mev
        if is_neutral and fit is not None and line is not None:
            center_profile[c] = LineProfile.from_fit(fit, line)
    profiles = [center_profile[c] if c >= 0 else default for c in peak_center]
    peak_v, peak_h = decompose_peaks(spectra, peaks, profiles)
    still = ~moving[peaks.frame]
    theta = theta_deg[peaks.frame]
    lines = []
    for ln in range(len(line_center)):
        idx = np.flatnonzero(peak_line == ln)
        use = idx[still[idx]]
        pol = _center_fit(np.maximum(peak_v[use], 0), np.maximum(peak_h[use], 0), theta[use])
        e = peaks.energy_ev[idx]
        photons = float(np.sum(peaks.photons[idx]))
        frames = np.unique(peaks.frame[idx])
        fit, line = fits[ln]
        lines.append(Line(
            center=line_center[ln], charge=line_charge[ln], peaks=idx,
            energy_ev=float(np.median(e)),
            energy_err_ev=float(1.2533 * np.std(e) / math.sqrt(e.size)) if e.size > 1 else 0.0,
            spread_mev=float(np.std(e) * 1000.0), photons_per_frame=float(np.median(
                peaks.photons[idx])), frames=frames, polarization=pol, fit=line,
            fit_spectrum=fit, uncertain=_uncertain(pol, line, photons, frames.size)))
    centers = []
    for c in range(n_centers):
        own = tuple(ln for ln in range(len(lines)) if lines[ln].center == c)
        neutral = neutral_of[c]
        charged_lines = [ln for ln in own if lines[ln].charge == "X*"]
        charged = max(charged_lines, key=lambda ln: lines[ln].frames.size, default=None)
        idx = np.flatnonzero((peak_center == c) & (peak_line >= 0) & still)
        pol = _center_fit(np.maximum(peak_v[idx], 0), np.maximum(peak_h[idx], 0), theta[idx])
        zpl = lines[neutral].energy_ev if neutral is not None else math.nan
        czpl = lines[charged].energy_ev if charged is not None else math.nan
        fit = fits[neutral][0] if neutral is not None else None
        energies = [lines[ln].energy_ev for ln in own]
        if regions_ev is not None:
            region = (float(regions[c, 0]), float(regions[c, 1]))
        else:
            region = ((min(energies) - LINE_GAP_MEV / 1000.0, max(energies) + LINE_GAP_MEV / 1000.0)
                      if energies else (math.nan, math.nan))
        centers.append(Center(
            id=c, lines=own, neutral_line=neutral, charged_line=charged, zpl_ev=zpl,
            zpl_spread_mev=lines[neutral].spread_mev if neutral is not None else math.nan,
            charged_zpl_ev=czpl, trion_shift_mev=(czpl - zpl) * 1000.0, polarization=pol,
            replica_shifts_mev=fit.replica_shifts_mev if fit else (math.nan, math.nan),
            replica_shifts_err_mev=fit.replica_shifts_err_mev if fit else (math.nan, math.nan),
            region_ev=region))
    log.info("%d emission centers, %d lines", len(centers), len(lines))
    return CenterMap(peaks=peaks, peak_center=peak_center, peak_line=peak_line, peak_v=peak_v,
                     peak_h=peak_h, lines=tuple(lines), centers=tuple(centers),
                     frame_line=frame_line, frame_energy_ev=frame_energy,
                     regions_given=regions_ev is not None)
