"""Binned Poisson ML decay fits against photons drawn from known exponentials."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryoscope.analysis.lifetime import decay_histogram, fit_decay, load_irf

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
