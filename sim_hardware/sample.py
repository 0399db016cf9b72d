"""The simulated particle's hidden state over time: the ground truth of every simulation.

A particle has one emission center (a dot) or two (a dot molecule) on a line, the dimer axis. Each
center switches between ``NEUTRAL``, ``CHARGED`` (negative trion) and ``DARK`` (a trap that
silences it), may bleach (dark for good), and may charge together with the other centers (joint
charging). Its ZPL wanders by spectral-diffusion jumps (partly common to all centers when they are
correlated), shifts when *another* center is charged (dimer coupling) and by a surface charge
according to the charge's distance along the axis. The surface charge hops on its own and may move
next to another center when a center charges or discharges, so that both lines jump at once. The
trajectory is generated lazily, event by event, from its own random stream, so it does not depend
on how often the bench asks for it. Every event is recorded with what it did to each ZPL.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from sim_hardware.params import EmitterParams, SampleParams
from sim_hardware.units import PS_PER_S


class EmitterState(enum.IntEnum):
    NEUTRAL = 0
    CHARGED = 1
    DARK = 2


STATE_NAMES = tuple(s.name.lower() for s in EmitterState)


class JumpKind(enum.IntEnum):
    """What changed a center's state or ZPL."""

    CHARGING = 0  #: one center charged
    DISCHARGING = 1  #: one center discharged
    SURFACE_CHARGE = 2  #: the surface charge moved on its own
    CHARGING_SURFACE_CHARGE = 3  #: a center charged and moved the surface charge
    DISCHARGING_SURFACE_CHARGE = 4  #: a center discharged and moved the surface charge
    JOINT_CHARGING = 5  #: every neutral center charged at once
    SPECTRAL_DIFFUSION = 6  #: a spectral-diffusion jump (own or common)
    DARK = 7  #: a center fell into the dark (trap) state
    RECOVERY = 8  #: a center left the dark state
    BLEACHING = 9  #: a center bleached for good


JUMP_KIND_NAMES = tuple(k.name.lower() for k in JumpKind)

#: What the next event of the trajectory does: a center switches state, takes a spectral-diffusion
#: jump or bleaches; the surface charge hops; the common diffusion part jumps; a joint charging.
_Event = Literal["switch", "diffusion", "bleach", "surface", "common", "joint"]


@dataclass(frozen=True, slots=True)
class Segment:
    """An interval ``[start_ps, end_ps)`` in which every center's state and ZPL are constant."""

    start_ps: int
    end_ps: int
    states: tuple[EmitterState, ...]
    zpl_ev: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SampleTruth:
    """The trajectory up to some time: intervals of constant state, and the events between."""

    #: Interval starts (s), each center's state and ZPL (eV), the surface charge's position along
    #: the dimer axis (nm, NaN = none near the particle) per interval.
    time_s: npt.NDArray[np.float64]
    state: npt.NDArray[np.int8]
    zpl_ev: npt.NDArray[np.float64]
    surface_charge_nm: npt.NDArray[np.float64]
    #: Per event: time (s), kind (:class:`JumpKind`), the centers it acted on, and the change of
    #: each center's ZPL (meV).
    event_time_s: npt.NDArray[np.float64]
    event_kind: npt.NDArray[np.int8]
    event_centers: npt.NDArray[np.bool_]
    event_shift_mev: npt.NDArray[np.float64]
    #: When each center bleached (s; NaN = not before the end).
    bleach_time_s: npt.NDArray[np.float64]


class _Center:
    """Mutable state of one emission center while the trajectory is generated."""

    def __init__(self, params: EmitterParams) -> None:
        self.params = params
        self.state = EmitterState.NEUTRAL
        self.next_switch_s = np.inf
        #: this center's own standard-normal part of its spectral-diffusion offset
        self.own_diffusion = 0.0
        self.next_diffusion_s = np.inf
        self.bleach_s = np.inf
        self.bleached = False


