"""Joint fit of p, φ and g_V/g_H to V/H counts with EMCCD noise and blinking."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from cryoscope.analysis.polarization import fit_polarization, polarization_model


def _counts(rng: np.random.Generator, p: float, phi: float, gv: float, gh: float,
            photons: float = 400.0, gain: float = 20.0, read: float = 10.0):
    theta = np.repeat(np.arange(0.0, 180.0, 5.0), 5)
    m = p * np.cos(np.radians(4 * theta - 2 * phi))
    # Blinking: every frame's brightness is on or off, shared by V and H.
    bright = photons * rng.choice([0.1, 1.0], theta.size)
    nv = rng.poisson(bright * gv * (1 + m) / 2)
    nh = rng.poisson(bright * gh * (1 - m) / 2)

    def emccd(n: np.ndarray) -> np.ndarray:
        return (rng.gamma(np.maximum(n, 1e-12), gain) * (n > 0)
                + rng.normal(0, read, n.size)) / gain

    return emccd(nv), emccd(nh), theta


@pytest.mark.parametrize(("p", "phi", "gv", "gh"), [
    (0.7, 30.0, 1.0, 0.9), (0.5, 110.0, 1.0, 0.5), (0.9, 170.0, 0.6, 1.0)])
def test_recovers_degree_angle_and_channel_ratio(p: float, phi: float, gv: float, gh: float
                                                  ) -> None:
    rng = np.random.default_rng(int(phi))
    v, h, theta = _counts(rng, p, phi, gv, gh)
    fit = fit_polarization(v, h, theta, counts_in_photons=True)
    dphi = (fit.phi_deg - phi + 90.0) % 180.0 - 90.0
    assert abs(dphi) < 4 * fit.phi_err_deg and abs(dphi) < 2.0
    assert abs(fit.p - p) < 4 * fit.p_err and abs(fit.p - p) < 0.03
    assert abs(fit.gain_ratio - gv / gh) < 4 * fit.gain_ratio_err
    if p <= 0.7:  # σ_φ ≈ σ_p / (2p) (PHYSICS.md), a small-p approximation
        assert fit.phi_err_deg == pytest.approx(np.degrees(fit.p_err / (2 * fit.p)), rel=0.3)


def test_uncertainties_include_the_emccd_excess_noise() -> None:
    pulls_phi, pulls_p = [], []
    for seed in range(30):
        rng = np.random.default_rng(1000 + seed)
        v, h, theta = _counts(rng, 0.6, 45.0, 1.0, 0.8, photons=100.0)
        fit = fit_polarization(v, h, theta, counts_in_photons=True)
        pulls_phi.append(((fit.phi_deg - 45.0 + 90) % 180 - 90) / fit.phi_err_deg)
        pulls_p.append((fit.p - 0.6) / fit.p_err)
    # With the binomial variance alone (no factor 2) the pulls would spread by √2.
    assert 0.7 < np.std(pulls_phi) < 1.3
    assert 0.7 < np.std(pulls_p) < 1.3


def test_model_convention() -> None:
    # θ = φ/2: V maximal; p(θ) = (V − H)/(V + H) = p at g_V = g_H.
    assert polarization_model(np.array([15.0]), 0.8, 30.0, 1.0)[0] == pytest.approx(0.9)
    assert polarization_model(np.array([60.0]), 0.8, 30.0, 1.0)[0] == pytest.approx(0.1)


def test_too_few_points_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        fit_polarization(np.ones(3), np.ones(3), np.zeros(3))


def test_fully_polarized_fit_has_no_fake_uncertainty() -> None:
    theta = np.arange(0.0, 180.0, 5.0)
    f = polarization_model(theta, 1.0, 40.0, 1.0)
    fit = fit_polarization(1000 * f, 1000 * (1 - f), theta, counts_in_photons=True)
    assert fit.p > 0.995
    assert abs(((fit.phi_deg - 40.0 + 90) % 180) - 90) < 0.5
    assert np.isnan(fit.p_err) and np.isnan(fit.phi_err_deg)


def test_a_fit_on_the_boundary_says_so_and_leaves_the_logging_to_its_caller(
        caplog: pytest.LogCaptureFixture) -> None:
    theta = np.arange(0.0, 180.0, 5.0)
    f = polarization_model(theta, 1.0, 40.0, 1.0)
    with caplog.at_level(logging.DEBUG, "cryoscope"):
        fit = fit_polarization(1000 * f, 1000 * (1 - f), theta, counts_in_photons=True)
    assert not fit.determined and "boundary" in fit.problem
    # called for every redraw and every assignment round: no warning each time
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_data_that_cannot_place_phi_give_no_uncertainty_not_a_small_one() -> None:
    # 4θ = 0°, 180°, 360°, 540°: cos 4θ = ±1 and sin 4θ = 0 at every angle, so the
    # sin(2φ) part of the modulation is not measured
    theta = np.arange(0.0, 180.0, 45.0)
    f = polarization_model(theta, 0.6, 30.0, 1.0)
    fit = fit_polarization(5000 * f, 5000 * (1 - f), theta, counts_in_photons=True)
    assert not fit.determined and fit.problem
    assert np.isnan(fit.p_err) and np.isnan(fit.phi_err_deg)


def test_an_unmodulated_signal_has_no_zero_uncertainty() -> None:
    # V = H at every angle: p = 0 exactly, where φ has no meaning — not "φ = 0.0 ± 0.0"
    theta = np.arange(0.0, 180.0, 10.0)
    fit = fit_polarization(np.full(18, 1000.0), np.full(18, 1000.0), theta,
                           counts_in_photons=True)
    assert fit.p < 1e-6
    assert not fit.determined
    assert not (fit.p_err == 0.0 or fit.phi_err_deg == 0.0)


def test_a_channel_without_signal_is_an_error() -> None:
    theta = np.arange(0.0, 180.0, 10.0)
    with pytest.raises(ValueError, match="no signal in the H channel"):
        fit_polarization(np.full(18, 100.0), np.zeros(18), theta)


def test_angles_covering_less_than_half_the_modulation_determine_nothing() -> None:
    """V/(V+H) is modulated as cos 4θ: over a slice of its 90° period any p fits with a matching
    g_V/g_H. The first 15° of a run are not determined (the window drew p = 0.96, g = 0.32 for
    p = 0.7); the first 45° are, and right."""
    rng = np.random.default_rng(3)
    v, h, theta = _counts(rng, 0.7, 30.0, 1.0, 0.9, photons=4000.0)
    early = theta < 20.0
    fit = fit_polarization(v[early], h[early], theta[early], counts_in_photons=True)
    assert not fit.determined
    assert "cover 15° of the waveplate's 90° period" in fit.problem
    assert np.isnan(fit.p_err) and np.isnan(fit.phi_err_deg)
    half = theta <= 45.0
    fit = fit_polarization(v[half], h[half], theta[half], counts_in_photons=True)
    assert fit.determined
    assert abs(fit.p - 0.7) < 0.05 and abs((fit.phi_deg - 30.0 + 90.0) % 180.0 - 90.0) < 3.0
    # a full turn wraps around: 0–175° covers the whole cycle
    assert fit_polarization(v, h, theta, counts_in_photons=True).determined


def test_noise_free_counts_give_back_the_truth_at_any_count_level() -> None:
    """Expected counts (no noise) have their likelihood maximum at the truth: the fit must reach
    it for 10³–10⁶ counts per angle, where nll is large and the gradient optimizer stops at the
    float resolution (accepting such a stop wherever it happens gave p off by up to 4e-3)."""
    rng = np.random.default_rng(0)
    theta = np.arange(19) * 5.0
    for _ in range(200):
        p, phi, g = rng.uniform(0, 0.97), rng.uniform(0, 180), rng.uniform(0.5, 2)
        n = np.full(theta.shape, 10 ** rng.uniform(3, 6))
        v = n * polarization_model(theta, p, phi, g)
        fit = fit_polarization(v, n - v, theta)
        assert fit.p == pytest.approx(p, abs=1e-5)
        assert fit.gain_ratio == pytest.approx(g, rel=1e-5)
        if p > 0.01:
            assert abs((fit.phi_deg - phi + 90) % 180 - 90) < 1e-3 / p
