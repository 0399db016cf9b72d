"""The simulated particle's hidden state over time: the ground truth of every simulation.

A particle has one emission center (a dot) or two (a dot molecule). Each center switches between
``NEUTRAL``, ``CHARGED`` (negative trion) and ``DARK`` (a trap that silences it); its ZPL wanders by
spectral-diffusion jumps, shifts when the *other* center is charged (dimer coupling) and when a
surface charge sits next to it (the surface charge hops on its own, and may move next to the other
center when one center charges). The trajectory is generated lazily, event by event, from its own
random stream, so it does not depend on how often the bench asks for it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim_hardware.params import EmitterParams, SampleParams
from sim_hardware.units import PS_PER_S


class EmitterState(enum.IntEnum):
    NEUTRAL = 0
    CHARGED = 1
    DARK = 2


STATE_NAMES = tuple(s.name.lower() for s in EmitterState)


@dataclass(frozen=True, slots=True)
class Segment:
    """An interval ``[start_ps, end_ps)`` in which every center's state and ZPL are constant."""

    start_ps: int
    end_ps: int
    states: tuple[EmitterState, ...]
    zpl_ev: tuple[float, ...]


class _Center:
    """Mutable state of one emission center while the trajectory is generated."""

    def __init__(self, params: EmitterParams) -> None:
        self.params = params
        self.state = EmitterState.NEUTRAL
        self.next_switch_s = np.inf
        self.diffusion_ev = 0.0
        self.next_diffusion_s = np.inf


