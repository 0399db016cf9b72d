"""The whole analysis of one measurement file: :func:`analyze_file` → :class:`AnalysisResult`."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cryoscope.analysis.centers import CenterMap, map_centers
from cryoscope.analysis.changepoint import (
    ChangePoints,
    ChangePointStream,
    IntensityLevels,
    group_levels,
)
from cryoscope.analysis.configurations import ConfigurationStates, configuration_states
from cryoscope.analysis.flid import Flid, FlidBins
from cryoscope.analysis.g2 import G2Correlator, G2Result
from cryoscope.analysis.image import ImageBands, read_image_spectra
from cryoscope.analysis.jumps import Jump, find_jumps
from cryoscope.analysis.lifetime import (
    DecayFit,
    DecayHistogram,
    FrameDelaySums,
    decay_histogram,
    fit_decay,
)
from cryoscope.analysis.lines import REPLICA_SHIFTS_MEV, SpectrumFit, fit_lines
from cryoscope.analysis.peaks import PEAK_WINDOW_MEV, find_frame_peaks
from cryoscope.analysis.photons import PhotonPasses, PhotonSummary, PhotonTable
from cryoscope.analysis.polarization import PolarizationFit
from cryoscope.analysis.selection import (
    DECAY_BIN_PS,
    MIN_ALIGN_PHOTONS,
    Apd2Offset,
    RunDecay,
    aligned_delays,
    run_window,
)
from cryoscope.analysis.spectra import SpectralFrames, prepare_spectra
from cryoscope.analysis.trace import IntensityTrace, intensity_trace
from cryoscope.analysis.tracking import PeakTracks
from cryoscope.datafile import (
    DEFAULT_TAG_CHUNK,
    Measurement,
    MeasurementError,
    in_intervals,
    open_measurement,
    read_frames,
    read_timing,
)

__all__ = ["AnalysisResult", "LineResult", "StateResult", "align_apd2_delays", "analyze_file",
           "analyze_state_decay", "fit_state_decay", "parse_regions"]

log = logging.getLogger(__name__)

#: Fewest photons for a decay fit, and for a two-exponential one.
MIN_DECAY_PHOTONS = 200
MIN_TWO_EXP_PHOTONS = 2000
#: Lines weaker than this fraction of a state's strongest line are not reported.
MIN_LINE_FRACTION = 0.01
#: A line this close (meV) to a replica position of a much stronger line is taken as a replica.
REPLICA_TOLERANCE_MEV = 2.0


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
    photons: PhotonSummary
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
    #: every parameter of the analysis (arguments of :func:`analyze_file` and the thresholds)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def count_rate_cps(self) -> float:
        """Mean APD count rate over the measurement (counts/s): the photons outside the pauses
        and the clicks the time tagger missed in overflows, over :attr:`duration_s` (pauses
        left out) — :meth:`cryoscope.datafile.Measurement.count_rate_cps`."""
        return self.measurement.count_rate_cps(self.photons.n - self.photons.n_paused,
                                               self.duration_s)


def analyze_state_decay(delay_ps: np.ndarray, period_ps: int, bin_ps: float = DECAY_BIN_PS
                        ) -> tuple[DecayHistogram, DecayFit | None]:
    """Decay histogram and the better (by BIC) of a one- and two-exponential fit."""
    hist = decay_histogram(delay_ps, period_ps, bin_ps)
    return hist, fit_state_decay(hist)


def fit_state_decay(hist: DecayHistogram) -> DecayFit | None:
    """The better (by BIC) of a one- and two-exponential fit of a decay histogram, or None for
    too few photons or background only."""
    n = int(hist.counts.sum())
    if n < MIN_DECAY_PHOTONS:
        return None
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
        return None
    return best


def align_apd2_delays(photons: PhotonTable) -> tuple[PhotonTable, float | None]:
    """The table with the second APD's delays shifted onto the first APD's timing.

    The offset comes from :class:`~cryoscope.analysis.selection.Apd2Offset` (needs
    :data:`MIN_ALIGN_PHOTONS` delays per APD; else the delays are left as they are and the
    offset is None). Unknown delays (−1) stay −1.
    """
    measured = Apd2Offset(photons.laser_period_ps)
    measured.add(photons.delay_ps, photons.detector)
    offset = measured.offset_ps()
    if offset is None:
        return photons, None
    return replace(photons, delay_ps=_aligned(photons, offset)), offset


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

    The photons are streamed from the file in chunks of ``chunk_tags`` tags (every photon booked
    once, in time order) and only histograms and per-bin or per-frame sums are kept, so memory
    does not grow with the number of photons: the frames' spectra are the only per-frame arrays.
    Passes over the photons: the decay of the whole run (its rise sets the per-frame lifetime)
    and the second APD's delay offset; trace, change points, g² and per-frame lifetimes; then,
    with the states known, their decays and the FLID. Which photons trace, decay of the whole
    run and FLID count, and how the APDs are merged, is :mod:`cryoscope.analysis.selection`
    (the live views' rules too).
    """
    regions = (None if tracking_regions_ev is None
               else np.asarray(tracking_regions_ev, float).reshape(-1, 2))
    parameters = {
        "bin_s": bin_s, "chunk_tags": chunk_tags, "change_points": change_points,
        "tracking_regions_ev": None if regions is None else regions.tolist(),
        "jump_mev": jump_mev, "decay_bin_ps": DECAY_BIN_PS,
        "min_decay_photons": MIN_DECAY_PHOTONS, "min_two_exp_photons": MIN_TWO_EXP_PHOTONS,
        "min_line_fraction": MIN_LINE_FRACTION, "replica_tolerance_mev": REPLICA_TOLERANCE_MEV,
        "min_align_photons": MIN_ALIGN_PHOTONS,
    }
    meas = open_measurement(path)
    if meas.readout not in ("tracks", "image"):
        raise MeasurementError(f"{path}: unknown camera readout {meas.readout!r}")
    timing = read_timing(meas, chunk_tags)
    frames_t = timing[2]
    n_frames = frames_t.n
    if n_frames == 0:
        raise ValueError(f"{path}: no complete camera frame")
    period = meas.laser_period_ps

    passes = PhotonPasses(meas, chunk_tags, timing)

    def photon_chunks() -> Iterator[PhotonTable]:
        return iter(passes)

    # from the first stored frame's exposure to the last one's end; left out of trace,
    # levels, decays and FLID: pauses (the particle was being re-centred) and tagger overflows
    # (clicks and syncs were lost)
    window = run_window(frames_t, meas.pauses_ps, meas.overflows_ps)
    assert window is not None  # there is a frame
    start_ps, stop_ps, gaps = window.start_ps, window.stop_ps, window.gaps_ps
    duration_s = (stop_ps - start_ps) * 1e-12
    if math.isfinite(meas.duration_s) and meas.duration_s > 0:
        duration_s = meas.duration_s

    # the decay of the whole run (its rise is where each frame's lifetime is measured from)
    # and the second APD's offset
    two_apds = meas.apd2_channel is not None
    run_decay = RunDecay(period, two_apds)
    offset = Apd2Offset(period)
    for chunk in photon_chunks():
        if two_apds:
            offset.add(chunk.delay_ps, chunk.detector)
        run = window.contains(chunk.time_ps)
        run_decay.add(chunk.delay_ps[run], chunk.detector[run])
    apd2_offset = offset.offset_ps() if two_apds else None
    if apd2_offset is not None:
        log.info("APD 2 records the decay %.0f ps after APD 1; shifted before merging",
                 apd2_offset)
    elif two_apds:
        log.info("APD 2: %d / %d photons with a delay are too few to align its timing",
                 *(int(c.sum()) for c in offset.counts[::-1]))
    hist_all = run_decay.histogram(apd2_offset)
    empty = decay_histogram(np.zeros(0, np.int64), period, DECAY_BIN_PS)
    n_decay_bins = empty.counts.size
    fit_all = fit_state_decay(hist_all)
    t0 = fit_all.t0_ns if fit_all else float(hist_all.centers_ns[np.argmax(hist_all.counts)])

    bin_ps = round(bin_s * 1e12)
    n_bins = window.trace_bins(bin_s)
    trace_counts = np.zeros(n_bins, np.int64)
    frame_delays = FrameDelaySums(n_frames, t0 * 1000.0, period)
    correlator = G2Correlator(period) if meas.apd2_channel is not None else None
    stream = ChangePointStream() if change_points else None
    n_photons = n_apd2 = in_run_photons = n_paused = 0
    pauses = meas.pauses_ps
    for chunk in photon_chunks():
        delay = _aligned(chunk, apd2_offset)
        n_photons += chunk.n
        n_paused += int(np.count_nonzero(in_intervals(chunk.time_ps, pauses)))
        n_apd2 += int(np.count_nonzero(chunk.from_apd2))
        if correlator is not None:
            correlator.feed(chunk.time_ps, chunk.detector)
        run = window.contains(chunk.time_ps)
        frame_delays.add(np.where(run, chunk.frame, -1), delay)
        t_run = chunk.time_ps[run]
        in_run_photons += t_run.size
        trace_counts += intensity_trace(t_run, bin_s, start_ps, stop_ps).counts
        if stream is not None:
            stream.feed(_close_gaps(t_run, gaps))
    g2 = correlator.result() if correlator is not None else None
    trace = IntensityTrace(start_s=(start_ps + np.arange(n_bins) * bin_ps) * 1e-12,
                           counts=trace_counts, bin_s=bin_s)
    frame_delay = frame_delays.mean_ns()
    theta, moving = frames_t.theta_deg, frames_t.moving
    # a second thread finds the change points while the spectra are mapped, then fits the
    # states' spectra while their photons are counted and their decays fitted (the compiled
    # steps and scipy's special functions run without the GIL)
    with ThreadPoolExecutor(1, thread_name_prefix="analysis") as pool:
        levels_job = (pool.submit(_levels, stream, gaps)
                      if stream is not None and in_run_photons > 20 else None)
        spectra, bands = _spectra(path, meas, n_frames)
        cmap = map_centers(spectra, find_frame_peaks(spectra), theta, moving, regions,
                           frame_delay)
        states = configuration_states(cmap)
        spectra_job = pool.submit(_state_spectra, spectra, cmap, states)
        label_of_frame = np.full(n_frames + 1, -1, np.int64)
        label_of_frame[:n_frames] = states.labels

        # with the states known: their decays, and the FLID
        state_counts = np.zeros((states.n_states, n_decay_bins), np.int64)
        state_photons = np.zeros(states.n_states, np.int64)
        bg_cps = (fit_all.background_per_bin * hist_all.counts.size / max(duration_s, 1e-9)
                  if fit_all else 0.0)
        flid_bins = FlidBins(start_ps, t0 + 0.5, 0.5 * hist_all.period_ns, bin_s)
        for chunk in photon_chunks():
            delay = _aligned(chunk, apd2_offset)
            run = window.contains(chunk.time_ps)
            ph_state = label_of_frame[np.where(run, chunk.frame, -1)]
            known = ph_state >= 0
            state_photons += np.bincount(ph_state[known], minlength=states.n_states)
            for sid in np.unique(ph_state[known]).tolist():
                state_counts[sid] += decay_histogram(delay[ph_state == sid], period,
                                                     DECAY_BIN_PS).counts
            flid_bins.add(chunk.time_ps[run], delay[run])
        fl = flid_bins.flid(background_cps=bg_cps, period_ps=period)
        hists = [replace(empty, counts=state_counts[sid]) for sid in range(states.n_states)]
        decays = [fit_state_decay(hist) for hist in hists]
        cps, levels = levels_job.result() if levels_job is not None else (None, None)
        state_spectra = spectra_job.result()

    exposure_s = (frames_t.stop_ps - frames_t.start_ps) * 1e-12
    state_results = []
    for sid, (spectrum, fit) in enumerate(state_spectra):
        idx = np.flatnonzero(states.labels == sid)
        expo = float(exposure_s[idx].sum())
        count = int(state_photons[sid])
        state_results.append(StateResult(
            id=sid, n_frames=int(idx.size), fraction=idx.size / n_frames,
            photons=count, count_rate_cps=count / expo if expo > 0 else 0.0,
            decay=decays[sid], histogram=hists[sid], spectrum=spectrum, fit=fit))
    lines = _line_results(cmap, states, PEAK_WINDOW_MEV)
    jumps = find_jumps(cmap.frame_line, cmap.frame_energy_ev,
                       tuple(ln.charge for ln in cmap.lines), frames_t.start_ps * 1e-12,
                       jump_mev=jump_mev)
    summary = PhotonSummary(n=n_photons, n_apd2=n_apd2, frames=frames_t, stage=timing[1],
                            laser_period_ps=period, n_paused=n_paused)
    log.info("%s: %d photons (%d from APD 2), %d frames", path, n_photons, n_apd2, n_frames)
    return AnalysisResult(
        measurement=meas, photons=summary, spectra=spectra, frame_theta_deg=theta,
        frame_moving=moving, states=states, state_results=tuple(state_results),
        lines=tuple(lines), trace=trace, change_points=cps, levels=levels, decay_all=hist_all,
        decay_all_fit=fit_all, flid=fl, tracks=_tracks(cmap, jumps), duration_s=duration_s,
        image_bands=bands, g2=g2, apd2_delay_offset_ps=apd2_offset, centers=cmap, jumps=jumps,
        frame_delay_ns=frame_delay, parameters=parameters)


