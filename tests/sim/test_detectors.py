"""APD details (dead time, afterpulses, dark counts, IRF) and the spectrograph stray light."""

from __future__ import annotations

import numpy as np
import pytest
from simtools import make_config, stream_tags

from cryoscope.backends import open_rig

DEAD_TIME_NS = 22.0


def test_apd_dead_time_and_afterpulses() -> None:
    """A fast decay and no biexciton: two clicks closer than a laser period are afterpulses."""
    cfg = make_config(emitters=[{"lifetimes_ns": [2.0], "lifetime_weights": [1.0]}],
                      sample={"detection_efficiency": 0.2, "biexciton_yield": 0.0},
                      optics={"apd_afterpulsing": 0.05, "apd_afterpulse_delay_ns": 50.0,
                              "apd_dead_time_ns": DEAD_TIME_NS},
                      simulation={"seed": 100})
    with open_rig(cfg) as rig:
        t, _ = stream_tags(rig, [cfg.channels.apd], 1.0)
    gaps_ns = np.diff(t) / 1e3
    assert gaps_ns.min() > DEAD_TIME_NS
    within_period = gaps_ns[gaps_ns < 900.0]
    assert within_period.shape[0] == pytest.approx(0.05 * t.shape[0], rel=0.1)
    # dead time, then an exponential delay: median 22 + 50·ln 2 ns
    assert np.median(within_period) == pytest.approx(DEAD_TIME_NS + 50.0 * np.log(2), rel=0.05)


def test_dark_counts_and_stray_light_without_laser() -> None:
    cfg = make_config(laser={"power_nw": 0.0}, sample={"background_cps": 300.0},
                      optics={"apd_dark_cps": 40.0, "apd_afterpulsing": 0.0},
                      simulation={"seed": 101})
    with open_rig(cfg) as rig:
        t, _ = stream_tags(rig, [cfg.channels.apd], 50.0, step_s=1.0)
    assert t.shape[0] / 50.0 == pytest.approx(340.0, rel=0.1)


def test_irf_width_is_the_apd_jitter(measure) -> None:
    cfg = make_config(emitters=[{"lifetimes_ns": [0.01], "lifetime_weights": [1.0]}],
                      sample={"biexciton_lifetime_ns": 0.001, "background_cps": 0.0},
                      optics={"apd_jitter_fwhm_ps": 300.0, "apd_delay_ns": 5.0},
                      simulation={"seed": 102})
    m = measure(cfg, frames=4, exposure_s=0.5)
    _, delays = m.photon_delays_ps()
    core = delays[np.abs(delays - np.median(delays)) < 1000]
    assert np.median(core) == pytest.approx(5000 + 10, abs=15)
    fwhm = 2 * np.sqrt(2 * np.log(2)) * core.std()
    assert fwhm == pytest.approx(300.0, rel=0.05)


def test_spectrograph_stray_light_is_flat_and_unpolarized(measure) -> None:
    rate = 2e5
    cfg = make_config(laser={"power_nw": 0.0}, sample={"background_cps": rate},
                      camera={"em_gain": 100}, simulation={"seed": 103})
    m = measure(cfg, frames=20, exposure_s=0.5)
    optics = cfg.optics
    low, high = optics.stray_light_band_nm
    per_column = rate * 0.5 * (m.wavelength_nm[1] - m.wavelength_nm[0]) / (high - low)
    cic = 20 * optics.emccd_cic_per_pixel  # 20-row tracks
    adu_per_e = 100 / optics.emccd_electrons_per_adu
    signal = m.signal().mean(axis=(0, 2))  # per track
    for track, transmission in ((0, optics.transmission_v), (1, optics.transmission_h)):
        photons = per_column * transmission / 2 * optics.emccd_quantum_efficiency
        assert signal[track] == pytest.approx((photons + cic) * adu_per_e, rel=0.05)
    # flat: the blue and red halves of the sensor agree
    halves = m.signal().mean(axis=(0, 1)).reshape(2, -1).mean(axis=1)
    assert halves[0] == pytest.approx(halves[1], rel=0.05)
