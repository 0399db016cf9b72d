"""The EMCCD: noise chain statistics against gain, cooling with temperature-dependent dark
current, the EM-gain guard and 16-bit clipping."""

from __future__ import annotations

import numpy as np
import pytest
from simtools import make_config

from cryoscope.backends import open_rig
from drivers.interfaces import CoolingStatus, ReadMode, Readout, SettingRejectedError
from sim_hardware.optics import ReadNoise, dark_current_e_per_s, emccd_readout
from sim_hardware.params import OpticsParams

OPTICS = OpticsParams()


def _readout(photons: np.ndarray, binned: np.ndarray, exposure_s: float, gain: int,
             rng: np.random.Generator) -> np.ndarray:
    """:func:`emccd_readout` of dense photon counts at the setpoint, −80 °C."""
    holding = np.flatnonzero(photons)
    return emccd_readout(holding, photons.reshape(-1)[holding], photons.shape, binned,
                         exposure_s, gain, -80.0, OPTICS, rng)


def _expected(mean_e: float, gain: float, optics: OpticsParams) -> tuple[float, float]:
    """Mean and variance (ADU) of a pixel with Poisson input of ``mean_e`` electrons: the EM
    register's Gamma output doubles the variance (excess noise factor √2); read noise adds;
    rounding to ADU adds 1/12."""
    e = optics.emccd_electrons_per_adu
    mean = optics.emccd_bias_adu + mean_e * gain / e
    var = (2 * mean_e * gain**2 + optics.emccd_read_noise_e**2) / e**2 + 1 / 12
    return mean, var


@pytest.mark.parametrize("gain", [50, 150, 300])
def test_pixel_statistics_match_the_noise_chain(gain: int) -> None:
    rng = np.random.default_rng(5)
    photons = rng.poisson(20.0, size=(200, 2, 1024))
    binned = np.array([[20], [20]])
    adu = _readout(photons, binned, 0.5, gain, rng).astype(np.float64)
    mean_e = (20.0 * OPTICS.emccd_quantum_efficiency
              + 20 * (OPTICS.emccd_cic_per_pixel + OPTICS.emccd_dark_e_per_s * 0.5))
    mean, var = _expected(mean_e, gain, OPTICS)
    assert adu.mean() == pytest.approx(mean, rel=0.01)
    assert adu.var() == pytest.approx(var, rel=0.03)


def test_no_gain_reads_electrons_with_read_noise_only() -> None:
    rng = np.random.default_rng(6)
    photons = np.full((100, 1, 1024), 1000)
    adu = _readout(photons, np.array([[1]]), 0.1, 0, rng).astype(float)
    e = OPTICS.emccd_electrons_per_adu
    assert adu.mean() == pytest.approx(OPTICS.emccd_bias_adu + 900 / e, rel=0.01)
    # binomial QE + read noise, no excess noise
    assert adu.var() == pytest.approx((1000 * 0.9 * 0.1 + 45**2) / e**2 + 1 / 12, rel=0.05)


def test_bright_pixels_clip_at_16_bits() -> None:
    rng = np.random.default_rng(7)
    adu = _readout(np.full((1, 1, 8), 50_000), np.array([[1]]), 0.1, 300, rng)
    assert adu.dtype == np.uint16
    assert np.all(adu == 65535)


@pytest.mark.parametrize("gain", [100, 300])
def test_dark_frames_through_the_camera_match_the_model(measure, gain: int) -> None:
    """No light at all: the frames hold bias, clock-induced charge and dark current only."""
    cfg = make_config(laser={"power_nw": 0.0}, sample={"background_cps": 0.0},
                      camera={"em_gain": gain}, simulation={"seed": 50 + gain})
    m = measure(cfg, frames=10, exposure_s=0.5)
    rows = 20  # track height in config/simulated.toml
    mean_e = rows * (OPTICS.emccd_cic_per_pixel + dark_current_e_per_s(OPTICS, -80.0) * 0.5)
    mean, var = _expected(mean_e, gain, OPTICS)
    adu = m.frames.astype(np.float64)
    assert adu.mean() == pytest.approx(mean, abs=0.05 * (mean - OPTICS.emccd_bias_adu))
    assert adu.var() == pytest.approx(var, rel=0.1)


