"""The whole analysis of one measurement file: :func:`analyze_file` → :class:`AnalysisResult`."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cryoscope.analysis.changepoint import (
    ChangePoints,
    IntensityLevels,
    find_change_points,
    group_levels,
)
from cryoscope.analysis.flid import Flid, flid
from cryoscope.analysis.g2 import G2Result, g2_from_photons
from cryoscope.analysis.image import ImageBands, read_image_spectra
from cryoscope.analysis.lifetime import (
    DecayFit,
    DecayHistogram,
    decay_histogram,
    detector_offset_ps,
    fit_decay,
)
from cryoscope.analysis.lines import REPLICA_SHIFTS_MEV, SpectrumFit, find_zpls, fit_lines
from cryoscope.analysis.photons import PhotonTable, collect_photons
from cryoscope.analysis.polarization import PolarizationFit, fit_polarization
from cryoscope.analysis.spectra import SpectralFrames, prepare_spectra
from cryoscope.analysis.states import SpectralStates, cluster_frames
from cryoscope.analysis.trace import IntensityTrace, intensity_trace
from cryoscope.analysis.tracking import PeakTracks, track_peaks
from cryoscope.datafile import (
    DEFAULT_TAG_CHUNK,
    Measurement,
    MeasurementError,
    in_intervals,
    open_measurement,
    read_frames,
)

__all__ = ["AnalysisResult", "LineResult", "StateResult", "align_apd2_delays", "analyze_file",
           "analyze_state_decay", "line_polarization"]

log = logging.getLogger(__name__)

#: Fewest photons for a decay fit, and for a two-exponential one.
MIN_DECAY_PHOTONS = 200
MIN_TWO_EXP_PHOTONS = 2000
#: Lines weaker than this fraction of a state's strongest line are not reported.
MIN_LINE_FRACTION = 0.01
#: A line this close (meV) to a replica position of a much stronger line is taken as a replica.
REPLICA_TOLERANCE_MEV = 2.0
#: ZPLs of different states closer than this are one line (meV).
SAME_LINE_MEV = 1.0
#: Fewest photons with a delay on each APD to measure the second APD's delay offset.
MIN_ALIGN_PHOTONS = 10_000
#: Bin of the decay histograms (ps).
DECAY_BIN_PS = 64.0


@dataclass(frozen=True)
class StateResult:
    """One spectral state: its frames, photons, decay and summed spectrum."""

    id: int
    n_frames: int
    fraction: float  #: share of the frames
    photons: int  #: APD photons during its frames
    count_rate_cps: float  #: APD photons per second of its exposures
    decay: DecayFit | None
    histogram: DecayHistogram
    spectrum: np.ndarray  #: summed V + H spectrum (ADU) on the analysis energy axis
    fit: SpectrumFit | None

    @property
    def zpl_ev(self) -> tuple[float, ...]:
        """Fitted ZPL energies of this state (eV)."""
        return tuple(line.zpl_ev for line in self.fit.lines) if self.fit else ()


@dataclass(frozen=True)
class LineResult:
    """One distinct emission line with its polarization."""

    zpl_ev: float
    zpl_err_ev: float
    fwhm_mev: float
    replica_weights: tuple[float, float]
    states: tuple[int, ...]  #: states whose spectrum shows it
    polarization: PolarizationFit | None
    window_ev: tuple[float, float]  #: energy window of the polarization analysis


@dataclass(frozen=True)
class AnalysisResult:
    """Everything :func:`analyze_file` found, for summaries, figures and the GUI."""

    measurement: Measurement
    photons: PhotonTable
    spectra: SpectralFrames
    frame_theta_deg: np.ndarray
    frame_moving: np.ndarray
    states: SpectralStates
    state_results: tuple[StateResult, ...]
    lines: tuple[LineResult, ...]
    trace: IntensityTrace
    change_points: ChangePoints | None
    levels: IntensityLevels | None
    decay_all: DecayHistogram
    decay_all_fit: DecayFit | None
    flid: Flid
    tracks: PeakTracks
    duration_s: float
    #: image readout: the V and H row bands binned into the spectra (None in track readout)
    image_bands: ImageBands | None = None
    #: g²(τ) of the two APDs (None without a second APD or without coincidences)
    g2: G2Result | None = None
    #: delay offset of the second APD subtracted before merging decays (ps; None: one APD or
    #: too few photons to measure it)
    apd2_delay_offset_ps: float | None = None
    #: every parameter of the analysis (arguments of :func:`analyze_file` and the thresholds)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def count_rate_cps(self) -> float:
        """Mean APD count rate over the measurement (counts/s)."""
        return self.photons.n / self.duration_s if self.duration_s > 0 else float("nan")


def analyze_state_decay(delay_ps: np.ndarray, period_ps: int, bin_ps: float = DECAY_BIN_PS
                        ) -> tuple[DecayHistogram, DecayFit | None]:
    """Decay histogram and the better (by BIC) of a one- and two-exponential fit."""
    hist = decay_histogram(delay_ps, period_ps, bin_ps)
    n = int(hist.counts.sum())
    if n < MIN_DECAY_PHOTONS:
        return hist, None
    fits = [fit_decay(hist, 1)]
    if n >= MIN_TWO_EXP_PHOTONS:
        two = fit_decay(hist, 2)
        ratio = two.taus_ns[1] / max(two.taus_ns[0], 1e-9)
        if two.success and ratio > 1.5 and min(two.weights) > 0.005:
            fits.append(two)
    best = min(fits, key=lambda f: f.bic)
    background = best.background_per_bin * hist.counts.size
    flat = max(best.taus_ns) > 2 * hist.period_ns
    if flat or best.photons < 5 * math.sqrt(max(background, 1.0)) + 20:
        log.info("decay: %d photons are background only", n)
        return hist, None
    return hist, best


def align_apd2_delays(photons: PhotonTable) -> tuple[PhotonTable, float | None]:
    """The table with the second APD's delays shifted onto the first APD's timing.

    The offset comes from :func:`~cryoscope.analysis.lifetime.detector_offset_ps` (needs
    :data:`MIN_ALIGN_PHOTONS` delays per APD; else the delays are left as they are and the
    offset is None). Unknown delays (−1) stay −1.
    """
    second = photons.from_apd2
    known = photons.delay_ps >= 0
    n2 = int(np.count_nonzero(second & known))
    n1 = int(np.count_nonzero(~second & known))
    if min(n1, n2) < MIN_ALIGN_PHOTONS:
        if n2:
            log.info("APD 2: %d / %d photons with a delay are too few to align its timing",
                     n2, n1)
        return photons, None
    period = photons.laser_period_ps
    offset = detector_offset_ps(photons.delay_ps[~second], photons.delay_ps[second], period)
    shift = second & known
    delay = photons.delay_ps.copy()
    delay[shift] = (delay[shift] - round(offset)) % period
    log.info("APD 2 records the decay %.0f ps after APD 1; shifted before merging", offset)
    return replace(photons, delay_ps=delay), offset


def line_polarization(spectra: SpectralFrames, window_ev: tuple[float, float],
                      frames: np.ndarray, theta_deg: np.ndarray) -> PolarizationFit | None:
    """Polarization of the light in an energy window over the given frames (indices)."""
    sel = (spectra.energy_ev >= window_ev[0]) & (spectra.energy_ev <= window_ev[1])
    if frames.size < 4 or not np.any(sel):
        return None
    scale = spectra.noise.adu_per_photon
    v = spectra.v[frames][:, sel].sum(axis=1) / scale
    h = spectra.h[frames][:, sel].sum(axis=1) / scale
    try:
        return fit_polarization(v, h, theta_deg[frames], counts_in_photons=True,
                                excess_noise=spectra.noise.excess)
    except ValueError as exc:
        log.warning("polarization fit in %s eV failed: %s", window_ev, exc)
        return None


def _fit_state_spectrum(spectra: SpectralFrames, spectrum: np.ndarray, n_frames: int
                        ) -> SpectrumFit | None:
    """Fit the lines of a state's summed spectrum; lines with less than MIN_LINE_FRACTION of the
    strongest one's area are dropped and the rest refitted."""
    sigma = np.sqrt(spectra.noise.variance(np.maximum(spectrum, 0), n_frames))
    zpls = find_zpls(spectra.energy_ev, spectrum, sigma)
    fit = None
    while zpls.size:
        try:
            fit = fit_lines(spectra.energy_ev, spectrum, zpls, spectra.noise, n_frames)
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.warning("line fit failed: %s", exc)
            return None
        areas = np.array([ln.area for ln in fit.lines])
        energies = np.array([ln.zpl_ev for ln in fit.lines])
        strong = (areas >= MIN_LINE_FRACTION * areas.max()) & ~_replica_like(energies, areas)
        if strong.all():
            return fit
        zpls = np.array([ln.zpl_ev for ln in fit.lines])[strong]
    return fit