def _state_spectra(spectra: SpectralFrames, cmap: CenterMap, states: ConfigurationStates
                   ) -> list[tuple[np.ndarray, SpectrumFit | None]]:
    """Each state's summed spectrum and the fit of its lines."""
    shifts = _replica_shifts(cmap)
    out = []
    for sid in range(states.n_states):
        idx = np.flatnonzero(states.labels == sid)
        spectrum = spectra.merged[idx].sum(axis=0)
        out.append((spectrum, _fit_state_spectrum(spectra, spectrum, idx.size,
                                                  _state_zpls(cmap, states, sid), shifts)))
    return out


def _levels(stream: ChangePointStream, gaps: np.ndarray
            ) -> tuple[ChangePoints, IntensityLevels]:
    """The change points of the photons fed to ``stream`` and their intensity levels."""
    cps = _reopen_gaps(stream.finish(), gaps)
    return cps, group_levels(cps)


def _spectra(path: str | Path, meas: Measurement, n_frames: int
             ) -> tuple[SpectralFrames, ImageBands | None]:
    """The V and H spectra of the first ``n_frames`` frames (and the bands of an image
    readout)."""
    bands = None
    if meas.readout == "image":
        frames, bands = read_image_spectra(path, meas, n_frames)
        v_track, h_track = 0, 1
    else:
        frames = read_frames(path)[:n_frames]
        names = [n.upper() for n in meas.track_names]
        v_track = names.index("V") if "V" in names else 0
        h_track = names.index("H") if "H" in names else 1
    return prepare_spectra(frames, meas.wavelength_nm, v_track=v_track, h_track=h_track), bands


