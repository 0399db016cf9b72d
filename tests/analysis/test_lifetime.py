"""Binned Poisson ML decay fits against photons drawn from known exponentials."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from cryoscope.analysis.lifetime import (
    _erfcx,
    _gauss_model,
    _Likelihood,
    decay_histogram,
    fit_decay,
    load_irf,
    model_counts,
)

PERIOD = 1_000_000  # 1 MHz


def _delays(rng: np.random.Generator, n: int, taus_ps: tuple[float, ...],
            weights: tuple[float, ...], period: int = PERIOD, irf_sigma_ps: float = 150.0,
            offset_ps: float = 5000.0, background: int = 300) -> np.ndarray:
    comp = rng.choice(len(taus_ps), n, p=np.asarray(weights) / sum(weights))
    t = rng.exponential(np.asarray(taus_ps)[comp]) + rng.normal(0, irf_sigma_ps, n) + offset_ps
    bg = rng.integers(0, period, background)
    return np.concatenate([np.mod(t, period).astype(np.int64), bg])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_and_hundred_ns_at_ten_thousand_photons(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hist = decay_histogram(_delays(rng, 10_000, (2000.0, 100_000.0), (0.3, 0.7)), PERIOD)
    fit = fit_decay(hist, 2)
    assert fit.success
    short, long_ = fit.taus_ns
    assert abs(short - 2.0) / 2.0 < 0.05
    assert abs(long_ - 100.0) / 100.0 < 0.05
    assert abs(fit.weights[0] - 0.3) < 0.03
    # The Hessian uncertainties are of the size the statistics allow (~3 % and ~1.5 %).
    assert 0.01 < fit.taus_err_ns[0] / short < 0.06
    assert 0.005 < fit.taus_err_ns[1] / long_ < 0.03
    assert abs(fit.t0_ns - 5.0) < 0.05


def test_uncertainties_are_calibrated() -> None:
    pulls = []
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        fit = fit_decay(decay_histogram(_delays(rng, 10_000, (2000.0, 100_000.0), (0.3, 0.7)),
                                        PERIOD), 2)
        pulls.append((fit.taus_ns[1] - 100.0) / fit.taus_err_ns[1])
    assert 0.5 < np.std(pulls) < 1.6
    assert abs(np.mean(pulls)) < 1.0


def test_pile_over_at_five_mhz() -> None:
    """At 5 MHz a 100 ns decay leaks 13.5 % into the next period; the periodic model absorbs it."""
    period = 200_000
    rng = np.random.default_rng(5)
    hist = decay_histogram(_delays(rng, 50_000, (100_000.0,), (1.0,), period=period), period)
    fit = fit_decay(hist, 1)
    assert abs(fit.taus_ns[0] - 100.0) < 3 * fit.taus_err_ns[0]
    assert abs(fit.taus_ns[0] - 100.0) / 100.0 < 0.05


def test_measured_irf_array() -> None:
    rng = np.random.default_rng(9)
    hist = decay_histogram(_delays(rng, 20_000, (6000.0,), (1.0,), offset_ps=20_000.0), PERIOD)
    centers = hist.centers_ns
    irf = np.exp(-0.5 * ((centers - 300.0) / 0.15) ** 2)  # peak anywhere: t0 is fitted
    fit = fit_decay(hist, 1, irf=irf)
    assert abs(fit.taus_ns[0] - 6.0) / 6.0 < 0.03
    assert abs(fit.t0_ns - 20.0) < 0.05


def test_irf_from_a_text_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    hist = decay_histogram(_delays(rng, 20_000, (4000.0,), (1.0,), irf_sigma_ps=200.0,
                                   offset_ps=8000.0), PERIOD)
    t = np.linspace(0, 10, 201)
    path = tmp_path / "irf.txt"
    np.savetxt(path, np.column_stack([t, np.exp(-0.5 * ((t - 3.0) / 0.2) ** 2)]))
    irf = load_irf(path, hist)
    assert irf.shape == hist.counts.shape
    fit = fit_decay(hist, 1, irf=irf)
    assert fit.taus_ns[0] == pytest.approx(4.0, rel=0.03)
    assert fit.t0_ns == pytest.approx(8.0, abs=0.05)


def test_a_biexciton_beside_a_trion_is_found() -> None:
    """A 0.25 ns component carrying 10 % of the photons beside a 6 ns decay (a biexciton cascade
    in a charged state): both lifetimes and the weight are recovered, not a local optimum
    with a spurious microsecond component."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        hist = decay_histogram(_delays(rng, 5000, (250.0, 6000.0), (0.1, 0.9),
                                       irf_sigma_ps=100.0), PERIOD)
        fit = fit_decay(hist, 2)
        assert fit.success
        (short, long_), (short_err, long_err) = fit.taus_ns, fit.taus_err_ns
        assert abs(short - 0.25) < 3 * short_err and short_err < 0.08
        assert abs(long_ - 6.0) < 3 * long_err and abs(long_ - 6.0) / 6.0 < 0.05
        assert abs(fit.weights[0] - 0.1) < 3 * fit.weights_err[0] + 0.01


