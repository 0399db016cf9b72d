"""Photon emission of the simulated particle under pulsed excitation.

Per laser pulse the particle absorbs ``N ~ Poisson(⟨N⟩)`` photons (⟨N⟩ from the pulse fluence and
the absorption cross-section: this is the saturation). If ``N ≥ 1`` the excitation relaxes to one
emission center (``branching``), whose state (neutral, charged, dark) sets the exciton quantum
yield ``QY_X``. If ``N ≥ 2`` a biexciton forms first: it decays after ``Exp(biexciton_lifetime)``
and emits a photon with ``QY_XX = biexciton_yield · QY_X`` (otherwise it decays by Auger), leaving
one exciton that then emits with ``QY_X`` — a cascade of at most two photons per pulse, which sets
the depth of the antibunching dip (:func:`expected_g2_zero`).

Pulses are independent Bernoulli trials "something was collected" (drawn as geometric gaps, so
every pulse carries at most one cascade), then each collected pulse gets its outcome (X only, XX
only, both). Photon delays come from the state's decay; energies from the line shape: a Lorentzian
ZPL plus the center's two LO-phonon replicas (CdSe and CdS, ``phonon_energies_mev`` below it); the
biexciton photon comes at the ZPL minus the center's biexciton binding energy. What is returned are
the photons that reach *a* detector arm; arms, polarization and detectors are the bench's
business.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from sim_hardware.params import SampleParams
from sim_hardware.sample import EmitterState, Segment
from sim_hardware.units import HC_EV_NM, PS_PER_S

ELEMENTARY_CHARGE_C = 1.602176634e-19
#: Replicas are broader than the ZPL by this factor.
PHONON_WIDTH_FACTOR = 3.0
#: Lorentzian tails are truncated at this many half widths (keeps photons near the line).
LORENTZ_CLIP_HWHM = 200.0


@dataclass(frozen=True, slots=True)
class LaserState:
    """The excitation: repetition rate (Hz), average power at the sample (nW), wavelength (nm)."""

    repetition_rate_hz: float
    power_nw: float
    wavelength_nm: float
    emission_on: bool

    @property
    def period_ps(self) -> int:
        return round(PS_PER_S / self.repetition_rate_hz)

    def mean_absorbed(self, sample: SampleParams) -> float:
        """Mean number of photons absorbed per pulse ⟨N⟩ = σ · (photons per pulse / spot area)."""
        photon_j = HC_EV_NM / self.wavelength_nm * ELEMENTARY_CHARGE_C
        photons_per_pulse = self.power_nw * 1e-9 / self.repetition_rate_hz / photon_j
        fluence_cm2 = photons_per_pulse / (sample.spot_area_um2 * 1e-8)
        return fluence_cm2 * sample.absorption_cross_section_cm2


@dataclass(frozen=True, slots=True)
class PhotonBatch:
    """Collected photons: their emission time (ps), center, the ZPL energy of their transition
    (eV; the photon's own energy is drawn from the line shape around it by
    :func:`line_energies_ev`, only where a spectrum is taken) and whether they are the
    biexciton photon of a cascade (in no particular order)."""

    time_ps: npt.NDArray[np.int64]
    center: npt.NDArray[np.int8]
    zpl_ev: npt.NDArray[np.float64]
    biexciton: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.time_ps.shape[0])

    @classmethod
    def empty(cls) -> PhotonBatch:
        return cls(np.empty(0, np.int64), np.empty(0, np.int8), np.empty(0, np.float64),
                   np.empty(0, np.bool_))

    @classmethod
    def concat(cls, batches: list[PhotonBatch]) -> PhotonBatch:
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        return cls(*(np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(cls)))


def quantum_yield(sample: SampleParams, center: int, state: EmitterState) -> float:
    """Exciton quantum yield of one center in one state (the trion is dimmer, dark is 0)."""
    if state is EmitterState.DARK:
        return 0.0
    qy = sample.quantum_yield
    if state is EmitterState.CHARGED:
        qy *= sample.emitters[center].trion_brightness
    return qy


def excitation_probabilities(mean_absorbed: float) -> tuple[float, float]:
    """P(N = 1) and P(N ≥ 2) for ``N ~ Poisson(mean_absorbed)`` absorbed photons per pulse."""
    p0 = float(np.exp(-mean_absorbed))
    p1 = mean_absorbed * p0
    return p1, max(0.0, 1.0 - p0 - p1)


def expected_g2_zero(mean_absorbed: float, biexciton_yield: float) -> float:
    """g²(0) (center-peak over side-peak area) of one bright center without background.

    With ``n`` photons emitted per pulse, ``g²(0) = E[n(n−1)] / E[n]²``; the cascade gives
    ``2·P(N≥2)·b / (P(N≥1) + P(N≥2)·b)²`` (``b`` = biexciton_yield; the exciton QY cancels), which
    tends to ``b`` at low excitation and to ``2b/(1+b)²`` in saturation.
    """
    p1, p2 = excitation_probabilities(mean_absorbed)
    mean_n = p1 + p2 + p2 * biexciton_yield
    return 2.0 * p2 * biexciton_yield / mean_n**2 if mean_n > 0 else 0.0


def _bernoulli_indices(n_trials: int, p: float,
                       rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Sorted indices of the successes among ``n_trials`` Bernoulli(p) trials (geometric gaps)."""
    if p <= 0 or n_trials <= 0:
        return np.empty(0, np.int64)
    if p >= 1:
        return np.arange(n_trials, dtype=np.int64)
    expected = n_trials * p
    chunks: list[npt.NDArray[np.int64]] = []
    last = -1
    while True:
        size = int(expected + 6 * np.sqrt(expected) + 16)
        idx = last + np.cumsum(rng.geometric(p, size=size).astype(np.int64, copy=False))
        done = idx[-1] >= n_trials
        idx = idx[:int(np.searchsorted(idx, n_trials))]  # idx increases
        chunks.append(idx)
        if done:
            break
        last = int(idx[-1])
        expected = (n_trials - last) * p
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def _draw_categories(cum: npt.NDArray[np.float64], n: int,
                     rng: np.random.Generator) -> npt.NDArray[np.intp]:
    """Indices of ``n`` draws from the distribution with cumulative weights ``cum`` (few)."""
    u = rng.random(n) * cum[-1]
    index = np.zeros(n, np.intp)
    for edge in cum[:-1]:
        index += u >= edge
    return index