def test_cooling_takes_time_and_warm_sensors_are_noisier() -> None:
    cfg = make_config(optics={"camera_start_cold": False, "camera_cooling_tau_s": 60.0},
                      laser={"power_nw": 0.0}, sample={"background_cps": 0.0},
                      camera={"em_gain": 10}, simulation={"seed": 60})
    with open_rig(cfg) as rig:
        cam, clock = rig.camera, rig.clock
        assert cam.temperature_c() > 15.0
        assert cam.cooling_status() is CoolingStatus.NOT_REACHED
        cam.set_readout(Readout(ReadMode.TRACKS, cam.readout().tracks))
        cam.set_exposure_s(1.0)
        with pytest.raises(SettingRejectedError, match="no EM gain before the sensor is cold"):
            cam.set_em_gain(10)
        assert cam.em_gain() == 0

        def dark_signal_e(frames: int) -> tuple[float, float]:
            """Mean dark signal per binned pixel, in electrons before the EM register."""
            cam.start_series(frames)
            clock.sleep(frames + 0.1)
            frames = cam.read_new_frames().frames.astype(float)
            gain = max(cam.em_gain(), 1)
            adu = frames.mean() - OPTICS.emccd_bias_adu
            return adu * OPTICS.emccd_electrons_per_adu / gain, cam.temperature_c()

        warm_e, warm_c = dark_signal_e(3)  # few: the sensor cools meanwhile
        clock.sleep(60.0)
        t_60 = cam.temperature_c()
        # exponential approach to −80 °C with τ = 60 s, from about +20 °C
        assert t_60 == pytest.approx(-80.0 + (warm_c + 80.0) * np.exp(-1.0), abs=2.0)
        assert cam.cooling_status() is CoolingStatus.NOT_REACHED
        clock.sleep(600.0)
        assert cam.cooling_status() is CoolingStatus.STABILIZED
        cam.set_em_gain(10)
        # many: ~0.1 e⁻ under 4.5 e⁻ of read noise (45 e⁻ at gain 10); 40 frames: ±0.016 e⁻
        cold_e, cold_c = dark_signal_e(40)
    rows = 20
    for signal, temp in ((warm_e, warm_c), (cold_e, cold_c)):
        expected_e = rows * (OPTICS.emccd_cic_per_pixel + dark_current_e_per_s(OPTICS, temp))
        assert signal == pytest.approx(expected_e, rel=0.15, abs=0.03)
    assert warm_e > 50 * cold_e


def test_em_gain_above_300_needs_advanced_mode() -> None:
    with open_rig(make_config()) as rig:
        with pytest.raises(SettingRejectedError, match="advanced"):
            rig.camera.set_em_gain(500)
        assert rig.camera.em_gain() == 100
        rig.camera.set_em_gain(500, advanced=True)
        assert rig.camera.em_gain() == 500
        with pytest.raises(SettingRejectedError):
            rig.camera.set_em_gain(1200, advanced=True)


def test_read_noise_drawn_ahead_is_the_stream_in_order() -> None:
    """The helper thread draws the next frame's noise while a frame is read: what comes out is
    the noise stream in order (a seeded run is reproducible), whatever the timing, and a change
    of frame size only skips the frame drawn ahead."""
    noise = ReadNoise(np.random.default_rng(11))
    got = [noise.take(n) for n in (10, 10, 5, 5, 10)]
    noise.close()
    ref = np.random.default_rng(11)
    stream = [ref.standard_normal(n, dtype=np.float32) for n in (10, 10, 10, 5, 5, 5, 10)]
    for g, expected in zip(got, [stream[0], stream[1], stream[3], stream[4], stream[6]],
                           strict=True):
        np.testing.assert_array_equal(g, expected)
    assert np.std(np.concatenate([noise.take(100_000) for _ in range(3)])) == pytest.approx(
        1.0, abs=0.01)
    noise.close()