def _replica_like(zpl_ev: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Lines sitting at −27 / −37 meV (± REPLICA_TOLERANCE_MEV) below a line with more than
    three times their area: a phonon replica taken for a ZPL (e.g. next to a split ZPL)."""
    below = (zpl_ev[None, :] - zpl_ev[:, None]) * 1000.0  # [i, j]: how far i lies below j
    near = np.zeros(below.shape, bool)
    for shift in REPLICA_SHIFTS_MEV:
        near |= np.abs(below - shift) < REPLICA_TOLERANCE_MEV
    return np.any(near & (areas[None, :] > 3 * areas[:, None]), axis=1)


def _distinct_lines(states: tuple[StateResult, ...]) -> list[tuple[float, float, float,
                                                                  tuple[float, float],
                                                                  list[int]]]:
    """Merge ZPLs of all states closer than SAME_LINE_MEV; the brightest instance describes it."""
    found: list[tuple[float, float, float, tuple[float, float], list[int], float]] = []
    for st in states:
        if st.fit is None:
            continue
        for line in st.fit.lines:
            for k, item in enumerate(found):
                if abs(item[0] - line.zpl_ev) * 1000 < SAME_LINE_MEV:
                    item[4].append(st.id)
                    if line.area > item[5]:
                        found[k] = (line.zpl_ev, line.zpl_err_ev, line.fwhm_mev,
                                    line.replica_weights, item[4], line.area)
                    break
            else:
                found.append((line.zpl_ev, line.zpl_err_ev, line.fwhm_mev, line.replica_weights,
                              [st.id], line.area))
    return [f[:5] for f in sorted(found, key=lambda f: f[0])]


def analyze_file(path: str | Path, *, bin_s: float = 0.01, chunk_tags: int = DEFAULT_TAG_CHUNK,
                 max_states: int = 5, seed: int = 0, change_points: bool = True,
                 tracking_regions_ev: np.ndarray | None = None) -> AnalysisResult:
    """Analyze one measurement file (see ``docs/analysis.md``).

    ``bin_s``: intensity-trace and FLID bin (s). ``max_states``: most spectral states tried.
    ``change_points``: run the Watkins–Yang change-point analysis of the APD photons.
    ``tracking_regions_ev``: ``[regions, 2]`` energy ranges (eV) for peak tracking; default one
    region around each line.
    """
    parameters = {
        "bin_s": bin_s, "chunk_tags": chunk_tags, "max_states": max_states, "seed": seed,
        "change_points": change_points,
        "tracking_regions_ev": (None if tracking_regions_ev is None
                                else np.asarray(tracking_regions_ev, float).tolist()),
        "decay_bin_ps": DECAY_BIN_PS, "min_decay_photons": MIN_DECAY_PHOTONS,
        "min_two_exp_photons": MIN_TWO_EXP_PHOTONS, "min_line_fraction": MIN_LINE_FRACTION,
        "replica_tolerance_mev": REPLICA_TOLERANCE_MEV, "same_line_mev": SAME_LINE_MEV,
        "min_align_photons": MIN_ALIGN_PHOTONS,
    }
    meas = open_measurement(path)
    if meas.readout not in ("tracks", "image"):
        raise MeasurementError(f"{path}: unknown camera readout {meas.readout!r}")
    photons = collect_photons(path, chunk_tags, meas)
    apd2_offset, g2 = None, None
    if meas.apd2_channel is not None:
        photons, apd2_offset = align_apd2_delays(photons)
        g2 = g2_from_photons(photons.time_ps, photons.from_apd2.astype(np.int8),
                             photons.laser_period_ps)
    n_frames = photons.frames.n
    if n_frames == 0:
        raise ValueError(f"{path}: no complete camera frame")
    bands = None
    if meas.readout == "image":
        frames, bands = read_image_spectra(path, meas, n_frames)
        v_track, h_track = 0, 1
    else:
        frames = read_frames(path)[:n_frames]
        names = [n.upper() for n in meas.track_names]
        v_track = names.index("V") if "V" in names else 0
        h_track = names.index("H") if "H" in names else 1
    spectra = prepare_spectra(frames, meas.wavelength_nm, v_track=v_track, h_track=h_track)
    theta = photons.frames.theta_deg
    moving = photons.frames.moving
    states = cluster_frames(spectra, k_max=max_states, seed=seed)
    exposure_s = (photons.frame_stop_ps[:n_frames] - photons.frame_start_ps[:n_frames]) * 1e-12
    label_of_frame = np.full(n_frames + 1, -1, int)
    label_of_frame[:n_frames] = states.labels
    ph_state = label_of_frame[photons.frame]
    state_results = []
    for sid in range(states.n_states):
        idx = np.flatnonzero(states.labels == sid)
        delays = photons.delay_ps[ph_state == sid]
        hist, decay = analyze_state_decay(delays, photons.laser_period_ps)
        spectrum = spectra.merged[idx].sum(axis=0)
        fit = _fit_state_spectrum(spectra, spectrum, idx.size)
        expo = float(exposure_s[idx].sum())
        state_results.append(StateResult(
            id=sid, n_frames=int(idx.size), fraction=idx.size / n_frames,
            photons=int(delays.size), count_rate_cps=delays.size / expo if expo > 0 else 0.0,
            decay=decay, histogram=hist, spectrum=spectrum, fit=fit))
    lines = []
    for zpl, err, fwhm, weights, sids in _distinct_lines(tuple(state_results)):
        half = max(1.5 * fwhm, 2.5 * spectra.pixel_mev, 0.8) / 1000.0
        window = (zpl - half, zpl + half)
        use = np.flatnonzero(np.isin(states.labels, sids) & ~moving)
        lines.append(LineResult(zpl_ev=zpl, zpl_err_ev=err, fwhm_mev=fwhm,
                                replica_weights=weights, states=tuple(sorted(set(sids))),
                                polarization=line_polarization(spectra, window, use, theta),
                                window_ev=window))
    start_ps = int(photons.frame_start_ps[0])
    stop_ps = int(photons.frame_stop_ps[n_frames - 1])
    duration_s = (stop_ps - start_ps) * 1e-12
    if math.isfinite(meas.duration_s) and meas.duration_s > 0:
        duration_s = meas.duration_s
    in_run = ((photons.time_ps >= start_ps) & (photons.time_ps < stop_ps)
              & ~in_intervals(photons.time_ps, meas.pauses_ps))
    trace = intensity_trace(photons.time_ps[in_run], bin_s, start_ps, stop_ps)
    cps, levels = None, None
    if change_points and photons.n > 20:
        cps = find_change_points(photons.time_ps[in_run])
        levels = group_levels(cps)
    hist_all, fit_all = analyze_state_decay(photons.delay_ps[in_run], photons.laser_period_ps)
    t0 = fit_all.t0_ns if fit_all else float(hist_all.centers_ns[np.argmax(hist_all.counts)])
    bg_cps = (fit_all.background_per_bin * hist_all.counts.size / max(duration_s, 1e-9)
              if fit_all else 0.0)
    gate_ns = 0.5 * hist_all.period_ns
    fl = flid(photons.time_ps[in_run], photons.delay_ps[in_run], gate_start_ns=t0 + 0.5,
              gate_ns=gate_ns, bin_s=bin_s, background_cps=bg_cps,
              period_ps=photons.laser_period_ps)
    regions = (_tracking_regions([ln.zpl_ev for ln in lines]) if tracking_regions_ev is None
               else np.asarray(tracking_regions_ev, float).reshape(-1, 2))
    tracks = track_peaks(spectra.energy_ev, spectra.merged, regions,
                         math.sqrt(spectra.noise.read_var_adu2))
    return AnalysisResult(
        measurement=meas, photons=photons, spectra=spectra, frame_theta_deg=theta,
        frame_moving=moving, states=states, state_results=tuple(state_results),
        lines=tuple(lines), trace=trace, change_points=cps, levels=levels, decay_all=hist_all,
        decay_all_fit=fit_all, flid=fl, tracks=tracks, duration_s=duration_s,
        image_bands=bands, g2=g2, apd2_delay_offset_ps=apd2_offset, parameters=parameters)


def _tracking_regions(zpls_ev: list[float], half_mev: float = 8.0) -> np.ndarray:
    """One region per line, ±``half_mev`` but not past the midpoint to a neighbour."""
    z = np.sort(np.asarray(zpls_ev, float))
    regions = []
    for i, c in enumerate(z):
        lo = c - half_mev / 1000
        hi = c + half_mev / 1000
        if i > 0:
            lo = max(lo, 0.5 * (z[i - 1] + c))
        if i < z.size - 1:
            hi = min(hi, 0.5 * (z[i + 1] + c))
        regions.append((lo, hi))
    return np.array(regions).reshape(-1, 2)
