"""The simulated optical bench: one virtual timeline, one particle, one optical path.

Every simulated instrument is a thin facade over a :class:`Bench`. Virtual time advances only when
the acquisition waits on the :class:`~sim_hardware.clock.SimClock`; whenever an instrument is read
or commanded, the bench first *catches up*: it generates the particle's emission up to "now" and
sends each photon where the optics send it —

* a 50:50 beam splitter: half to the APD arm (one APD, or two behind a second 50:50 splitter),
  half to the spectrograph arm;
* APD arm: detection delay, timing jitter (Gaussian IRF), dark counts and stray light,
  afterpulsing, dead time, and a click on the APD's time-tagger input;
* spectrograph arm: the half-wave plate at the stage's angle *at the photon's time* and the
  polarizing beam splitter pick V or H (``I_V ∝ t_V(1 + p cos(4θ − 2φ))/2``, ``I_H ∝
  t_H(1 − p cos(4θ − 2φ))/2``), unpolarized stray light joins, and the camera integrates the
  photon only if it is exposing.

Past state is never rewritten (the stage's motion history is append-only, exposures in the past
are fixed), so catching up lazily gives the same photons as a continuous simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sim_hardware.emission import LaserState, emit, line_energies_ev
from sim_hardware.motion import MotionHistory
from sim_hardware.params import BenchParams
from sim_hardware.sample import SampleModel, SampleTruth
from sim_hardware.units import HC_EV_NM, PS_PER_S

#: FWHM of a Gaussian in units of its standard deviation, 2·sqrt(2·ln 2).
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: Center index that marks stray-light photons in the spectrograph arm.
STRAY_LIGHT = -1


def dead_time_keep(t_ps: npt.NDArray[np.int64], last_ps: int | None,
                   dead_ps: int) -> npt.NDArray[np.bool_]:
    """Which events of a sorted stream a detector with a dead time registers (non-paralyzable).

    An event is lost if it comes within ``dead_ps`` of the previous *registered* one (``last_ps``
    is the last registered before this stream, if any). An event far enough from its predecessor
    stays so when earlier events are dropped, so it is registered; an event too close to a
    registered one is lost. Removing those and repeating is exact and takes as many rounds as
    the longest run of colliding events (two or three).
    """
    previous = -dead_ps - 1 if last_ps is None else last_ps
    bad = np.diff(t_ps, prepend=previous) <= dead_ps
    if not bad.any():
        return np.ones(t_ps.shape[0], bool)  # no collision (the common case)
    index = np.arange(t_ps.shape[0])
    while True:
        index = index[~(bad & np.concatenate(([True], ~bad[:-1])))]
        if not index.shape[0]:
            break
        bad = np.diff(t_ps[index], prepend=previous) <= dead_ps
        if not bad.any():
            break
    keep = np.zeros(t_ps.shape[0], bool)
    keep[index] = True
    return keep


@dataclass(frozen=True, slots=True)
class Wiring:
    """Which time-tagger input each signal is cabled to, and how the waveplate is mounted."""

    apd: int = 1
    laser_sync: int = 2
    camera_fire: int = 3
    stage_motion: int = 4
    apd2: int | None = None
    #: Stage angle at which the waveplate's fast axis is vertical (a fact of the bench).
    waveplate_zero_deg: float = 0.0


class SpectrographArmSink(Protocol):
    """Whatever sits at the spectrograph's exit (the camera)."""

    def deposit(self, time_ps: npt.NDArray[np.int64], is_h: npt.NDArray[np.bool_],
                energy_ev: npt.NDArray[np.float64]) -> None: ...

    def collecting(self, now_ps: int) -> bool:
        """Whether photons arriving from ``now_ps`` on may still be integrated."""
        ...


