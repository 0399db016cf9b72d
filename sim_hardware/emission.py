"""Photon emission of the simulated particle under pulsed excitation.

For each interval of constant state (:class:`~sim_hardware.sample.Segment`) and each laser pulse
in it, the particle absorbs a Poisson number of photons (mean from the pulse fluence and the
absorption cross-section: saturation), relaxes to one of its centers (``branching``), and emits
with that center's state-dependent quantum yield. Emitted photons are collected with the
detection efficiency of each arm; what is returned are the photons that reach *a* detector arm,
with their pulse, delay, center, state and energy. Arms, polarization and detectors are the
bench's business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim_hardware.params import SampleParams
from sim_hardware.sample import EmitterState, Segment

PS_PER_S = 1_000_000_000_000
HC_EV_NM = 1239.84193
#: LO-phonon replica offsets from the ZPL (eV): CdSe and CdS.
PHONON_SHIFTS_EV = (-0.027, -0.037)
#: Replicas are broader than the ZPL by this factor.
PHONON_WIDTH_FACTOR = 3.0


@dataclass(frozen=True, slots=True)
class LaserState:
    repetition_rate_hz: float
    power_nw: float
    wavelength_nm: float
    emission_on: bool

    @property
    def period_ps(self) -> int:
        return round(PS_PER_S / self.repetition_rate_hz)

    def mean_absorbed(self, sample: SampleParams) -> float:
        """Mean number of photons absorbed per pulse ⟨N⟩."""
        photon_j = HC_EV_NM / self.wavelength_nm * 1.602176634e-19
        photons_per_pulse = self.power_nw * 1e-9 / self.repetition_rate_hz / photon_j
        fluence_cm2 = photons_per_pulse / (sample.spot_area_um2 * 1e-8)
        return fluence_cm2 * sample.absorption_cross_section_cm2


@dataclass(frozen=True, slots=True)
class PhotonBatch:
    """Collected photons, sorted by emission time."""

    pulse_ps: npt.NDArray[np.int64]
    time_ps: npt.NDArray[np.int64]
    center: npt.NDArray[np.int8]
    state: npt.NDArray[np.int8]
    energy_ev: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.time_ps.shape[0])

    @classmethod
    def concat(cls, batches: list[PhotonBatch]) -> PhotonBatch:
        if not batches:
            return cls(*(np.empty(0, dt) for dt in (np.int64, np.int64, np.int8, np.int8,
                                                     np.float64)))
        return cls(*(np.concatenate(arrays) for arrays in zip(
            *((b.pulse_ps, b.time_ps, b.center, b.state, b.energy_ev) for b in batches),
            strict=True)))


def _quantum_yield(sample: SampleParams, center: int, state: EmitterState) -> float:
    if state is EmitterState.DARK:
        return 0.0
    qy = sample.quantum_yield
    if state is EmitterState.CHARGED:
        qy *= sample.emitters[center].trion_brightness
    return qy


def _delays_ps(sample: SampleParams, center: int, state: EmitterState, n: int,
               rng: np.random.Generator) -> npt.NDArray[np.float64]:
    p = sample.emitters[center]
    if state is EmitterState.CHARGED:
        taus = np.full(n, p.trion_lifetime_ns)
    else:
        weights = np.asarray(p.lifetime_weights, dtype=np.float64)
        which = rng.choice(len(weights), size=n, p=weights / weights.sum())
        taus = np.asarray(p.lifetimes_ns)[which]
    return rng.exponential(taus * 1e3)


def _energies_ev(sample: SampleParams, center: int, zpl_ev: float, n: int,
                 rng: np.random.Generator) -> npt.NDArray[np.float64]:
    p = sample.emitters[center]
    areas = np.array([1.0, *p.phonon_weights])
    which = rng.choice(3, size=n, p=areas / areas.sum())
    offsets = np.array([0.0, *PHONON_SHIFTS_EV])[which]
    hwhm_ev = 0.5e-3 * p.linewidth_mev * np.where(which == 0, 1.0, PHONON_WIDTH_FACTOR)
    return zpl_ev + offsets + hwhm_ev * rng.standard_cauchy(n).clip(-200, 200)


def emit(segments: list[Segment], laser: LaserState, sample: SampleParams, arms: int,
         rng: np.random.Generator) -> PhotonBatch:
    """Photons reaching ``arms`` detector arms (each with ``detection_efficiency``)."""
    if not laser.emission_on or laser.power_nw <= 0:
        return PhotonBatch.concat([])
    period = laser.period_ps
    p_excited = 1.0 - np.exp(-laser.mean_absorbed(sample))
    branching = np.array([e.branching for e in sample.emitters], dtype=np.float64)
    branching = branching / branching.sum() if branching.sum() > 0 else branching
    collect = min(1.0, arms * sample.detection_efficiency)
    batches: list[PhotonBatch] = []
    for seg in segments:
        first_pulse = -(-seg.start_ps // period)
        n_pulses = -(-seg.end_ps // period) - first_pulse
        if n_pulses <= 0:
            continue
        for c, (state, zpl) in enumerate(zip(seg.states, seg.zpl_ev, strict=True)):
            p_photon = p_excited * branching[c] * _quantum_yield(sample, c, state) * collect
            n = int(rng.binomial(n_pulses, p_photon)) if p_photon > 0 else 0
            if n == 0:
                continue
            pulse = (first_pulse + rng.integers(0, n_pulses, size=n)) * period
            delay = _delays_ps(sample, c, state, n, rng)
            batches.append(PhotonBatch(
                pulse.astype(np.int64),
                pulse.astype(np.int64) + np.rint(delay).astype(np.int64),
                np.full(n, c, np.int8),
                np.full(n, int(state), np.int8),
                _energies_ev(sample, c, zpl, n, rng),
            ))
    batch = PhotonBatch.concat(batches)
    order = np.argsort(batch.time_ps, kind="stable")
    return PhotonBatch(batch.pulse_ps[order], batch.time_ps[order], batch.center[order],
                       batch.state[order], batch.energy_ev[order])
