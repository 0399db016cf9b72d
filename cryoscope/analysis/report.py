"""The whole analysis of one measurement file: :func:`analyze_file` → :class:`AnalysisResult`."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cryoscope.analysis.centers import CenterMap, map_centers
from cryoscope.analysis.changepoint import (
    ChangePoints,
    IntensityLevels,
    find_change_points,
    group_levels,
)
from cryoscope.analysis.configurations import ConfigurationStates, configuration_states
from cryoscope.analysis.flid import Flid, flid
from cryoscope.analysis.g2 import G2Result, g2_from_photons
from cryoscope.analysis.image import ImageBands, read_image_spectra
from cryoscope.analysis.jumps import Jump, find_jumps
from cryoscope.analysis.lifetime import (
    DecayFit,
    DecayHistogram,
    decay_histogram,
    detector_offset_ps,
    fit_decay,
    frame_mean_delay_ns,
)
from cryoscope.analysis.lines import REPLICA_SHIFTS_MEV, SpectrumFit, fit_lines
from cryoscope.analysis.measurement import (
    DEFAULT_TAG_CHUNK,
    Measurement,
    MeasurementError,
    open_measurement,
    read_frames,
)
from cryoscope.analysis.peaks import PEAK_WINDOW_MEV, find_frame_peaks
from cryoscope.analysis.photons import PhotonTable, collect_photons, rest_angles
from cryoscope.analysis.polarization import PolarizationFit
from cryoscope.analysis.spectra import SpectralFrames, prepare_spectra
from cryoscope.analysis.trace import IntensityTrace, intensity_trace
from cryoscope.analysis.tracking import PeakTracks

__all__ = ["AnalysisResult", "LineResult", "StateResult", "align_apd2_delays", "analyze_file",
           "analyze_state_decay", "parse_regions"]

log = logging.getLogger(__name__)

#: Fewest photons for a decay fit, and for a two-exponential one.
MIN_DECAY_PHOTONS = 200
MIN_TWO_EXP_PHOTONS = 2000
#: Lines weaker than this fraction of a state's strongest line are not reported.
MIN_LINE_FRACTION = 0.01
#: A line this close (meV) to a replica position of a much stronger line is taken as a replica.
REPLICA_TOLERANCE_MEV = 2.0
#: Fewest photons with a delay on each APD to measure the second APD's delay offset.
MIN_ALIGN_PHOTONS = 10_000


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
    """One distinct emission line of a center with its polarization."""

    zpl_ev: float
    zpl_err_ev: float
    fwhm_mev: float
    replica_weights: tuple[float, float]
    states: tuple[int, ...]  #: states whose spectrum shows it
    polarization: PolarizationFit | None
    window_ev: tuple[float, float]  #: energy range of its peaks (± the peak window)
    center: int = 0  #: its emission center
    charge: str = "X"  #: ``X`` neutral, ``X*`` charged
    uncertain: tuple[str, ...] = ()  #: why its p and φ are doubtful (empty: fine)


@dataclass(frozen=True)
class AnalysisResult:
    """Everything :func:`analyze_file` found, for summaries, figures and the GUI."""

    measurement: Measurement
    photons: PhotonTable
    spectra: SpectralFrames
    frame_theta_deg: np.ndarray
    frame_moving: np.ndarray
    states: ConfigurationStates
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
    #: emission centers, their lines and every frame's configuration
    centers: CenterMap
    #: spectral jumps of the centers, classified
    jumps: tuple[Jump, ...]
    #: mean photon delay of each frame after the decay's rise (ns; a lifetime per frame)
    frame_delay_ns: np.ndarray
    #: image readout: the V and H row bands binned into the spectra (None in track readout)
    image_bands: ImageBands | None = None
    #: g²(τ) of the two APDs (None without a second APD or without coincidences)
    g2: G2Result | None = None
    #: delay offset of the second APD subtracted before merging decays (ps; None: one APD or
    #: too few photons to measure it)
    apd2_delay_offset_ps: float | None = None

    @property
    def count_rate_cps(self) -> float:
        """Mean APD count rate over the measurement (counts/s)."""
        return self.photons.n / self.duration_s if self.duration_s > 0 else float("nan")


def analyze_state_decay(delay_ps: np.ndarray, period_ps: int, bin_ps: float = 64.0
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


def _fit_state_spectrum(spectra: SpectralFrames, spectrum: np.ndarray, n_frames: int,
                        zpls: np.ndarray, replica_shifts_mev: tuple[float, float]
                        ) -> SpectrumFit | None:
    """Fit the lines ``zpls`` (eV) of a state's summed spectrum with the given replica shifts;
    lines with less than MIN_LINE_FRACTION of the strongest one's area (or sitting at its
    replica) are dropped and the rest refitted."""
    fit = None
    while zpls.size:
        try:
            fit = fit_lines(spectra.energy_ev, spectrum, zpls, spectra.noise, n_frames,
                            replica_shifts_mev=replica_shifts_mev)
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.warning("line fit failed: %s", exc)
            return None
        areas = np.array([ln.area for ln in fit.lines])
        energies = np.array([ln.zpl_ev for ln in fit.lines])
        strong = ((areas >= MIN_LINE_FRACTION * areas.max())
                  & ~_replica_like(energies, areas, fit.replica_shifts_mev))
        if strong.all():
            return fit
        zpls = energies[strong]
    return fit


def _replica_like(zpl_ev: np.ndarray, areas: np.ndarray,
                  shifts_mev: tuple[float, float] = REPLICA_SHIFTS_MEV) -> np.ndarray:
    """Lines sitting at a replica shift (± REPLICA_TOLERANCE_MEV) below a line with more than
    three times their area: a phonon replica taken for a ZPL (e.g. next to a split ZPL)."""
    below = (zpl_ev[None, :] - zpl_ev[:, None]) * 1000.0  # [i, j]: how far i lies below j
    near = np.zeros(below.shape, bool)
    for shift in shifts_mev:
        near |= np.abs(below - shift) < REPLICA_TOLERANCE_MEV
    return np.any(near & (areas[None, :] > 3 * areas[:, None]), axis=1)


def _state_zpls(cmap: CenterMap, states: ConfigurationStates, sid: int) -> np.ndarray:
    """The ZPLs a state shows: each center's line, at its median energy in the state's frames."""
    in_state = states.labels[cmap.peaks.frame] == sid
    out = []
    for ln in states.lines[sid]:
        if ln >= 0:
            sel = in_state & (cmap.peak_line == ln)
            out.append(float(np.median(cmap.peaks.energy_ev[sel])) if np.any(sel)
                       else cmap.lines[ln].energy_ev)
    return np.array(out)


def _replica_shifts(cmap: CenterMap) -> tuple[float, float]:
    """Mean fitted replica shifts of the centers (the start values if none was fitted)."""
    found = [c.replica_shifts_mev for c in cmap.centers if np.all(np.isfinite(
        c.replica_shifts_mev))]
    if not found:
        return REPLICA_SHIFTS_MEV
    mean = np.mean(np.array(found), axis=0)
    return float(mean[0]), float(mean[1])


def _line_results(cmap: CenterMap, states: ConfigurationStates, window_mev: float
                  ) -> list[LineResult]:
    out = []
    for i, ln in enumerate(cmap.lines):
        seen_in = tuple(sorted({s for s in range(states.n_states) if i in states.lines[s]}))
        e = cmap.peaks.energy_ev[ln.peaks]
        fit = ln.fit
        out.append(LineResult(
            zpl_ev=ln.energy_ev, zpl_err_ev=ln.energy_err_ev,
            fwhm_mev=fit.fwhm_mev if fit else math.nan,
            replica_weights=fit.replica_weights if fit else (math.nan, math.nan),
            states=seen_in, polarization=ln.polarization,
            window_ev=(float(e.min()) - window_mev / 1000, float(e.max()) + window_mev / 1000),
            center=ln.center, charge=ln.charge, uncertain=ln.uncertain))
    return out


def _tracks(cmap: CenterMap, jumps: tuple[Jump, ...]) -> PeakTracks:
    """The centers' peak tracks in the form of the region tracking (Fig. 4d)."""
    regions = np.array([c.region_ev for c in cmap.centers]).reshape(-1, 2)
    single = tuple((j.frame, c, s) for j in jumps for c, s in zip(j.centers, j.shifts_mev,
                                                                   strict=True))
    return PeakTracks(regions_ev=regions, peak_ev=cmap.frame_energy_ev, jumps=single,
                      simultaneous=tuple(j.frame for j in jumps if len(j.centers) > 1))