def _exciton_delays_ps(sample: SampleParams, center: int, state: EmitterState, n: int,
                       rng: np.random.Generator) -> npt.NDArray[np.float64]:
    p = sample.emitters[center]
    if state is EmitterState.CHARGED:
        return rng.exponential(p.trion_lifetime_ns * 1e3, n)
    taus = np.asarray(p.lifetimes_ns, dtype=np.float64) * 1e3
    if taus.shape[0] == 1:
        return rng.exponential(taus[0], n)
    which = _draw_categories(np.cumsum(p.lifetime_weights), n, rng)
    return rng.exponential(1.0, n) * taus[which]


def line_energies_ev(sample: SampleParams, center: npt.NDArray[np.int8],
                     zpl_ev: npt.NDArray[np.float64],
                     rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Photon energies from each photon's line shape: a Lorentzian ZPL at ``zpl_ev`` plus its
    center's LO-phonon replicas (``phonon_energies_mev`` below it, broader by
    ``PHONON_WIDTH_FACTOR``)."""
    n = center.shape[0]
    emitters = sample.emitters
    # per center: cumulative areas of ZPL, CdSe and CdS replicas, and the three half widths
    areas = np.array([[1.0, *e.phonon_weights] for e in emitters])
    cum = np.cumsum(areas / areas.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(n)
    which = (u >= cum[:, 0][center]).astype(np.intp) + (u >= cum[:, 1][center])
    line = center.astype(np.intp) * areas.shape[1] + which  # (center, line) as a flat index
    hwhm_ev = 0.5e-3 * np.array([[e.linewidth_mev, e.linewidth_mev * PHONON_WIDTH_FACTOR,
                                  e.linewidth_mev * PHONON_WIDTH_FACTOR] for e in emitters])
    offsets = -1e-3 * np.array([[0.0, *e.phonon_energies_mev] for e in emitters]).ravel()[line]
    # inverse CDF of a Lorentzian truncated at ±LORENTZ_CLIP_HWHM (no pile-up at the cut)
    edge = np.arctan(LORENTZ_CLIP_HWHM) / np.pi
    lorentz = np.tan(np.pi * edge * (2 * rng.random(n) - 1))
    return zpl_ev + offsets + hwhm_ev.ravel()[line] * lorentz


#: Outcomes of a collected pulse, in this order: exciton photon only after a single excitation;
#: exciton photon only after a biexciton; biexciton photon only; both photons of the cascade.
N_OUTCOMES = 4


def emit(segments: list[Segment], laser: LaserState, sample: SampleParams, arms: int,
         rng: np.random.Generator) -> PhotonBatch:
    """Photons reaching ``arms`` detector arms (each arm with ``detection_efficiency``).

    The photons come grouped by segment, center and kind, not sorted by time.
    """
    if not laser.emission_on or laser.power_nw <= 0 or not segments:
        return PhotonBatch.empty()
    period = laser.period_ps
    p1, p2 = excitation_probabilities(laser.mean_absorbed(sample))
    branching = np.array([e.branching for e in sample.emitters], dtype=np.float64)
    branching = branching / branching.sum() if branching.sum() > 0 else branching
    collect = min(1.0, arms * sample.detection_efficiency)
    b = sample.biexciton_yield
    tau_xx_ps = sample.biexciton_lifetime_ns * 1e3
    batches: list[PhotonBatch] = []
    for seg in segments:
        first_pulse = -(-seg.start_ps // period)
        n_pulses = -(-seg.end_ps // period) - first_pulse
        if n_pulses <= 0:
            continue
        # probability of each (center, outcome) per pulse
        probs = np.zeros((len(seg.states), N_OUTCOMES))
        for c, state in enumerate(seg.states):
            a = quantum_yield(sample, c, state) * collect  # exciton photon collected
            x = b * quantum_yield(sample, c, state) * collect  # biexciton photon collected
            probs[c] = branching[c] * np.array([p1 * a, p2 * a * (1 - x), p2 * x * (1 - a),
                                                p2 * a * x])
        p_any = float(probs.sum())
        pulses = _bernoulli_indices(int(n_pulses), min(p_any, 1.0), rng)
        n = pulses.shape[0]
        if n == 0:
            continue
        pulse_ps = (first_pulse + pulses) * period
        # group the collected pulses by (center, outcome): contiguous runs of ``order``
        which = _draw_categories(np.cumsum(probs.ravel()), n, rng)
        small = np.int8 if probs.size <= np.iinfo(np.int8).max else np.int16
        order = np.argsort(which.astype(small), kind="stable")  # a radix sort, byte by byte
        bounds = np.concatenate(([0], np.cumsum(np.bincount(which, minlength=probs.size))))
        for c, (state, zpl) in enumerate(zip(seg.states, seg.zpl_ev, strict=True)):
            single, x_only, xx_only, both = (
                order[bounds[N_OUTCOMES * c + j]:bounds[N_OUTCOMES * c + j + 1]]
                for j in range(N_OUTCOMES))
            t_x_only = rng.exponential(tau_xx_ps, x_only.shape[0])
            t_xx_only = rng.exponential(tau_xx_ps, xx_only.shape[0])
            t_both = rng.exponential(tau_xx_ps, both.shape[0])
            x_pulses = np.concatenate([single, x_only, both])
            if x_pulses.shape[0]:
                nx = x_pulses.shape[0]
                delay = np.concatenate([np.zeros(single.shape[0]), t_x_only, t_both]) \
                    + _exciton_delays_ps(sample, c, state, nx, rng)
                batches.append(_batch(pulse_ps[x_pulses], delay, c, zpl, False))
            xx_pulses = np.concatenate([xx_only, both])
            if xx_pulses.shape[0]:
                batches.append(_batch(pulse_ps[xx_pulses], np.concatenate([t_xx_only, t_both]),
                                      c, zpl + sample.biexciton_offset_mev(c) * 1e-3, True))
    return PhotonBatch.concat(batches)


def _batch(pulse_ps: npt.NDArray[np.int64], delay_ps: npt.NDArray[np.float64], center: int,
           zpl_ev: float, biexciton: bool) -> PhotonBatch:
    n = pulse_ps.shape[0]
    return PhotonBatch(pulse_ps + np.rint(delay_ps).astype(np.int64), np.full(n, center, np.int8),
                       np.full(n, zpl_ev), np.full(n, biexciton, np.bool_))
