"""The particle's hidden state: charging, blinking statistics, dimer cross-effects, and the
ground truth written to the file."""

from __future__ import annotations

import numpy as np
import pytest
from simtools import make_config

from sim_hardware.params import EmitterParams, SampleParams
from sim_hardware.sample import EmitterState, SampleModel
from sim_hardware.units import PS_PER_S


def _model(sample: SampleParams, seed: int = 0) -> SampleModel:
    return SampleModel(sample, np.random.default_rng(seed))


def test_zero_rates_never_charge() -> None:
    model = _model(SampleParams(emitters=(EmitterParams(),)))
    t = model.truth(1000 * PS_PER_S)
    states, zpls = t.state, t.zpl_ev
    assert np.all(states == EmitterState.NEUTRAL)
    assert np.all(zpls == 2.15)


def test_power_law_dwell_times() -> None:
    """Dwell times P(t) ∝ t^-α: the survival function falls as t^-(α−1) well below τc."""
    alpha = 1.5
    sample = SampleParams(emitters=(EmitterParams(charging_rate_hz=5.0,
                                                  discharging_rate_hz=5.0),),
                          blinking_alpha=alpha, blinking_cutoff_s=1e4)
    times = _model(sample, 1).truth(20_000 * PS_PER_S).time_s
    dwell = np.diff(times)
    t = np.logspace(np.log10(np.quantile(dwell, 0.3)), np.log10(np.quantile(dwell, 0.99)), 8)
    survival = np.array([np.mean(dwell > x) for x in t])
    slope = np.polyfit(np.log(t), np.log(survival), 1)[0]
    assert slope == pytest.approx(-(alpha - 1), abs=0.1)


def test_exponential_dwell_times_without_alpha() -> None:
    sample = SampleParams(emitters=(EmitterParams(charging_rate_hz=2.0,
                                                  discharging_rate_hz=0.5),))
    t = _model(sample, 2).truth(5_000 * PS_PER_S)
    times, states = t.time_s, t.state
    dwell = np.diff(times)
    neutral = states[:-1, 0] == EmitterState.NEUTRAL
    assert dwell[neutral].mean() == pytest.approx(0.5, rel=0.1)
    assert dwell[~neutral].mean() == pytest.approx(2.0, rel=0.1)


def test_dimer_cross_effects_and_simultaneous_charging() -> None:
    a = EmitterParams(zpl_ev=2.15, trion_shift_mev=-15.0, charging_rate_hz=0.5,
                      discharging_rate_hz=0.5)
    b = EmitterParams(zpl_ev=2.13, trion_shift_mev=-12.0, charging_rate_hz=0.5,
                      discharging_rate_hz=0.5)
    sample = SampleParams(emitters=(a, b), dimer_coupling_mev=-0.7,
                          surface_charge_shift_mev=-9.0, surface_charge_rate_hz=0.3)
    model = _model(sample, 3)
    t = model.truth(2000 * PS_PER_S)
    states, zpls = t.state, t.zpl_ev
    assert np.any(np.all(states == EmitterState.CHARGED, axis=1))  # both charged at once
    # a surface charge next to one center shifts the other (8 nm away, 3 nm off the axis) by
    # −9 · 3² / (3² + 8²) meV
    far = -9.0 * 9.0 / (9.0 + 64.0)
    for c, (p, other) in enumerate(((a, 1), (b, 0))):
        shift_mev = (zpls[:, c] - p.zpl_ev) * 1e3
        own = np.where(states[:, c] == EmitterState.CHARGED, p.trion_shift_mev, 0.0)
        cross = np.where(states[:, other] == EmitterState.CHARGED, -0.7, 0.0)
        residual = shift_mev - own - cross
        # what is left is the surface charge: none, next to this center, or next to the other
        assert np.all(np.isclose(residual, 0.0) | np.isclose(residual, -9.0)
                      | np.isclose(residual, far))
        for value in (0.0, -9.0, far):
            assert np.any(np.isclose(residual, value))
    # the surface charge sits next to at most one center at a time
    near = np.isclose((zpls - [a.zpl_ev, b.zpl_ev]) * 1e3
                      - np.where(states == 1, [[-15.0, -12.0]], 0.0)
                      - np.where(states[:, ::-1] == 1, -0.7, 0.0), -9.0)
    assert not np.any(near.all(axis=1))