@dataclass(frozen=True, slots=True)
class _SpectroPhotons:
    """Photons in the spectrograph arm, before the waveplate (in no particular order)."""

    time_ps: npt.NDArray[np.int64]
    center: npt.NDArray[np.int8]
    energy_ev: npt.NDArray[np.float64]
    #: A uniform draw per photon that picks V, H or loss at the polarizing beam splitter.
    u: npt.NDArray[np.float64]

    @classmethod
    def empty(cls) -> _SpectroPhotons:
        return cls(np.empty(0, np.int64), np.empty(0, np.int8), np.empty(0), np.empty(0))

    def extend(self, other: _SpectroPhotons) -> _SpectroPhotons:
        """Both sets (a photon may outlive the chunk it was excited in)."""
        if not self.time_ps.size:
            return other
        return _SpectroPhotons(np.concatenate([self.time_ps, other.time_ps]),
                               np.concatenate([self.center, other.center]),
                               np.concatenate([self.energy_ev, other.energy_ev]),
                               np.concatenate([self.u, other.u]))

    def split(self, t_ps: int) -> tuple[_SpectroPhotons, _SpectroPhotons]:
        """The photons before ``t_ps``, and the others."""
        due = self.time_ps < t_ps
        if due.all():
            return self, _SpectroPhotons.empty()
        return self._take(due), self._take(~due)

    def _take(self, mask: npt.NDArray[np.bool_]) -> _SpectroPhotons:
        return _SpectroPhotons(self.time_ps[mask], self.center[mask], self.energy_ev[mask],
                               self.u[mask])


#: The bench generates emission ahead of time in chunks of this many picoseconds (0.5 s).
CHUNK_PS = 500_000_000_000


