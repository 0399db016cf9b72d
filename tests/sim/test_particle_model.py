"""The particle's charging physics against its ground truth: bleaching, joint charging, the
surface charge's distance law, correlated spectral diffusion, per-center LO replicas, the
biexciton binding energy, and the default particle (the paper's Fig. 2 a–h)."""

from __future__ import annotations

import numpy as np
import pytest
from simtools import Measurement, make_config, spectrum_peak_ev

from cryoscope.config import load_config
from sim_hardware.emission import LaserState, emit, line_energies_ev
from sim_hardware.params import EmitterParams, SampleParams
from sim_hardware.sample import EmitterState, JumpKind, SampleModel, SampleTruth
from sim_hardware.units import PS_PER_S


def _truth(sample: SampleParams, seconds: float, seed: int = 0) -> SampleTruth:
    return SampleModel(sample, np.random.default_rng(seed)).truth(round(seconds * PS_PER_S))


def _durations(t: SampleTruth, seconds: float) -> np.ndarray:
    return np.diff(np.append(t.time_s, seconds))


# -- bleaching -------------------------------------------------------------------------------


def test_a_bleached_dot_stops_emitting_for_good(measure) -> None:
    cfg = make_config(emitters=[{"charging_rate_hz": 0.3, "discharging_rate_hz": 0.3,
                                 "dark_rate_hz": 0.1, "bleaching_time_s": 14.0}],
                      simulation={"seed": 101})
    m = measure(cfg, frames=40, exposure_s=0.5)
    truth = m.truth
    assert truth["bleach_time_s"][0] == pytest.approx(14.0)
    starts, ends = m.exposures_ps()
    assert starts[0] < 14.0 * PS_PER_S < ends[-1]
    after = starts >= 14.0 * PS_PER_S
    before = ends <= 14.0 * PS_PER_S
    assert after.sum() > 5 and before.sum() > 5
    # dark from the bleach on, and nothing (no recovery, no charging) afterwards
    assert np.all(truth["frame_state"][after, 0] == EmitterState.DARK)
    later = truth["truth_time_s"] >= 14.0
    assert np.all(truth["truth_state"][later, 0] == EmitterState.DARK)
    assert np.all(truth["jump_time_s"] <= 14.0)
    bleach = truth["jump_kind"] == JumpKind.BLEACHING
    assert bleach.sum() == 1 and truth["jump_time_s"][bleach][0] == pytest.approx(14.0)
    # the APD sees background only: stray light (200 cps per arm) and dark counts (25 cps)
    counts = m.apd_counts_per_frame()
    assert counts[after].mean() < 0.03 * counts[before].mean()
    assert counts[after].mean() == pytest.approx(225 * 0.5, rel=0.3)
    # the camera too: the ZPL window holds no more than the background around it
    signal = m.signal().sum(axis=1)
    line = np.abs(m.energy_ev - 2.15) < 1e-3
    assert signal[after][:, line].sum() < 0.02 * signal[before][:, line].sum()


def test_bleaching_rate_sets_the_mean_bleaching_time() -> None:
    sample = SampleParams(emitters=(EmitterParams(bleaching_rate_hz=0.05),))
    times = np.array([_truth(sample, 2000.0, seed).bleach_time_s[0] for seed in range(300)])
    assert not np.isnan(times).any()
    assert times.mean() == pytest.approx(20.0, rel=0.15)
    # with a fixed time too, whichever comes first
    both = SampleParams(emitters=(EmitterParams(bleaching_rate_hz=0.05, bleaching_time_s=10.0),))
    first = np.array([_truth(both, 100.0, seed).bleach_time_s[0] for seed in range(100)])
    assert np.all(first <= 10.0) and np.mean(first == 10.0) == pytest.approx(np.exp(-0.5),
                                                                             abs=0.12)


# -- joint charging ------------------------------------------------------------------------


def test_joint_charging_happens_at_the_configured_rate() -> None:
    rate = 0.2
    a = EmitterParams(zpl_ev=2.15, charging_rate_hz=0.05, discharging_rate_hz=0.5)
    b = EmitterParams(zpl_ev=2.13, charging_rate_hz=0.05, discharging_rate_hz=0.5)
    seconds = 20_000.0
    t = _truth(SampleParams(emitters=(a, b), joint_charging_rate_hz=rate), seconds, seed=5)
    joint = t.event_kind == JumpKind.JOINT_CHARGING
    # both centers neutral before, both charged after, in one event
    k = np.searchsorted(t.time_s, t.event_time_s[joint] - 1e-9)  # the interval it opens
    assert np.all(t.state[k - 1] == EmitterState.NEUTRAL)
    assert np.all(t.state[k] == EmitterState.CHARGED)
    assert np.all(t.event_centers[joint])
    # the rate per second of both-neutral time
    both_neutral = np.all(t.state == EmitterState.NEUTRAL, axis=1)
    exposure_s = _durations(t, seconds)[both_neutral].sum()
    assert joint.sum() > 500
    assert joint.sum() / exposure_s == pytest.approx(rate, rel=0.1)
    # each center's own charging still happens at its own rate
    single = (t.event_kind == JumpKind.CHARGING) & t.event_centers[:, 0]
    neutral_a = (t.state[:, 0] == EmitterState.NEUTRAL)
    assert single.sum() / _durations(t, seconds)[neutral_a].sum() == pytest.approx(0.05, rel=0.1)