def test_pile_over_at_eighty_mhz() -> None:
    """At 80 MHz (12.5 ns) a 10 ns decay never dies out between pulses."""
    period = 12_500
    rng = np.random.default_rng(6)
    hist = decay_histogram(_delays(rng, 100_000, (10_000.0,), (1.0,), period=period,
                                   offset_ps=3000.0, background=2000), period, 16.0)
    fit = fit_decay(hist, 1)
    assert fit.success
    assert abs(fit.taus_ns[0] - 10.0) < 3 * fit.taus_err_ns[0]
    assert abs(fit.taus_ns[0] - 10.0) / 10.0 < 0.03
    assert abs(fit.t0_ns - 3.0) < 0.05


def _reference_bins(edges: np.ndarray, tau: float, sigma: float, t0: float) -> np.ndarray:
    """Photons per bin of a unit periodic decay convolved with a Gaussian IRF (the module
    docstring's model), vectorized with scipy: the antiderivative at every edge, differenced."""
    period = edges[-1] - edges[0]
    x = edges - t0
    cdf = np.zeros_like(x)
    for y in (x - period, x):
        z = (sigma * sigma / tau - y) / (sigma * math.sqrt(2.0))
        with np.errstate(over="ignore", invalid="ignore"):
            tail = np.where(
                z > 0, 0.5 * special.erfcx(np.maximum(z, 0)) * np.exp(-0.5 * (y / sigma) ** 2),
                0.5 * np.exp(np.minimum(sigma**2 / (2 * tau**2) - y / tau, 700))
                * special.erfc(np.minimum(z, 0)))
        cdf += special.ndtr(y / sigma) - tail
    if period / tau < 700:  # the earlier pulses: fully risen exponentials
        cdf -= np.exp(np.minimum(sigma**2 / (2 * tau**2) - x / tau, 700)) / np.expm1(period / tau)
    return np.diff(cdf)


def test_compiled_erfcx_matches_scipy() -> None:
    z = np.concatenate([np.linspace(0.0, 30.0, 3001), np.geomspace(30.0, 1e8, 200)])
    ours = np.array([_erfcx(v) for v in z])
    np.testing.assert_allclose(ours, special.erfcx(z), rtol=1e-13)


def test_compiled_model_matches_the_scipy_reference() -> None:
    """Over lifetimes far below the IRF width to far above the period, IRF widths from a bin
    to several ns, and rises anywhere in (and just outside) the period."""
    edges = np.linspace(0.0, 1000.0, 15626)
    taus = (0.005, 0.05, 0.5, 5.0, 50.0, 500.0, 5000.0, 1e5)
    for tau, sigma, t0 in itertools.product(taus, (0.01, 0.15, 2.0),
                                            (-2.0, 0.3, 5.0, 600.0, 999.5)):
        ref = _reference_bins(edges, tau, sigma, t0)
        ours = model_counts(edges, np.array([1.0]), np.array([tau]), 0.0, t0, sigma)
        assert np.max(np.abs(ours - ref)) <= 1e-9 * np.max(np.abs(ref)), (tau, sigma, t0)
        if t0 in (5.0, 600.0):  # one photon per pulse
            assert ours.sum() == pytest.approx(1.0, abs=1e-9), (tau, sigma, t0)


