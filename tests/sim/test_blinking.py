"""A blinking dot: dim frames are the trion's (red-shifted, faster), and both detector arms see
the same emission."""

from __future__ import annotations

import numpy as np
import pytest
from simtools import Measurement, fit_decay_ns, make_config, spectrum_peak_ev

ZPL_EV = 2.15
TRION_SHIFT_MEV = -15.0
TRION_LIFETIME_NS = 6.0


@pytest.fixture(scope="module")
def blinking(measure) -> Measurement:
    cfg = make_config(
        emitters=[{"zpl_ev": ZPL_EV, "trion_shift_mev": TRION_SHIFT_MEV,
                   "trion_lifetime_ns": TRION_LIFETIME_NS, "trion_brightness": 0.35,
                   "charging_rate_hz": 0.4, "discharging_rate_hz": 0.4, "dark_rate_hz": 0.0,
                   "spectral_diffusion_mev": 0.0}],
        simulation={"seed": 21},
    )
    return measure(cfg, frames=80, exposure_s=0.5)


def _dim_frames(m: Measurement) -> np.ndarray:
    counts = m.apd_counts_per_frame()
    low, high = np.percentile(counts, [10, 90])
    return counts < (low + high) / 2


def test_both_states_occur(blinking: Measurement) -> None:
    states = blinking.truth["frame_state"][:, 0]
    assert 10 < np.count_nonzero(states == 1) < 70


def test_dim_frames_are_the_charged_ones(blinking: Measurement) -> None:
    dim = _dim_frames(blinking)
    charged = blinking.truth["frame_state"][:, 0] == 1
    assert np.mean(dim == charged) > 0.9


def test_dim_frames_are_red_shifted_by_the_trion_shift(blinking: Measurement) -> None:
    dim = _dim_frames(blinking)
    signal = blinking.signal().sum(axis=1)  # V + H
    energy = blinking.energy_ev
    window = (ZPL_EV - 0.025, ZPL_EV + 0.005)
    bright_peak = spectrum_peak_ev(energy, signal[~dim].sum(axis=0), window)
    dim_peak = spectrum_peak_ev(energy, signal[dim].sum(axis=0), window)
    assert bright_peak == pytest.approx(ZPL_EV, abs=0.3e-3)
    assert (dim_peak - bright_peak) * 1e3 == pytest.approx(TRION_SHIFT_MEV, abs=0.5)
    # per frame too: every clearly dim frame peaks near the trion line
    per_frame = np.array([spectrum_peak_ev(energy, s, window) for s in signal[dim]])
    assert np.median(per_frame - ZPL_EV) * 1e3 == pytest.approx(TRION_SHIFT_MEV, abs=0.5)


def test_charged_photons_decay_with_the_trion_lifetime(blinking: Measurement) -> None:
    clicks, delays = blinking.photon_delays_ps()
    charged = blinking.state_at(clicks) == 1
    taus, _ = fit_decay_ns(delays[charged], (4.0,), range_ns=(0.0, 400.0))
    assert taus[0] == pytest.approx(TRION_LIFETIME_NS, rel=0.05)
    neutral_taus, _ = fit_decay_ns(delays[~charged], (1.0, 80.0))
    assert neutral_taus[1] > 5 * TRION_LIFETIME_NS


def test_apd_and_camera_rise_and_fall_together(blinking: Measurement) -> None:
    apd = blinking.apd_counts_per_frame()
    camera = blinking.signal().sum(axis=(1, 2))
    r = np.corrcoef(apd, camera)[0, 1]
    assert r > 0.95
    # the same emission feeds both arms: camera signal per APD count is the same in dim and
    # bright frames (a fixed split, whatever the state)
    dim = _dim_frames(blinking)
    ratio_dim = camera[dim].sum() / apd[dim].sum()
    ratio_bright = camera[~dim].sum() / apd[~dim].sum()
    assert ratio_dim == pytest.approx(ratio_bright, rel=0.1)