def parse_regions(text: str) -> np.ndarray:
    """``"LO:HI,LO:HI,..."`` (eV, one range per center) as a ``[centers, 2]`` array.

    Raises ValueError naming the bad range (not two numbers, LO ≥ HI, overlapping ranges).
    """
    out = []
    for part in text.split(","):
        bounds = part.split(":")
        try:
            lo, hi = (float(b) for b in bounds)
        except ValueError:
            raise ValueError(f"region {part.strip()!r} is not LO:HI in eV") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"region {part.strip()!r} needs LO < HI")
        out.append((lo, hi))
    regions = np.array(out)
    order = np.argsort(regions[:, 0])
    if np.any(regions[order][1:, 0] < regions[order][:-1, 1]):
        raise ValueError(f"regions {text!r} overlap")
    return regions


def analyze_file(path: str | Path, *, bin_s: float = 0.01, chunk_tags: int = DEFAULT_TAG_CHUNK,
                 change_points: bool = True, tracking_regions_ev: np.ndarray | None = None,
                 jump_mev: float = 2.0) -> AnalysisResult:
    """Analyze one measurement file (see ``docs/analysis.md``).

    ``bin_s``: intensity-trace and FLID bin (s). ``change_points``: run the Watkins–Yang
    change-point analysis of the APD photons. ``tracking_regions_ev``: ``[centers, 2]`` energy
    ranges (eV), one per emission center: a frame's peaks in a range are that center's; default:
    the centers are found from polarization, co-occurrence and energy. ``jump_mev``: least shift
    of a center's peak between frames that counts as a jump.
    """
    meas = open_measurement(path)
    if meas.readout not in ("tracks", "image"):
        raise MeasurementError(f"{path}: unknown camera readout {meas.readout!r}")
    photons = collect_photons(path, chunk_tags, meas)
    apd2_offset, g2 = None, None
    if meas.apd2_channel is not None:
        photons, apd2_offset = align_apd2_delays(photons)
        g2 = g2_from_photons(photons.time_ps, photons.from_apd2.astype(np.int8),
                             photons.laser_period_ps)
    n_frames = min(meas.n_frames, photons.frame_start_ps.size, photons.frame_stop_ps.size)
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
    rest = rest_angles(meas.start_angle_deg, meas.reached_deg, meas.waveplate_zero_deg)
    theta = photons.frame_theta_deg(rest)[:n_frames]
    moving = photons.frame_moving()[:n_frames]
    hist_all, fit_all = analyze_state_decay(photons.delay_ps, photons.laser_period_ps)
    t0 = fit_all.t0_ns if fit_all else float(hist_all.centers_ns[np.argmax(hist_all.counts)])
    frame_delay = frame_mean_delay_ns(photons.frame, photons.delay_ps, n_frames, t0 * 1000.0,
                                      photons.laser_period_ps)
    cmap = map_centers(spectra, find_frame_peaks(spectra), theta, moving, tracking_regions_ev,
                       frame_delay)
    states = configuration_states(cmap)
    exposure_s = (photons.frame_stop_ps[:n_frames] - photons.frame_start_ps[:n_frames]) * 1e-12
    label_of_frame = np.full(n_frames + 1, -1, int)
    label_of_frame[:n_frames] = states.labels
    ph_frame = np.where(photons.frame < n_frames, photons.frame, -1)
    ph_state = label_of_frame[ph_frame]
    shifts = _replica_shifts(cmap)
    state_results = []
    for sid in range(states.n_states):
        idx = np.flatnonzero(states.labels == sid)
        delays = photons.delay_ps[ph_state == sid]
        hist, decay = analyze_state_decay(delays, photons.laser_period_ps)
        spectrum = spectra.merged[idx].sum(axis=0)
        fit = _fit_state_spectrum(spectra, spectrum, idx.size, _state_zpls(cmap, states, sid),
                                  shifts)
        expo = float(exposure_s[idx].sum())
        state_results.append(StateResult(
            id=sid, n_frames=int(idx.size), fraction=idx.size / n_frames,
            photons=int(delays.size), count_rate_cps=delays.size / expo if expo > 0 else 0.0,
            decay=decay, histogram=hist, spectrum=spectrum, fit=fit))
    lines = _line_results(cmap, states, PEAK_WINDOW_MEV)
    start_ps = int(photons.frame_start_ps[0])
    stop_ps = int(photons.frame_stop_ps[n_frames - 1])
    duration_s = (stop_ps - start_ps) * 1e-12
    if math.isfinite(meas.duration_s) and meas.duration_s > 0:
        duration_s = meas.duration_s
    in_run = (photons.time_ps >= start_ps) & (photons.time_ps < stop_ps)
    trace = intensity_trace(photons.time_ps[in_run], bin_s, start_ps, stop_ps)
    cps, levels = None, None
    if change_points and photons.n > 20:
        cps = find_change_points(photons.time_ps[in_run])
        levels = group_levels(cps)
    bg_cps = (fit_all.background_per_bin * hist_all.counts.size / max(duration_s, 1e-9)
              if fit_all else 0.0)
    gate_ns = 0.5 * hist_all.period_ns
    fl = flid(photons.time_ps[in_run], photons.delay_ps[in_run], gate_start_ns=t0 + 0.5,
              gate_ns=gate_ns, bin_s=bin_s, background_cps=bg_cps,
              period_ps=photons.laser_period_ps)
    jumps = find_jumps(cmap.frame_line, cmap.frame_energy_ev,
                       tuple(ln.charge for ln in cmap.lines),
                       photons.frame_start_ps[:n_frames] * 1e-12, jump_mev=jump_mev)
    return AnalysisResult(
        measurement=meas, photons=photons, spectra=spectra, frame_theta_deg=theta,
        frame_moving=moving, states=states, state_results=tuple(state_results),
        lines=tuple(lines), trace=trace, change_points=cps, levels=levels, decay_all=hist_all,
        decay_all_fit=fit_all, flid=fl, tracks=_tracks(cmap, jumps), duration_s=duration_s,
        image_bands=bands, g2=g2, apd2_delay_offset_ps=apd2_offset, centers=cmap, jumps=jumps,
        frame_delay_ns=frame_delay)