def test_compiled_derivatives_match_finite_differences() -> None:
    """The model's derivatives by (log A, log τ, log B, t0, log σ), on merged bins, with and
    without pile-over."""
    merged = np.concatenate([np.linspace(0.0, 20.0, 313), np.geomspace(20.5, 1000.0, 60)])
    for edges, amps, taus, sigma, t0 in [
            (merged, (5e3, 2e3), (0.3, 60.0), 0.12, 4.9),
            (merged, (1e3,), (2500.0,), 0.4, 990.0),
            (merged, (10.0, 1e4), (0.004, 8.0), 1.5, 0.2),
            (np.linspace(0.0, 12.5, 201), (2e3, 1e3), (6.0, 40.0), 1.0, 3.0)]:
        p = np.array([*np.log(amps), *np.log(taus), math.log(3.0), t0, math.log(sigma)])
        n = len(amps)
        period = float(edges[-1])

        def model(q: np.ndarray, edges: np.ndarray = edges, n: int = n, period: float = period
                  ) -> tuple[np.ndarray, np.ndarray]:
            return _gauss_model(edges, np.exp(q[:n]), np.exp(q[n:2 * n]), math.exp(q[2 * n]),
                                q[2 * n + 1], math.exp(q[2 * n + 2]), period, True)

        mu, jac = model(p)
        for j in range(p.shape[0]):
            h = np.zeros_like(p)
            h[j] = 1e-5
            numeric = (model(p + h)[0] - model(p - h)[0]) / 2e-5
            # the floor: differences of an antiderivative of order τ/T·A resolve ~1e-13 of it
            tolerance = 1e-5 * np.max(np.abs(numeric)) + 1e-8 * np.max(mu)
            assert np.max(np.abs(jac[:, j] - numeric)) < tolerance, (taus, j)


def test_measured_irf_derivatives_match_finite_differences() -> None:
    edges = np.linspace(0.0, 100.0, 1563)
    centers = 0.5 * (edges[1:] + edges[:-1])
    irf = np.exp(-0.5 * ((centers - 40.0) / 0.2) ** 2) + 0.3 * np.exp(-(centers - 40.0) / 0.5
                                                                         ) * (centers > 40.0)
    counts = np.ones(edges.shape[0] - 1)
    lik = _Likelihood(edges, counts, np.ones_like(counts, bool), 2, irf, None)
    p = np.array([math.log(3e3), math.log(7e3), math.log(0.8), math.log(30.0), math.log(0.5),
                  12.3])
    jac = lik.model(p)[1]
    for j in range(p.shape[0]):
        h = np.zeros_like(p)
        h[j] = 1e-5
        numeric = (lik.model(p + h)[0] - lik.model(p - h)[0]) / 2e-5
        assert np.max(np.abs(jac[:, j] - numeric)) < 1e-5 * np.max(np.abs(numeric)), j


def test_a_rise_late_in_the_period() -> None:
    """A fast decay rising 669 ns into a 1 µs period (a long cable): the merged bins before the
    rise stop where full resolution begins, so the rise is not swallowed by one wide bin."""
    rng = np.random.default_rng(12)
    hist = decay_histogram(_delays(rng, 12_000, (780.0,), (1.0,), irf_sigma_ps=160.0,
                                   offset_ps=669_000.0, background=1600), PERIOD)
    fit = fit_decay(hist, 1)
    assert fit.success
    assert abs(fit.taus_ns[0] - 0.78) < 3 * fit.taus_err_ns[0]
    assert abs(fit.taus_ns[0] - 0.78) / 0.78 < 0.03
    assert abs(fit.t0_ns - 669.0) < 0.02
    assert fit.sigma_ns == pytest.approx(0.16, abs=0.02)