def test_without_joint_charging_centers_never_charge_in_the_same_instant() -> None:
    a = EmitterParams(charging_rate_hz=0.5, discharging_rate_hz=0.5)
    t = _truth(SampleParams(emitters=(a, a)), 2000.0, seed=6)
    charged_now = np.diff(t.state, axis=0) == EmitterState.CHARGED
    assert not np.any(charged_now.all(axis=1))
    assert not np.any(t.event_kind == JumpKind.JOINT_CHARGING)


# -- the surface charge --------------------------------------------------------------------


def test_surface_charge_shifts_each_center_by_its_distance_law() -> None:
    a = EmitterParams(zpl_ev=2.15, charging_rate_hz=0.3, discharging_rate_hz=0.3)
    b = EmitterParams(zpl_ev=2.13, trion_shift_mev=-12.0, charging_rate_hz=0.3,
                      discharging_rate_hz=0.3)
    sample = SampleParams(emitters=(a, b), dimer_coupling_mev=-0.6, dimer_spacing_nm=9.0,
                          surface_charge_shift_mev=-12.0, surface_charge_range_nm=2.5,
                          surface_charge_rate_hz=0.5, surface_charge_spread_nm=3.0)
    t = _truth(sample, 3000.0, seed=7)
    present = ~np.isnan(t.surface_charge_nm)
    assert present.mean() == pytest.approx(2 / 3, abs=0.1)  # away, at A, at B: hops to either other
    positions = t.surface_charge_nm[present]
    assert positions.std() > 4.0  # it sits near either center, spread along the axis
    for c, (p, trion) in enumerate(((a, -15.0), (b, -12.0))):
        own = np.where(t.state[:, c] == EmitterState.CHARGED, trion, 0.0)
        cross = np.where(t.state[:, 1 - c] == EmitterState.CHARGED, -0.6, 0.0)
        residual = (t.zpl_ev[:, c] - p.zpl_ev) * 1e3 - own - cross
        d = t.surface_charge_nm - 9.0 * c
        law = np.where(present, -12.0 * 2.5**2 / (2.5**2 + d**2), 0.0)
        np.testing.assert_allclose(residual, law, atol=1e-9)
    # right next to a center: > 5 meV on it; the other (9 nm away) ~1 meV
    assert sample.surface_charge_shift_at_mev(0.0) == -12.0
    assert -1.0 < sample.surface_charge_shift_at_mev(9.0) < -0.5


def test_charging_moves_the_surface_charge_and_both_lines_jump_in_one_frame(measure) -> None:
    cfg = make_config(
        emitters=[{"zpl_ev": 2.15, "charging_rate_hz": 0.3, "discharging_rate_hz": 0.3},
                  {"zpl_ev": 2.125, "dipole_angle_deg": 110.0, "trion_shift_mev": -12.0,
                   "charging_rate_hz": 0.3, "discharging_rate_hz": 0.3}],
        sample={"surface_charge_on_charging": 0.5, "surface_charge_on_discharging": 0.5,
                "surface_charge_shift_mev": -9.0, "dimer_coupling_mev": -0.5},
        simulation={"seed": 102})
    m = measure(cfg, frames=120, exposure_s=0.5)
    truth = m.truth
    kinds = truth["jump_kind"]
    names = list(truth["jump_kind_names"].astype(str))
    assert names[JumpKind.CHARGING_SURFACE_CHARGE] == "charging_surface_charge"
    moved = np.isin(kinds, [JumpKind.CHARGING_SURFACE_CHARGE,
                            JumpKind.DISCHARGING_SURFACE_CHARGE])
    assert moved.sum() >= 5
    shifts = truth["jump_shift_mev"][moved]
    # both lines jump by clearly more than the dimer coupling
    assert np.all(np.abs(shifts) > 0.9)
    assert np.all(truth["jump_centers"][moved].all(axis=1))
    # the event lies in the exposure jump_frame names
    starts, ends = m.exposures_ps()
    frame = truth["jump_frame"]
    t_ps = truth["jump_time_s"] * PS_PER_S
    inside = frame >= 0
    assert np.all(starts[frame[inside]] <= t_ps[inside])
    assert np.all(t_ps[inside] < ends[frame[inside]])
    between = ~inside & (t_ps > starts[0]) & (t_ps < ends[-1])
    k = np.searchsorted(starts, t_ps[between]) - 1
    assert np.all(t_ps[between] >= ends[k])
    # the jumps add up to the true ZPLs: every event opens an interval whose ZPLs are the
    # previous ones plus the event's shifts
    zpl = truth["truth_zpl_ev"]
    assert truth["jump_time_s"].shape[0] == zpl.shape[0] - 1
    np.testing.assert_allclose(truth["jump_time_s"], truth["truth_time_s"][1:], atol=1e-12)
    np.testing.assert_allclose(np.diff(zpl, axis=0) * 1e3, truth["jump_shift_mev"], atol=1e-9)
    # the surface charge in the frames: next to center 0 (at 0 nm) or 1 (at 8 nm), or none
    surface = truth["frame_surface_charge_nm"]
    assert surface.shape == (120,)
    seen = surface[~np.isnan(surface)]
    assert seen.size > 0 and set(np.unique(seen)) <= {0.0, 8.0}
    np.testing.assert_allclose(truth["center_position_nm"], [0.0, 8.0])