def _close_gaps(time_ps: np.ndarray, gaps_ps: np.ndarray) -> np.ndarray:
    """Photon times with the left-out intervals (pauses, overflows) cut out of the time axis,
    so that a gap is no dark segment to the change-point analysis."""
    if gaps_ps.shape[0] == 0:
        return time_ps
    before = np.concatenate([[0], np.cumsum(gaps_ps[:, 1] - gaps_ps[:, 0])])
    return time_ps - before[np.searchsorted(gaps_ps[:, 1], time_ps, side="right")]


def _reopen_gaps(cps: ChangePoints, gaps_ps: np.ndarray) -> ChangePoints:
    """Change points found on :func:`_close_gaps` times, back on the tagger's time axis."""
    if gaps_ps.shape[0] == 0:
        return cps
    before = np.concatenate([[0], np.cumsum(gaps_ps[:, 1] - gaps_ps[:, 0])])
    closed_starts = gaps_ps[:, 0] - before[:-1]
    t = cps.time_s * 1e12
    real = (t + before[np.searchsorted(closed_starts, t, side="right")]) * 1e-12
    return replace(cps, time_s=real)


def _aligned(chunk: PhotonTable, apd2_offset: float | None) -> np.ndarray:
    """The chunk's delays with the second APD's offset removed (unknown delays stay −1)."""
    return aligned_delays(chunk.delay_ps, chunk.detector, chunk.laser_period_ps, apd2_offset)