def test_charging_can_move_the_surface_charge_to_the_other_center() -> None:
    a = EmitterParams(zpl_ev=2.15, charging_rate_hz=0.5, discharging_rate_hz=0.5)
    b = EmitterParams(zpl_ev=2.13)
    sample = SampleParams(emitters=(a, b), surface_charge_shift_mev=-9.0,
                          surface_charge_on_charging=1.0, dimer_coupling_mev=-0.5)
    t = _model(sample, 4).truth(500 * PS_PER_S)
    times, states, zpls = t.time_s, t.state, t.zpl_ev
    charges = np.flatnonzero(np.diff(states[:, 0]) == EmitterState.CHARGED) + 1
    assert charges.shape[0] > 50
    # at the instant A charges, B jumps by the surface-charge shift plus the dimer coupling
    jump_mev = (zpls[charges, 1] - zpls[charges - 1, 1]) * 1e3
    assert jump_mev[0] == pytest.approx(-9.0 - 0.5)
    # afterwards the surface charge already sits at B (it never hops on its own here)
    assert np.allclose(jump_mev[1:], -0.5)
    assert np.all(np.diff(times) > 0)


def test_dark_state_silences_a_center(measure) -> None:
    cfg = make_config(emitters=[{"dark_rate_hz": 0.5, "dark_recovery_rate_hz": 0.5}],
                      simulation={"seed": 90})
    m = measure(cfg, frames=60, exposure_s=0.5)
    counts = m.apd_counts_per_frame()
    dark = m.truth["frame_state"][:, 0] == EmitterState.DARK
    assert dark.any() and (~dark).any()
    # dark frames hold little more than background (frames are dark most of their exposure)
    assert np.median(counts[dark]) < 0.2 * np.median(counts[~dark])


def test_ground_truth_in_the_file_matches_the_configuration(measure) -> None:
    cfg = make_config(
        emitters=[{"zpl_ev": 2.15, "charging_rate_hz": 0.5, "discharging_rate_hz": 0.5,
                   "trion_shift_mev": -15.0},
                  {"zpl_ev": 2.13, "dipole_angle_deg": 100.0, "charging_rate_hz": 0.3,
                   "discharging_rate_hz": 0.5, "trion_shift_mev": -12.0}],
        sample={"dimer_coupling_mev": -0.5}, simulation={"seed": 91})
    m = measure(cfg, frames=40, exposure_s=0.5)
    truth = m.truth
    assert truth["truth_state"].shape[1] == 2
    assert truth["frame_state"].shape == truth["frame_zpl_ev"].shape == (40, 2)
    assert list(truth["state_names"].astype(str)) == ["neutral", "charged", "dark"]
    assert np.all(np.diff(truth["truth_time_s"]) > 0)
    expected = np.array([2.15, 2.13]) + 1e-3 * (
        np.where(truth["truth_state"] == 1, [[-15.0, -12.0]], 0.0)
        + np.where(truth["truth_state"][:, ::-1] == 1, -0.5, 0.0))
    assert np.allclose(truth["truth_zpl_ev"], expected)
    # per frame: the time-weighted ZPL lies between the extremes seen during the exposure
    starts, ends = m.exposures_ps()
    for k in range(40):
        t = truth["truth_time_s"]
        lo = np.searchsorted(t, starts[k] / 1e12, side="right") - 1
        hi = np.searchsorted(t, ends[k] / 1e12, side="left")
        seen = truth["truth_zpl_ev"][lo:hi]
        assert np.all(truth["frame_zpl_ev"][k] >= seen.min(axis=0) - 1e-12)
        assert np.all(truth["frame_zpl_ev"][k] <= seen.max(axis=0) + 1e-12)
        if hi - lo == 1:
            assert np.array_equal(truth["frame_state"][k], truth["truth_state"][lo])


def test_same_seed_same_data(measure) -> None:
    cfg = make_config(emitters=[{"charging_rate_hz": 0.5, "discharging_rate_hz": 0.5,
                                 "spectral_diffusion_mev": 1.0}],
                      sample={"blinking_alpha": 1.5}, simulation={"seed": 92})
    first, second = measure(cfg, frames=6), measure(cfg, frames=6)
    assert np.array_equal(first.timestamps_ps, second.timestamps_ps)
    assert np.array_equal(first.channels, second.channels)
    assert np.array_equal(first.frames, second.frames)
    for key in ("truth_time_s", "truth_state", "truth_zpl_ev"):
        assert np.array_equal(first.truth[key], second.truth[key])
    other = measure(cfg.with_overrides("simulation", seed=93), frames=6)
    assert not np.array_equal(first.frames, other.frames)
