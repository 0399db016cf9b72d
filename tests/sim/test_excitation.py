"""Excitation and photon statistics: saturation with laser power, and g²(0) from two APDs set by
the biexciton cascade."""

from __future__ import annotations

import numpy as np
import pytest
from simtools import make_config, stream_tags

from cryoscope.backends import open_rig
from sim_hardware.emission import LaserState, excitation_probabilities, expected_g2_zero

QUIET = {"background_cps": 0.0}
NO_AFTERPULSES = {"apd_afterpulsing": 0.0, "apd_dark_cps": 0.0}


def test_count_rate_grows_with_power_and_saturates() -> None:
    cfg = make_config(emitters=[{}], sample={**QUIET, "biexciton_yield": 0.1},
                      optics=NO_AFTERPULSES, simulation={"seed": 70})  # a steady dot
    powers_nw = [10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0]
    rates = []
    with open_rig(cfg) as rig:
        for power in powers_nw:
            rig.laser.set_power_nw(power)
            t, _ = stream_tags(rig, [cfg.channels.apd], 2.0)
            rates.append(t.shape[0] / 2.0)
    rates_arr = np.array(rates)
    s = cfg.sample
    for power, rate in zip(powers_nw, rates_arr, strict=True):
        mean_n = LaserState(cfg.laser.repetition_rate_hz, power, cfg.laser.wavelength_nm,
                            True).mean_absorbed(s)
        p1, p2 = excitation_probabilities(mean_n)
        expected = cfg.laser.repetition_rate_hz * s.detection_efficiency * s.quantum_yield \
            * (p1 + p2 + p2 * s.biexciton_yield)
        assert rate == pytest.approx(expected, rel=0.04), power
    assert np.all(np.diff(rates_arr[:5]) > 0)  # grows up to ~1 µW
    assert rates_arr[1] / rates_arr[0] == pytest.approx(3.0, rel=0.1)  # linear at low power
    # saturated: ×3.3 power and no more light (every pulse already excites the dot)
    assert rates_arr[-1] / rates_arr[-2] == pytest.approx(1.0, abs=0.03)


def _g2_zero(t: np.ndarray, ch: np.ndarray, a: int, b: int, period_ps: int) -> float:
    """Center-peak area over mean side-peak area of the APD a/APD b cross-correlation."""
    ta, tb = t[ch == a], t[ch == b]
    half = period_ps // 2
    areas = []
    for k in range(-3, 4):
        lo = np.searchsorted(tb, ta + k * period_ps - half)
        hi = np.searchsorted(tb, ta + k * period_ps + half)
        areas.append(int((hi - lo).sum()))
    side = np.mean([areas[i] for i in (0, 1, 2, 4, 5, 6)])
    return areas[3] / side


@pytest.mark.parametrize(("power_nw", "biexciton_yield", "seconds"),
                         [(300.0, 0.1, 20.0), (300.0, 0.3, 20.0), (50.0, 0.2, 60.0)])
def test_g2_zero_from_two_apds_matches_the_biexciton_yield(
        power_nw: float, biexciton_yield: float, seconds: float) -> None:
    cfg = make_config(sample={**QUIET, "biexciton_yield": biexciton_yield,
                              "detection_efficiency": 0.05},
                      optics=NO_AFTERPULSES, laser={"power_nw": power_nw},
                      channels={"apd2": 5}, simulation={"seed": int(power_nw) + 7})
    with open_rig(cfg) as rig:
        t, ch = stream_tags(rig, [cfg.channels.apd, 5], seconds, step_s=0.5)
    period = round(1e12 / cfg.laser.repetition_rate_hz)
    g2 = _g2_zero(t, ch, cfg.channels.apd, 5, period)
    mean_n = LaserState(cfg.laser.repetition_rate_hz, power_nw, cfg.laser.wavelength_nm,
                        True).mean_absorbed(cfg.sample)
    assert g2 == pytest.approx(expected_g2_zero(mean_n, biexciton_yield), abs=0.03)
    if mean_n < 0.3:  # weak excitation: g²(0) → QY_XX / QY_X
        assert g2 == pytest.approx(biexciton_yield, abs=0.05)


def test_g2_in_a_measurement_file(measure) -> None:
    """The second APD goes through the plan into the file on its own channel."""
    cfg = make_config(channels={"apd2": 5}, simulation={"seed": 77})
    m = measure(cfg, frames=10, exposure_s=0.5)
    ch1, ch2 = m.tags(m.apd), m.tags(5)
    assert ch1.shape[0] == pytest.approx(ch2.shape[0], rel=0.05)
    t = m.timestamps_ps
    g2 = _g2_zero(t, m.channels, m.apd, 5, m.period_ps)
    assert 0.1 < g2 < 0.35  # b = 0.1 near saturation: 2b/(1+b)² ≈ 0.17, plus background
