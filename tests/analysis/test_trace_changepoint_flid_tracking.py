"""Intensity traces, Watkins–Yang change points, FLID and peak tracking on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscope.analysis.changepoint import critical_value, find_change_points, group_levels
from cryoscope.analysis.flid import flid
from cryoscope.analysis.trace import intensity_trace, threshold_levels

RATES = (20000.0, 2000.0, 20000.0, 8000.0, 2000.0, 20000.0, 8000.0)
DURATIONS = (1.0, 0.5, 2.0, 1.0, 0.3, 1.0, 2.0)


def _blinking(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    times, edges, t0 = [], [], 0.0
    for rate, dur in zip(RATES, DURATIONS, strict=True):
        times.append(t0 + np.sort(rng.random(rng.poisson(rate * dur))) * dur)
        t0 += dur
        edges.append(t0)
    return (np.concatenate(times) * 1e12).astype(np.int64), np.array(edges[:-1])


def test_intensity_trace_counts_every_photon() -> None:
    rng = np.random.default_rng(0)
    t, _ = _blinking(rng)
    tr = intensity_trace(t, 0.01, 0, int(sum(DURATIONS) * 1e12))
    assert tr.counts.sum() == t.size
    assert tr.counts.size == round(sum(DURATIONS) / 0.01)
    assert tr.rate_cps[:100].mean() == pytest.approx(20000, rel=0.03)
    levels = threshold_levels(tr)
    assert 20 < levels.threshold < 200  # between 2 kcps (20/bin) and 8–20 kcps
    assert levels.on_rate_cps > 10000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_change_points_and_levels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t, truth = _blinking(rng)
    cp = find_change_points(t)
    found = cp.time_s[1:-1]
    # Every true change is found within 20 ms, and at most one spurious one.
    for edge in truth:
        assert np.min(np.abs(found - edge)) < 0.02
    assert found.size <= truth.size + 1
    levels = group_levels(cp)
    assert levels.rate_cps.size in (3, 4)
    for rate in (2000.0, 8000.0, 20000.0):
        assert np.min(np.abs(levels.rate_cps - rate)) / rate < 0.06


def test_segments_and_levels_respect_their_photon_minimum() -> None:
    """Flickers of a few photons between long on/off periods make no segment of their own
    (every segment ≥ 10 photons) and no level (every level ≥ 100 photons)."""
    rng = np.random.default_rng(7)
    parts, start = [], 0.0
    for k in range(40):
        rate, span = ((20000.0, rng.uniform(1, 4)) if k % 2 == 0 else (300.0, rng.uniform(1, 4)))
        parts.append(start + np.sort(rng.random(rng.poisson(rate * span))) * span)
        start += span
        parts.append(start + np.sort(rng.random(3)) * 1e-4)  # a 3-photon flicker
        start += 1e-4
    t = (np.concatenate(parts) * 1e12).astype(np.int64)
    cp = find_change_points(t)
    assert cp.counts.min() >= 10
    levels = group_levels(cp)
    photons = np.bincount(levels.level_of_segment, weights=cp.counts)
    assert photons.min() >= 100
    assert levels.rate_cps[0] == pytest.approx(300.0, rel=0.1)
    assert levels.rate_cps[-1] == pytest.approx(20000.0, rel=0.05)


def test_no_change_point_in_a_constant_rate() -> None:
    spurious = 0
    for seed in range(10):
        rng = np.random.default_rng(50 + seed)
        t = (np.sort(rng.random(rng.poisson(20000 * 2.0))) * 2.0 * 1e12).astype(np.int64)
        spurious += find_change_points(t).index.size
    assert spurious <= 2  # α = 5 % per test


def test_critical_value_grows_slowly_with_photons() -> None:
    assert 4 < critical_value(1000) < critical_value(1_000_000) < 12


def test_flid_separates_two_states() -> None:
    rng = np.random.default_rng(3)
    period = 1_000_000
    parts_t, parts_d = [], []
    for k in range(200):  # 10 ms bins alternate: bright/long (100 ns), dim/short (6 ns)
        bright = k % 2 == 0
        n = rng.poisson(200 if bright else 60)
        parts_t.append(k * 10_000_000_000 + rng.integers(0, 10_000_000_000, n))
        parts_d.append(5000 + rng.exponential(100_000.0 if bright else 6000.0, n))
    t = np.concatenate(parts_t)
    d = np.mod(np.concatenate(parts_d), period).astype(np.int64)
    order = np.argsort(t)
    fl = flid(t[order], d[order], gate_start_ns=5.5, gate_ns=500.0, bin_s=0.01,
              background_cps=0.0, period_ps=period)
    bright = fl.counts > 130
    assert bright.sum() == pytest.approx(100, abs=3)
    # Mean delay in a 500 ns gate from 0.5 ns after the pulse: ≈ τ for τ ≪ gate.
    assert np.nanmedian(fl.mean_delay_ns[bright]) == pytest.approx(100.0, rel=0.1)
    assert np.nanmedian(fl.mean_delay_ns[~bright]) == pytest.approx(6.0, rel=0.15)
    assert fl.histogram.sum() == np.isfinite(fl.mean_delay_ns).sum()


def test_flid_background_correction() -> None:
    rng = np.random.default_rng(4)
    period, bin_s, n_bins = 1_000_000, 0.01, 300
    t, d = [], []
    for k in range(n_bins):
        n_sig, n_bg = rng.poisson(100), rng.poisson(2000 * bin_s)
        t.append(k * 10_000_000_000 + rng.integers(0, 10_000_000_000, n_sig + n_bg))
        d.append(np.concatenate([5000 + rng.exponential(20_000.0, n_sig),
                                 rng.integers(0, period, n_bg)]))
    t_all = np.concatenate(t)
    order = np.argsort(t_all)
    d_all = np.mod(np.concatenate(d), period).astype(np.int64)[order]
    raw = flid(t_all[order], d_all, gate_start_ns=5.0, gate_ns=400.0, bin_s=bin_s,
               period_ps=period)
    corrected = flid(t_all[order], d_all, gate_start_ns=5.0, gate_ns=400.0, bin_s=bin_s,
                     background_cps=2000.0, period_ps=period)
    assert np.nanmean(raw.mean_delay_ns) > 25.0  # background drags the mean towards 200 ns
    assert np.nanmean(corrected.mean_delay_ns) == pytest.approx(20.0, rel=0.1)