# -- spectral diffusion --------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.7, -0.5, 0.0])
def test_spectral_diffusion_has_the_configured_correlation(rho: float) -> None:
    a = EmitterParams(zpl_ev=2.15, spectral_diffusion_mev=1.5, spectral_diffusion_rate_hz=0.2)
    b = EmitterParams(zpl_ev=2.13, spectral_diffusion_mev=0.8, spectral_diffusion_rate_hz=0.1)
    seconds = 30_000.0
    t = _truth(SampleParams(emitters=(a, b), spectral_diffusion_correlation=rho), seconds, 8)
    grid = np.arange(0.0, seconds, 5.0)
    k = np.searchsorted(t.time_s, grid, side="right") - 1
    offsets = (t.zpl_ev[k] - [2.15, 2.13]) * 1e3
    assert np.corrcoef(offsets.T)[0, 1] == pytest.approx(rho, abs=0.06)
    # each center keeps its own rms
    assert offsets[:, 0].std() == pytest.approx(1.5, rel=0.1)
    assert offsets[:, 1].std() == pytest.approx(0.8, rel=0.1)
    # each center's line jumps at about its configured rate (the common jumps replace own ones)
    diffusion = t.event_kind == JumpKind.SPECTRAL_DIFFUSION
    rate_a = (diffusion & t.event_centers[:, 0]).sum() / seconds
    assert rate_a == pytest.approx(0.2 * (1 - abs(rho)) + 0.15 * abs(rho), rel=0.1)


# -- the line shape ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_replicas(measure) -> Measurement:
    cfg = make_config(emitters=[{"zpl_ev": 2.15, "phonon_energies_mev": [25.0, 40.0],
                                 "phonon_weights": [0.2, 0.15]}],
                      sample={"biexciton_yield": 0.0}, simulation={"seed": 103})
    return measure(cfg, frames=40, exposure_s=0.5)


@pytest.mark.parametrize("energy_mev", [25.0, 40.0])
def test_replicas_sit_at_the_configured_phonon_energies(odd_replicas: Measurement,
                                                        energy_mev: float) -> None:
    energy = odd_replicas.energy_ev
    spectrum = odd_replicas.signal().sum(axis=(0, 1))
    zpl = spectrum_peak_ev(energy, spectrum, (2.14, 2.16))
    expected = zpl - energy_mev * 1e-3
    replica = spectrum_peak_ev(energy, spectrum, (expected - 0.004, expected + 0.004))
    assert (zpl - replica) * 1e3 == pytest.approx(energy_mev, abs=0.3)
    # and nothing at the CdSe / CdS defaults
    for default in (27.0, 37.0):
        if abs(default - energy_mev) < 5:
            at_default = np.abs(energy - (zpl - default * 1e-3)) < 0.5e-3
            at_replica = np.abs(energy - replica) < 0.5e-3
            assert spectrum[at_default].sum() < 0.3 * spectrum[at_replica].sum()