class Bench:
    """Shared state of the simulated rig."""

    def __init__(self, params: BenchParams, wiring: Wiring | None = None) -> None:
        self.params = params
        self.wiring = wiring or Wiring()
        streams = np.random.SeedSequence(params.seed).spawn(6)
        (self.rng_sample, self._rng_emission, self._rng_apd, self._rng_optics, self.rng_camera,
         self.rng_read_noise) = (np.random.default_rng(s) for s in streams)
        self.sample = SampleModel(params.sample, self.rng_sample)
        self.now_ps = 0
        self._laser = LaserState(1e6, 300.0, 475.0, emission_on=True)
        self.stage = MotionHistory(0.0)
        self.spectrograph_sink: SpectrographArmSink | None = None
        self.tagger_listening = False
        #: edges not yet released, in the order they were put on the inputs; each array sorted
        self._pending_t: list[npt.NDArray[np.int64]] = []
        self._pending_ch: list[npt.NDArray[np.int32]] = []
        # emission generated ahead of now, not yet released to the detectors
        self._generated_ps = 0
        self._released_ps = 0
        self._clicks: dict[int, npt.NDArray[np.int64]] = {}
        self._last_click_ps: dict[int, int] = {}
        self._spectro = _SpectroPhotons.empty()
        #: the faults of this bench (a ``sim_hardware.faults.FaultSchedule``, set by its
        #: ``install``; asked on every instrument call, so held here rather than looked up)
        self.fault_schedule: object = None

    # -- time ---------------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        return self.now_ps / PS_PER_S

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (only the clock calls this)."""
        if seconds > 0:
            self.now_ps += round(seconds * PS_PER_S)

    # -- the laser ------------------------------------------------------------------------------

    @property
    def laser(self) -> LaserState:
        return self._laser

    @laser.setter
    def laser(self, state: LaserState) -> None:
        """Change the excitation from now on: emission generated ahead is drawn again."""
        self.catch_up()
        self.flush_spectrograph()
        self._laser = state
        self._clicks = {ch: t[t < self.now_ps] for ch, t in self._clicks.items()}
        self._spectro = self._spectro.split(self.now_ps)[0]
        self._generated_ps = self.now_ps

    # -- signals on the tagger inputs ---------------------------------------------------------

    def add_edges(self, times_ps: npt.ArrayLike, channels: npt.ArrayLike) -> None:
        """Put edges on the tagger inputs (possibly in the future: released when time passes)."""
        t = np.atleast_1d(np.asarray(times_ps, dtype=np.int64))
        ch = np.empty(t.shape, np.int32)
        ch[...] = channels
        if t.shape[0] > 1 and not np.all(t[1:] >= t[:-1]):
            order = np.argsort(t, kind="stable")
            t, ch = t[order], ch[order]
        self._pending_t.append(t)
        self._pending_ch.append(ch)

    def cancel_edges(self, channel: int, from_ps: int) -> None:
        """Remove not-yet-happened edges of one input (``±channel``) at or after ``from_ps``."""
        for i, (t, ch) in enumerate(zip(self._pending_t, self._pending_ch, strict=True)):
            keep = ~((np.abs(ch) == channel) & (t >= from_ps))
            self._pending_t[i], self._pending_ch[i] = t[keep], ch[keep]

    def release_edges(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """All edges before now, in time order (removed from the bench)."""
        self.catch_up()
        due_t, due_ch, rest_t, rest_ch = [], [], [], []
        for t, ch in zip(self._pending_t, self._pending_ch, strict=True):
            n = int(np.searchsorted(t, self.now_ps))  # each array is sorted
            if n:
                due_t.append(t[:n])
                due_ch.append(ch[:n])
            if n < t.shape[0]:
                rest_t.append(t[n:])
                rest_ch.append(ch[n:])
        self._pending_t, self._pending_ch = rest_t, rest_ch
        if len(due_t) < 2:  # one sorted array (most polls: the APD clicks) or none
            return (due_t[0], due_ch[0]) if due_t else (np.empty(0, np.int64),
                                                        np.empty(0, np.int32))
        t, ch = np.concatenate(due_t), np.concatenate(due_ch)
        order = np.argsort(t, kind="stable")  # ties in the order the edges were put
        return t[order], ch[order]

    # -- emission -----------------------------------------------------------------------------

    def catch_up(self) -> None:
        """Release the APD clicks up to now onto the tagger inputs."""
        now = self.now_ps
        if now <= self._released_ps:
            return
        self._released_ps = now
        if self._observed(now):
            self._generate_until(now)
        elif self._generated_ps < now:
            # nobody looks (no tag stream, no exposure): emission need not be drawn
            self._generated_ps = now
        for channel, clicks in self._clicks.items():
            n = int(np.searchsorted(clicks, now))
            if n and self.tagger_listening:
                self.add_edges(clicks[:n], channel)
            self._clicks[channel] = clicks[n:]

    def _observed(self, now_ps: int) -> bool:
        sink = self.spectrograph_sink
        return self.tagger_listening or (sink is not None and sink.collecting(now_ps))

    def flush_spectrograph(self) -> None:
        """Send the spectrograph arm's photons up to now through the waveplate to the camera."""
        self.catch_up()
        due, self._spectro = self._spectro.split(self.now_ps)
        if due.time_ps.size:
            self._polarize(due)

    def _generate_until(self, until_ps: int) -> None:
        while self._generated_ps < until_ps:
            start = self._generated_ps
            end = start + CHUNK_PS
            self._generated_ps = end
            segments = self.sample.segments(start, end)
            photons = emit(segments, self._laser, self.params.sample, 2, self._rng_emission)
            to_apd = self._rng_optics.random(len(photons)) < 0.5
            self._detect_apd(photons.time_ps[to_apd], start, end)
            spectro = np.flatnonzero(~to_apd)
            center = photons.center[spectro]
            self._spectro = self._spectro.extend(self._with_stray_light(
                photons.time_ps[spectro], center,
                line_energies_ev(self.params.sample, center, photons.zpl_ev[spectro],
                                 self._rng_emission),
                start, end))

    def _with_stray_light(self, time_ps: npt.NDArray[np.int64], center: npt.NDArray[np.int8],
                          energy_ev: npt.NDArray[np.float64], start: int,
                          end: int) -> _SpectroPhotons:
        """The spectrograph arm's photons plus its stray light in ``[start, end)``. Stray light
        is unpolarized (center −1), uniform in time and in wavelength over
        ``stray_light_band_nm``."""
        rng = self._rng_optics
        n_stray = int(rng.poisson(self.params.sample.background_cps * (end - start) / PS_PER_S))
        if n_stray:
            low, high = self.params.optics.stray_light_band_nm
            time_ps = np.concatenate([time_ps, rng.integers(start, end, size=n_stray)])
            center = np.concatenate([center, np.full(n_stray, STRAY_LIGHT, np.int8)])
            energy_ev = np.concatenate([energy_ev, HC_EV_NM / rng.uniform(low, high, n_stray)])
        return _SpectroPhotons(time_ps, center, energy_ev, rng.random((time_ps.shape[0],)))

    def _detect_apd(self, times_ps: npt.NDArray[np.int64], start: int, end: int) -> None:
        """APD arm of ``[start, end)``: an optional second 50:50 splitter, signal delay, timing
        jitter (Gaussian IRF), dark counts and stray light, afterpulses, dead time."""
        w, optics, rng = self.wiring, self.params.optics, self._rng_apd
        detectors = [w.apd] if w.apd2 is None else [w.apd, w.apd2]
        which = rng.integers(0, len(detectors), size=times_ps.shape[0]) if w.apd2 is not None \
            else np.zeros(times_ps.shape[0], np.int64)
        sigma_ps = optics.apd_jitter_fwhm_ps / FWHM_PER_SIGMA
        dead_ps = round(optics.apd_dead_time_ns * 1e3)
        background_cps = self.params.sample.background_cps / len(detectors) + optics.apd_dark_cps
        for k, channel in enumerate(detectors):
            t = times_ps[which == k] + round(optics.apd_delay_ns * 1e3)
            if sigma_ps > 0:
                t = t + np.rint(rng.normal(0.0, sigma_ps, t.shape[0])).astype(np.int64)
            n_dark = int(rng.poisson(background_cps * (end - start) / PS_PER_S))
            if n_dark:
                t = np.concatenate([t, rng.integers(start, end, size=n_dark)])
            t = np.sort(t, kind="stable")  # timsort: nearly sorted runs
            if optics.apd_afterpulsing > 0:
                after = rng.random((t.shape[0],)) < optics.apd_afterpulsing
                if after.any():
                    t_after = t[after] + dead_ps + np.rint(rng.exponential(
                        optics.apd_afterpulse_delay_ns * 1e3, int(after.sum()))).astype(np.int64)
                    t = np.sort(np.concatenate([t, t_after]), kind="stable")
            t = self._apply_dead_time(channel, t, dead_ps)
            held = self._clicks.get(channel)
            if held is not None and held.size:
                t = np.concatenate([held, t])
                if t[held.size] < held[-1]:  # a late photon of the previous chunk
                    t.sort(kind="stable")
            self._clicks[channel] = t

    def _apply_dead_time(self, channel: int, t: npt.NDArray[np.int64],
                         dead_ps: int) -> npt.NDArray[np.int64]:
        """The APD's dead time on its clicks (sorted ``t``), continuing from earlier chunks."""
        keep = dead_time_keep(t, self._last_click_ps.get(channel), dead_ps)
        if not keep.all():
            t = t[keep]
        if t.shape[0]:
            self._last_click_ps[channel] = int(t[-1])
        return t

    def _polarize(self, photons: _SpectroPhotons) -> None:
        if self.spectrograph_sink is None or photons.time_ps.shape[0] == 0:
            return
        optics, emitters = self.params.optics, self.params.sample.emitters
        theta = np.deg2rad(self.stage.angle_at(photons.time_ps) - self.wiring.waveplate_zero_deg)
        # index −1 (stray light) picks the appended unpolarized entry
        phi = np.deg2rad(np.array([*(e.dipole_angle_deg for e in emitters), 0.0]))[photons.center]
        p = np.array([*(e.polarization_degree for e in emitters), 0.0])[photons.center]
        modulation = p * np.cos(4 * theta - 2 * phi)
        p_v = optics.transmission_v * (1 + modulation) / 2
        p_h = optics.transmission_h * (1 - modulation) / 2
        u = photons.u
        seen = u < p_v + p_h
        self.spectrograph_sink.deposit(photons.time_ps[seen], u[seen] >= p_v[seen],
                                       photons.energy_ev[seen])

    # -- ground truth -------------------------------------------------------------------------

    def truth(self) -> SampleTruth:
        """The particle's true trajectory up to now: state intervals and events."""
        return self.sample.truth(max(self.now_ps, 1))