class SampleModel:
    """Generates the particle's state trajectory on demand (times in tagger picoseconds)."""

    def __init__(self, params: SampleParams, rng: np.random.Generator) -> None:
        self.params = params
        self._rng = rng
        self._centers = [_Center(p) for p in params.emitters]
        self._surface_center = -1
        self._next_surface_s = self._exp(params.surface_charge_rate_hz, 0.0)
        for center in self._centers:
            center.next_switch_s = self._dwell(center, 0.0)
            center.next_diffusion_s = self._exp(center.params.spectral_diffusion_rate_hz, 0.0) \
                if center.params.spectral_diffusion_mev > 0 else np.inf
        self._starts: list[int] = [0]
        self._states: list[tuple[EmitterState, ...]] = [self._current_states()]
        self._zpls: list[tuple[float, ...]] = [self._current_zpls()]
        self._generated_until_s = 0.0

    @property
    def n_centers(self) -> int:
        return len(self._centers)

    # -- public ------------------------------------------------------------------------------

    def segments(self, start_ps: int, end_ps: int) -> list[Segment]:
        """The constant-state intervals covering ``[start_ps, end_ps)``, clipped to it."""
        self._generate_until(end_ps / PS_PER_S)
        starts = self._starts
        first = int(np.searchsorted(starts, start_ps, side="right")) - 1
        out: list[Segment] = []
        i = max(first, 0)
        while i < len(starts) and starts[i] < end_ps:
            seg_end = starts[i + 1] if i + 1 < len(starts) else end_ps
            s, e = max(starts[i], start_ps), min(seg_end, end_ps)
            if e > s:
                out.append(Segment(s, e, self._states[i], self._zpls[i]))
            i += 1
        return out

    def truth(self, until_ps: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8],
                                            npt.NDArray[np.float64]]:
        """Interval start times (s), states ``[m, centers]`` and ZPLs (eV) up to ``until_ps``."""
        self._generate_until(until_ps / PS_PER_S)
        n = int(np.searchsorted(self._starts, until_ps, side="left")) or 1
        times = np.asarray(self._starts[:n], dtype=np.float64) / PS_PER_S
        states = np.asarray(self._states[:n], dtype=np.int8).reshape(n, self.n_centers)
        zpls = np.asarray(self._zpls[:n], dtype=np.float64).reshape(n, self.n_centers)
        return times, states, zpls

    # -- generation ----------------------------------------------------------------------------

    def _exp(self, rate_hz: float, now_s: float) -> float:
        return now_s + self._rng.exponential(1.0 / rate_hz) if rate_hz > 0 else np.inf

    def _power_law(self, median_s: float) -> float:
        """A dwell time from P(t) ∝ t^-α·exp(-t/τc), t ≥ t_min, with the given median."""
        alpha = self.params.blinking_alpha
        assert alpha is not None
        t_min = median_s / 2.0 ** (1.0 / (alpha - 1.0))
        while True:
            t = t_min * (1.0 - self._rng.random()) ** (-1.0 / (alpha - 1.0))
            if self._rng.random() < np.exp(-t / self.params.blinking_cutoff_s):
                return t

    def _dwell(self, center: _Center, now_s: float) -> float:
        p = center.params
        if center.state is EmitterState.NEUTRAL:
            rate = p.charging_rate_hz + p.dark_rate_hz
        elif center.state is EmitterState.CHARGED:
            rate = p.discharging_rate_hz + p.dark_rate_hz
        else:
            rate = p.dark_recovery_rate_hz
        if rate <= 0:
            return np.inf
        if self.params.blinking_alpha is None:
            return self._exp(rate, now_s)
        return now_s + self._power_law(1.0 / rate)

    def _switch(self, center: _Center) -> None:
        p = center.params
        if center.state is EmitterState.DARK:
            center.state = EmitterState.NEUTRAL
            return
        to_other = p.charging_rate_hz if center.state is EmitterState.NEUTRAL \
            else p.discharging_rate_hz
        total = to_other + p.dark_rate_hz
        if self._rng.random() * total < to_other:
            center.state = EmitterState.CHARGED if center.state is EmitterState.NEUTRAL \
                else EmitterState.NEUTRAL
        else:
            center.state = EmitterState.DARK

    def _current_states(self) -> tuple[EmitterState, ...]:
        return tuple(c.state for c in self._centers)

    def _current_zpls(self) -> tuple[float, ...]:
        zpls = []
        for i, center in enumerate(self._centers):
            p = center.params
            shift_mev = p.trion_shift_mev if center.state is EmitterState.CHARGED else 0.0
            others_charged = sum(
                1 for j, other in enumerate(self._centers)
                if j != i and other.state is EmitterState.CHARGED
            )
            shift_mev += self.params.dimer_coupling_mev * others_charged
            if self._surface_center == i:
                shift_mev += self.params.surface_charge_shift_mev
            zpls.append(p.zpl_ev + center.diffusion_ev + shift_mev * 1e-3)
        return tuple(zpls)

    def _generate_until(self, t_s: float) -> None:
        while self._generated_until_s < t_s:
            candidates = [c.next_switch_s for c in self._centers]
            candidates += [c.next_diffusion_s for c in self._centers]
            candidates.append(self._next_surface_s)
            k = int(np.argmin(candidates))
            t_event = candidates[k]
            if not np.isfinite(t_event):
                self._generated_until_s = np.inf
                return
            n = self.n_centers
            if k < n:
                center = self._centers[k]
                self._switch(center)
                center.next_switch_s = self._dwell(center, t_event)
                if center.state is EmitterState.CHARGED and n > 1 \
                        and self.params.surface_charge_on_charging > 0 \
                        and self._rng.random() < self.params.surface_charge_on_charging:
                    others = [j for j in range(n) if j != k]
                    self._surface_center = int(others[self._rng.integers(len(others))])
            elif k < 2 * n:
                center = self._centers[k - n]
                center.diffusion_ev = self._rng.normal(
                    0.0, center.params.spectral_diffusion_mev * 1e-3)
                center.next_diffusion_s = self._exp(
                    center.params.spectral_diffusion_rate_hz, t_event)
            else:
                choices = [-1, *range(n)]
                choices.remove(self._surface_center)
                self._surface_center = int(self._rng.choice(choices))
                self._next_surface_s = self._exp(self.params.surface_charge_rate_hz, t_event)
            t_ps = round(t_event * PS_PER_S)
            if t_ps == self._starts[-1]:
                self._states[-1], self._zpls[-1] = self._current_states(), self._current_zpls()
            else:
                self._starts.append(t_ps)
                self._states.append(self._current_states())
                self._zpls.append(self._current_zpls())
            self._generated_until_s = t_event