def test_each_center_has_its_own_replica_energies() -> None:
    a = EmitterParams(zpl_ev=2.15, phonon_energies_mev=(25.0, 40.0), phonon_weights=(1.0, 1.0),
                      linewidth_mev=0.02)
    b = EmitterParams(zpl_ev=2.10, phonon_energies_mev=(30.0, 35.0), phonon_weights=(1.0, 1.0),
                      linewidth_mev=0.02)
    sample = SampleParams(emitters=(a, b))
    rng = np.random.default_rng(9)
    center = np.repeat(np.array([0, 1], np.int8), 60_000)
    zpl = np.where(center == 0, 2.15, 2.10)
    offsets_mev = (line_energies_ev(sample, center, zpl, rng) - zpl) * 1e3
    for c, energies in ((0, (25.0, 40.0)), (1, (30.0, 35.0))):
        o = offsets_mev[center == c]
        for e in energies:
            near = np.abs(o + e) < 1.0
            assert near.mean() == pytest.approx(1 / 3, abs=0.03)
            assert np.median(o[near]) == pytest.approx(-e, abs=0.05)


# -- the biexciton -------------------------------------------------------------------------


def test_biexciton_photons_come_at_the_exciton_minus_the_binding_energy() -> None:
    sample = SampleParams(emitters=(EmitterParams(zpl_ev=2.15, biexciton_binding_mev=7.0),
                                    EmitterParams(zpl_ev=2.12, biexciton_binding_mev=-3.0)),
                          biexciton_yield=0.5)
    model = SampleModel(sample, np.random.default_rng(0))
    laser = LaserState(1e6, 3000.0, 475.0, emission_on=True)
    photons = emit(model.segments(0, PS_PER_S), laser, sample, 2, np.random.default_rng(1))
    for c, (x, xx) in enumerate(((2.15, 2.143), (2.12, 2.123))):
        mine = photons.center == c
        assert np.all(photons.zpl_ev[mine & ~photons.biexciton] == pytest.approx(x))
        assert np.all(photons.zpl_ev[mine & photons.biexciton] == pytest.approx(xx))
        assert (mine & photons.biexciton).sum() > 1000
    # the older sample-wide key replaces every center's binding energy
    legacy = SampleParams(emitters=sample.emitters, biexciton_yield=0.5, biexciton_shift_mev=-2.0)
    assert [legacy.biexciton_offset_mev(c) for c in range(2)] == [-2.0, -2.0]
    assert [sample.biexciton_offset_mev(c) for c in range(2)] == [-7.0, 3.0]


def test_biexciton_line_in_the_spectrum(measure) -> None:
    cfg = make_config(emitters=[{"zpl_ev": 2.15, "biexciton_binding_mev": 8.0}],
                      sample={"biexciton_yield": 1.0}, laser={"power_nw": 1000.0},
                      camera={"em_gain": 20}, simulation={"seed": 104})
    m = measure(cfg, frames=20, exposure_s=0.5)
    energy = m.energy_ev
    spectrum = m.signal().sum(axis=(0, 1))
    x = spectrum_peak_ev(energy, spectrum, (2.145, 2.155))
    xx = spectrum_peak_ev(energy, spectrum, (2.138, 2.145))
    assert x == pytest.approx(2.15, abs=0.2e-3)
    assert (x - xx) * 1e3 == pytest.approx(8.0, abs=0.3)

    def area(center: float) -> float:
        return float(spectrum[np.abs(energy - center) < 0.002].sum())

    # near saturation (<N> = 3.6) most pulses give a cascade: XX / X = P(N>=2) / P(N>=1) = 0.9
    assert area(xx) / area(x) == pytest.approx(0.9, rel=0.1)


# -- the default particle ------------------------------------------------------------------


def test_the_default_particle_blinks_between_neutral_and_a_dimmer_red_shifted_trion(
        measure) -> None:
    cfg = load_config()
    assert len(cfg.sample.emitters) == 1
    m = measure(cfg)  # the paper's series: 400 frames x 0.5 s
    state = m.truth["frame_state"][:, 0]
    assert state.shape == (400,)
    assert set(np.unique(state)) == {EmitterState.NEUTRAL, EmitterState.CHARGED}
    switches = np.count_nonzero(np.diff(m.truth["truth_state"][:, 0]))
    assert switches >= 4
    neutral, charged = state == EmitterState.NEUTRAL, state == EmitterState.CHARGED
    assert min(neutral.sum(), charged.sum()) > 40
    counts = m.apd_counts_per_frame()
    assert np.median(counts[charged]) < 0.6 * np.median(counts[neutral])
    spectra = m.signal().sum(axis=1)
    energy = m.energy_ev
    window = (2.125, 2.16)
    x = spectrum_peak_ev(energy, spectra[neutral].sum(axis=0), window)
    trion = spectrum_peak_ev(energy, spectra[charged].sum(axis=0), window)
    assert x == pytest.approx(2.15, abs=0.3e-3)
    assert (trion - x) * 1e3 == pytest.approx(-15.0, abs=0.5)
