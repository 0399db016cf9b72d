"""Decay dynamics: a non-blinking dot's two exciton components and a blinking dot's trion."""

from __future__ import annotations

import numpy as np
import pytest
from simtools import fit_decay_ns, make_config

from cryoscope.analysis.lifetime import decay_histogram, fit_decay

LIFETIMES_NS = (1.5, 100.0)
WEIGHTS = (0.3, 0.7)


def _non_blinking_dot(measure):  # type: ignore[no-untyped-def]
    """A dot with two exciton components at low excitation (⟨N⟩ ≈ 0.2, few biexciton
    cascades): its configuration and the delays of its photons."""
    cfg = make_config(
        emitters=[{"lifetimes_ns": list(LIFETIMES_NS), "lifetime_weights": list(WEIGHTS),
                   "charging_rate_hz": 0.0, "discharging_rate_hz": 0.0, "dark_rate_hz": 0.0}],
        laser={"power_nw": 60.0}, simulation={"seed": 11},
    )
    m = measure(cfg, frames=30, exposure_s=0.5)
    return cfg, m, m.photon_delays_ps()[1]


def test_non_blinking_dot_recovers_both_lifetimes(measure) -> None:
    """At low excitation the decay is the exciton's."""
    _, _, delays = _non_blinking_dot(measure)
    assert delays.shape[0] > 50_000
    taus, fractions = fit_decay_ns(delays, (1.0, 80.0))
    assert taus == pytest.approx(LIFETIMES_NS, rel=0.05)
    assert fractions == pytest.approx(WEIGHTS, abs=0.05)


def test_delays_without_conditional_filter_match(measure) -> None:
    """Without the filter every sync is streamed; delay = t_photon − t_sync_previous."""
    cfg = make_config(
        emitters=[{"lifetimes_ns": [20.0], "lifetime_weights": [1.0]}],
        channels={"conditional_filter": False}, simulation={"seed": 12},
    )
    m = measure(cfg, frames=6, exposure_s=0.5)
    clicks, sync = m.tags(m.apd), m.tags(m.laser_sync)
    assert sync.shape[0] > clicks.shape[0] * 10  # every pulse is tagged
    assert np.all(np.diff(sync) == m.period_ps)
    prev = np.searchsorted(sync, clicks, side="right") - 1
    ok = prev >= 0
    delays = clicks[ok] - sync[prev[ok]]
    taus, _ = fit_decay_ns(delays, (15.0,))
    assert taus[0] == pytest.approx(20.0, rel=0.05)


def test_decay_piles_over_at_5_mhz(measure) -> None:
    """At 5 MHz a 100 ns decay outlives the 200 ns period: the histogram is the periodic sum,
    and with the filter's delay formula photons land modulo the period."""
    tau_ns, period_ns = 100.0, 200.0
    cfg = make_config(emitters=[{"lifetimes_ns": [tau_ns], "lifetime_weights": [1.0]}],
                      laser={"repetition_rate_hz": 5e6, "power_nw": 300.0},
                      sample={"background_cps": 0.0},
                      optics={"apd_dark_cps": 0.0, "apd_afterpulsing": 0.0},
                      simulation={"seed": 13})
    m = measure(cfg, frames=6, exposure_s=0.5)
    assert m.period_ps == 200_000
    _, delays = m.photon_delays_ps()
    assert delays.min() >= 0 and delays.max() < m.period_ps
    offset = cfg.optics.apd_delay_ns * 1e3  # the APD's signal delay: the decay starts there
    shifted = (delays - offset) % m.period_ps
    early = np.count_nonzero(shifted < m.period_ps / 2)
    late = shifted.shape[0] - early
    assert late / early == pytest.approx(np.exp(-period_ns / 2 / tau_ns), rel=0.03)


def test_analysis_fit_recovers_both_lifetimes(measure) -> None:
    """The analysis' decay fit (binned Poisson ML on 64 ps bins, Gaussian IRF fitted) on the
    simulated dot of the first test: the exciton's two components and their weights."""
    cfg, m, delays = _non_blinking_dot(measure)
    fit = fit_decay(decay_histogram(delays, m.period_ps), 2)
    assert fit.success
    assert fit.taus_ns == pytest.approx(LIFETIMES_NS, rel=0.03)
    assert fit.weights == pytest.approx(WEIGHTS, abs=0.02)
    for tau, err, true in zip(fit.taus_ns, fit.taus_err_ns, LIFETIMES_NS, strict=True):
        assert 0 < err < 0.02 * true
        assert abs(tau - true) < 3 * err
    assert fit.t0_ns == pytest.approx(cfg.optics.apd_delay_ns, abs=0.05)
