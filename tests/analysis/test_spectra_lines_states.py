"""Spectra preparation, line fits and spectral states on synthetic EMCCD frames."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscope.analysis.lines import find_zpls, fit_lines, line_model
from cryoscope.analysis.spectra import NoiseModel, estimate_noise, prepare_spectra

GAIN = 50.0  # EM gain
E_PER_ADU = 4.0
ADU_PER_PHOTON = GAIN / E_PER_ADU
READ_E = 45.0


def _emccd(rng: np.random.Generator, photons: np.ndarray) -> np.ndarray:
    el = rng.gamma(np.maximum(photons, 1e-12), GAIN) * (photons > 0)
    el += rng.normal(0, READ_E, photons.shape)
    return np.clip(np.round(el / E_PER_ADU + 200), 0, 65535).astype(np.uint16)


def _wavelengths() -> np.ndarray:
    return np.linspace(545.0, 614.0, 1024)


def _shape(energy: np.ndarray, zpl: float, replicas=(0.15, 0.1)) -> np.ndarray:
    s = line_model(energy, np.array([zpl]), np.array([1.0]), np.array([0.4]),
                   np.array([replicas]), 0.16, 0.0)
    return s / s.sum()


def _frames(rng: np.random.Generator, states: np.ndarray) -> np.ndarray:
    """Per frame: 0 neutral (2.15 eV, bright), 1 trion (2.135 eV, 0.4×), 2 dark."""
    e = 1239.84193 / _wavelengths()
    out = np.empty((states.size, 2, e.size), np.uint16)
    for k, st in enumerate(states):
        lam = np.zeros(e.size)
        if st == 0:
            lam = 2000 * _shape(e, 2.15)
        elif st == 1:
            lam = 800 * _shape(e, 2.135)
        for track, share in enumerate((0.55, 0.45)):
            out[k, track] = _emccd(rng, rng.poisson(lam * share + 0.02))
    return out


def test_noise_model_from_frame_differences() -> None:
    rng = np.random.default_rng(0)
    lam = np.concatenate([np.zeros(500), np.geomspace(0.5, 300, 524)])
    v = _emccd(rng, rng.poisson(np.broadcast_to(lam, (60, lam.size)))).astype(float)
    h = _emccd(rng, rng.poisson(np.broadcast_to(lam, (60, lam.size)))).astype(float)
    noise = estimate_noise(v - 200, h - 200)
    assert noise.adu_per_photon == pytest.approx(ADU_PER_PHOTON, rel=0.15)
    assert noise.read_var_adu2 == pytest.approx((READ_E / E_PER_ADU) ** 2, rel=0.15)


def test_cosmic_rays_removed_and_light_kept() -> None:
    rng = np.random.default_rng(1)
    states = np.zeros(30, int)
    states[12] = 1  # a single trion frame: real light in both tracks, must stay
    frames = _frames(rng, states)
    hits = [(3, 0, 100), (17, 1, 700), (25, 0, 512)]
    for k, tr, px in hits:
        frames[k, tr, px] += 15000
    sp = prepare_spectra(frames, _wavelengths())
    assert sp.cosmic_rays == len(hits)
    assert sp.merged.max() < 10000
    e = sp.energy_ev
    trion = (e > 2.134) & (e < 2.136)
    assert sp.merged[12, trion].sum() > 20 * ADU_PER_PHOTON * 10
    assert np.all(np.diff(e) > 0)
    assert e[0] == pytest.approx(1239.84193 / 614.0)


def test_monomer_line_with_replicas() -> None:
    rng = np.random.default_rng(2)
    e = np.linspace(2.05, 2.25, 1024)
    truth = line_model(e, np.array([2.15]), np.array([3e5]), np.array([0.4]),
                       np.array([[0.15, 0.1]]), 0.25, 0.0)
    y = _emccd(rng, rng.poisson(truth / ADU_PER_PHOTON)).astype(float) - 200
    noise = NoiseModel(ADU_PER_PHOTON, (READ_E / E_PER_ADU) ** 2)
    zpls = find_zpls(e, y, np.sqrt(noise.variance(np.maximum(y, 0))))
    assert zpls.size == 1  # the replicas are not taken for lines
    fit = fit_lines(e, y, zpls, noise)
    (line,) = fit.lines
    assert abs(line.zpl_ev - 2.15) < 0.05e-3
    assert line.fwhm_mev == pytest.approx(0.4, rel=0.15)
    assert line.replica_weights[0] == pytest.approx(0.15, abs=0.03)
    assert line.replica_weights[1] == pytest.approx(0.10, abs=0.03)
    assert 0.6 < fit.reduced_chi2 < 1.6  # EMCCD weights: χ² per dof near one


def test_dimer_two_zpls() -> None:
    rng = np.random.default_rng(3)
    e = np.linspace(2.05, 2.25, 1024)
    truth = line_model(e, np.array([2.15, 2.172]), np.array([2e5, 1.5e5]),
                       np.array([0.4, 0.6]), np.array([[0.15, 0.1], [0.2, 0.05]]), 0.25, 0.0)
    y = _emccd(rng, rng.poisson(truth / ADU_PER_PHOTON)).astype(float) - 200
    noise = NoiseModel(ADU_PER_PHOTON, (READ_E / E_PER_ADU) ** 2)
    zpls = find_zpls(e, y, np.sqrt(noise.variance(np.maximum(y, 0))))
    fit = fit_lines(e, y, zpls, noise)
    found = sorted(line.zpl_ev for line in fit.lines)
    assert len(found) == 2
    np.testing.assert_allclose(found, [2.15, 2.172], atol=0.1e-3)


def test_replica_of_a_split_zpl_is_not_a_line() -> None:
    from cryoscope.analysis.report import _replica_like

    zpl = np.array([2.1500, 2.1488, 2.1488 - 0.0272, 2.1300])
    area = np.array([1.0, 0.9, 0.12, 0.5])
    # The third sits 27 meV below the second, which is 7× stronger; the others are lines.
    assert _replica_like(zpl, area).tolist() == [False, False, True, False]