class SampleModel:
    """Generates the particle's state trajectory on demand (times in tagger picoseconds)."""

    def __init__(self, params: SampleParams, rng: np.random.Generator) -> None:
        self.params = params
        self._rng = rng
        self._centers = [_Center(p) for p in params.emitters]
        self._surface_site = -1
        self._surface_nm = np.nan
        self._next_surface_s = self._exp(params.surface_charge_rate_hz, 0.0)
        rho = params.spectral_diffusion_correlation
        diffusing = [c for c in self._centers if c.params.spectral_diffusion_mev > 0]
        #: weight |ρ| and standard-normal value of the diffusion part common to all centers
        self._common_weight = abs(rho) if len(diffusing) > 1 else 0.0
        self._common_diffusion = 0.0
        for center in self._centers:
            center.next_switch_s = self._dwell(center, 0.0)
            center.next_diffusion_s = self._exp(
                center.params.spectral_diffusion_rate_hz * (1 - self._common_weight), 0.0) \
                if center.params.spectral_diffusion_mev > 0 else np.inf
        self._common_rate_hz = self._common_weight * float(
            np.mean([c.params.spectral_diffusion_rate_hz for c in diffusing])) if diffusing else 0.0
        self._next_common_s = self._exp(self._common_rate_hz, 0.0)
        for center in self._centers:
            p = center.params
            center.bleach_s = min(np.inf if p.bleaching_time_s is None else p.bleaching_time_s,
                                  self._exp(p.bleaching_rate_hz, 0.0))
        self._next_joint_s = self._exp(params.joint_charging_rate_hz, 0.0) \
            if self.n_centers > 1 else np.inf
        self._starts: list[int] = [0]
        self._states: list[tuple[EmitterState, ...]] = [self._current_states()]
        self._zpls: list[tuple[float, ...]] = [self._current_zpls()]
        self._surface: list[float] = [self._surface_nm]
        self._event_s: list[float] = []
        self._event_kind: list[int] = []
        self._event_centers: list[tuple[bool, ...]] = []
        self._event_shift: list[tuple[float, ...]] = []
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

    def truth(self, until_ps: int) -> SampleTruth:
        """The intervals starting before ``until_ps`` (at least the first) and the events before
        it."""
        until_s = until_ps / PS_PER_S
        self._generate_until(until_s)
        n = int(np.searchsorted(self._starts, until_ps, side="left")) or 1
        c = self.n_centers
        n_events = int(np.searchsorted(self._event_s, until_s, side="left"))
        bleach = np.array([cen.bleach_s for cen in self._centers], dtype=np.float64)
        return SampleTruth(
            time_s=np.asarray(self._starts[:n], dtype=np.float64) / PS_PER_S,
            state=np.asarray(self._states[:n], dtype=np.int8).reshape(n, c),
            zpl_ev=np.asarray(self._zpls[:n], dtype=np.float64).reshape(n, c),
            surface_charge_nm=np.asarray(self._surface[:n], dtype=np.float64),
            event_time_s=np.asarray(self._event_s[:n_events], dtype=np.float64),
            event_kind=np.asarray(self._event_kind[:n_events], dtype=np.int8),
            event_centers=np.asarray(self._event_centers[:n_events],
                                     dtype=np.bool_).reshape(n_events, c),
            event_shift_mev=np.asarray(self._event_shift[:n_events],
                                       dtype=np.float64).reshape(n_events, c),
            bleach_time_s=np.where(bleach < until_s, bleach, np.nan),
        )

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

    def _switch(self, center: _Center) -> JumpKind:
        p = center.params
        if center.state is EmitterState.DARK:
            center.state = EmitterState.NEUTRAL
            return JumpKind.RECOVERY
        to_other = p.charging_rate_hz if center.state is EmitterState.NEUTRAL \
            else p.discharging_rate_hz
        total = to_other + p.dark_rate_hz
        if self._rng.random() * total < to_other:
            if center.state is EmitterState.NEUTRAL:
                center.state = EmitterState.CHARGED
                return JumpKind.CHARGING
            center.state = EmitterState.NEUTRAL
            return JumpKind.DISCHARGING
        center.state = EmitterState.DARK
        return JumpKind.DARK

    def _move_surface_charge(self, site: int) -> None:
        """Put the surface charge next to center ``site`` (−1 = away from the particle)."""
        self._surface_site = site
        if site < 0:
            self._surface_nm = np.nan
            return
        self._surface_nm = self.params.center_position_nm(site)
        if self.params.surface_charge_spread_nm > 0:
            self._surface_nm += self._rng.normal(0.0, self.params.surface_charge_spread_nm)

    def _diffusion_ev(self, i: int, center: _Center) -> float:
        sign = -1.0 if i > 0 and self.params.spectral_diffusion_correlation < 0 else 1.0
        w = self._common_weight
        return center.params.spectral_diffusion_mev * 1e-3 * (
            np.sqrt(w) * sign * self._common_diffusion + np.sqrt(1 - w) * center.own_diffusion)

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
            if not np.isnan(self._surface_nm):
                shift_mev += self.params.surface_charge_shift_at_mev(
                    self._surface_nm - self.params.center_position_nm(i))
            zpls.append(p.zpl_ev + self._diffusion_ev(i, center) + shift_mev * 1e-3)
        return tuple(zpls)

    def _next_event(self) -> tuple[float, _Event, int]:
        """Time, type and center (−1 = none) of the next event."""
        best: tuple[float, _Event, int] = (np.inf, "switch", -1)
        for i, c in enumerate(self._centers):
            center_events: tuple[tuple[float, _Event], ...] = (
                (c.next_switch_s, "switch"), (c.next_diffusion_s, "diffusion"),
                (c.bleach_s, "bleach"))
            for t, what in center_events:
                if t < best[0] and not c.bleached:
                    best = (t, what, i)
        particle_events: tuple[tuple[float, _Event], ...] = (
            (self._next_surface_s, "surface"), (self._next_common_s, "common"),
            (self._next_joint_s, "joint"))
        for t, what in particle_events:
            if t < best[0]:
                best = (t, what, -1)
        return best

    def _apply(self, what: _Event, k: int, t_event: float) -> tuple[JumpKind | None, set[int]]:
        """Carry out one event; what kind of jump it was (None = nothing changed) and the
        centers it acted on."""
        n = self.n_centers
        if what == "switch":
            center = self._centers[k]
            kind = self._switch(center)
            center.next_switch_s = self._dwell(center, t_event)
            acted = {k}
            move = {JumpKind.CHARGING: self.params.surface_charge_on_charging,
                    JumpKind.DISCHARGING: self.params.surface_charge_on_discharging}.get(kind, 0.0)
            if n > 1 and move > 0 and self._rng.random() < move:
                others = [j for j in range(n) if j != k]
                site = int(others[self._rng.integers(len(others))])
                if site != self._surface_site:  # else it already sits there
                    acted |= {self._surface_site, site}
                    self._move_surface_charge(site)
                    kind = JumpKind.CHARGING_SURFACE_CHARGE if kind is JumpKind.CHARGING \
                        else JumpKind.DISCHARGING_SURFACE_CHARGE
            return kind, acted
        if what == "diffusion":
            center = self._centers[k]
            center.own_diffusion = self._rng.standard_normal()
            center.next_diffusion_s = self._exp(
                center.params.spectral_diffusion_rate_hz * (1 - self._common_weight), t_event)
            return JumpKind.SPECTRAL_DIFFUSION, {k}
        if what == "bleach":
            center = self._centers[k]
            center.state = EmitterState.DARK
            center.bleached = True
            return JumpKind.BLEACHING, {k}
        if what == "surface":
            choices = [-1, *range(n)]
            choices.remove(self._surface_site)
            acted = {self._surface_site}
            self._move_surface_charge(int(self._rng.choice(choices)))
            self._next_surface_s = self._exp(self.params.surface_charge_rate_hz, t_event)
            return JumpKind.SURFACE_CHARGE, acted | {self._surface_site}
        if what == "common":
            self._common_diffusion = self._rng.standard_normal()
            self._next_common_s = self._exp(self._common_rate_hz, t_event)
            return JumpKind.SPECTRAL_DIFFUSION, {
                i for i, c in enumerate(self._centers) if c.params.spectral_diffusion_mev > 0}
        # joint charging: every neutral center charges, if at least two are neutral
        self._next_joint_s = self._exp(self.params.joint_charging_rate_hz, t_event)
        neutral = [i for i, c in enumerate(self._centers)
                   if c.state is EmitterState.NEUTRAL and not c.bleached]
        if len(neutral) < 2:
            return None, set()
        for i in neutral:
            self._centers[i].state = EmitterState.CHARGED
            self._centers[i].next_switch_s = self._dwell(self._centers[i], t_event)
        return JumpKind.JOINT_CHARGING, set(neutral)

    def _generate_until(self, t_s: float) -> None:
        while self._generated_until_s < t_s:
            t_event, what, k = self._next_event()
            if not np.isfinite(t_event):
                self._generated_until_s = np.inf
                return
            kind, acted = self._apply(what, k, t_event)
            self._generated_until_s = t_event
            if kind is None:
                continue
            before = self._zpls[-1]
            states, zpls = self._current_states(), self._current_zpls()
            self._event_s.append(t_event)
            self._event_kind.append(int(kind))
            self._event_centers.append(tuple(i in acted for i in range(self.n_centers)))
            self._event_shift.append(tuple((a - b) * 1e3 for a, b in zip(zpls, before,
                                                                         strict=True)))
            t_ps = round(t_event * PS_PER_S)
            if t_ps == self._starts[-1]:
                self._states[-1], self._zpls[-1] = states, zpls
                self._surface[-1] = self._surface_nm
            else:
                self._starts.append(t_ps)
                self._states.append(states)
                self._zpls.append(zpls)
                self._surface.append(self._surface_nm)
