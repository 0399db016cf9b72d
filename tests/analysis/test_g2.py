"""g²(τ) of two APDs: exact pair counting, g²(0) against known photon statistics and against the
simulated rig's biexciton cascade; the second APD's timing offset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cryoscope.analysis.figures import g2_figure, write_figures
from cryoscope.analysis.g2 import G2Correlator, g2_from_photons
from cryoscope.analysis.lifetime import detector_offset_ps
from cryoscope.analysis.photons import PhotonTable
from cryoscope.analysis.report import align_apd2_delays, analyze_file
from cryoscope.analysis.summary import write_summary
from cryoscope.datafile import StageTiming, frame_timing, pair_edges
from sim_hardware.emission import LaserState, expected_g2_zero
from tests.analysis.figure_checks import layout_problems
from tests.analysis.simfiles import emitter, simulated_file


def _brute_force(t: np.ndarray, det: np.ndarray, period: int, periods: int, per: int
                 ) -> np.ndarray:
    t1, t2 = t[det == 0], t[det == 1]
    lag2 = 2 * (t2[None, :] - t1[:, None]).ravel()
    span2 = (2 * periods + 1) * period
    lag2 = lag2[(lag2 >= -span2) & (lag2 < span2)]
    return np.bincount((lag2 + span2) * per // (2 * period), minlength=(2 * periods + 1) * per)


@pytest.mark.parametrize("chunk", [1, 3, 50, 100_000])
def test_every_pair_is_counted_once_in_any_chunking(chunk: int) -> None:
    rng = np.random.default_rng(0)
    period, periods, per = 1000, 3, 10
    t = np.sort(rng.integers(0, 200_000, 3000)).astype(np.int64)
    det = rng.integers(0, 2, t.size).astype(np.int8)
    corr = G2Correlator(period, periods, per)
    for i in range(0, t.size, chunk):
        corr.feed(t[i:i + chunk], det[i:i + chunk])
    np.testing.assert_array_equal(corr.histogram.counts,
                                  _brute_force(t, det, period, periods, per))
    assert corr.photons.tolist() == [int((det == 0).sum()), int((det == 1).sum())]
    with pytest.raises(ValueError, match="time order"):
        corr.feed(t[:5], det[:5])


def _pulsed_source(rng: np.random.Generator, pulses: int, q1: float, q2: float, eta: float,
                   period: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pulse one photon (q1) or two (q2), each detected with eta on a random one of two
    APDs after an exponential 5 ns delay. g²(0) = 2·q2 / (q1 + 2·q2)²."""
    n = rng.choice(3, size=pulses, p=[1 - q1 - q2, q1, q2])
    pulse = np.repeat(np.arange(pulses, dtype=np.int64), n)
    keep = rng.random(pulse.size) < eta
    t = pulse[keep] * period + rng.exponential(5000, keep.sum()).astype(np.int64)
    det = rng.integers(0, 2, t.size).astype(np.int8)
    order = np.argsort(t, kind="stable")
    return t[order], det[order]


def test_g2_zero_of_known_photon_statistics_with_calibrated_errors() -> None:
    rng = np.random.default_rng(1)
    q1, q2, period = 0.2, 0.01, 1_000_000
    truth = 2 * q2 / (q1 + 2 * q2) ** 2
    pulls = []
    for _ in range(20):
        t, det = _pulsed_source(rng, 200_000, q1, q2, 0.5, period)
        result = g2_from_photons(t, det, period, chunk=7919)
        assert result is not None
        pulls.append((result.g2_zero - truth) / result.g2_zero_err)
    pulls_arr = np.array(pulls)
    assert abs(pulls_arr.mean()) < 3 / np.sqrt(pulls_arr.size)
    assert 0.6 < pulls_arr.std() < 1.5


def test_second_apd_offset_is_measured_and_removed() -> None:
    rng = np.random.default_rng(2)
    period, n = 1_000_000, 100_000

    def delays(offset: float) -> np.ndarray:
        tau = np.where(rng.random(n) < 0.3, 1500.0, 100_000.0)
        d = 3000 + rng.normal(0, 150, n) + rng.exponential(tau) + offset
        return np.mod(np.rint(d), period).astype(np.int64)

    d1, d2 = delays(0.0), delays(700.0)
    assert detector_offset_ps(d1, d2, period) == pytest.approx(700.0, abs=15.0)
    delay = np.concatenate([d1, d2])
    detector = np.repeat(np.array([0, 1], np.int8), n)
    stage = StageTiming(pair_edges([], []), np.zeros(1))
    table = PhotonTable(time_ps=np.arange(2 * n, dtype=np.int64), delay_ps=delay,
                        frame=np.zeros(2 * n, np.int32), theta_deg=np.zeros(2 * n),
                        moving=np.zeros(2 * n, bool), detector=detector,
                        frames=frame_timing(pair_edges([], []), stage), stage=stage,
                        laser_period_ps=period, tags=2 * n)
    aligned, offset = align_apd2_delays(table)
    assert offset == pytest.approx(700.0, abs=15.0)
    np.testing.assert_array_equal(aligned.delay_ps[:n], d1)
    np.testing.assert_array_equal(aligned.delay_ps[n:], (d2 - round(offset)) % period)


def test_g2_from_a_simulated_file_matches_the_biexciton_cascade(tmp_path: Path) -> None:
    """Two APDs behind a 50:50 splitter (``apd2 = 5``), no background or afterpulses, lifetimes
    short against the 1 µs period so the coincidence peaks do not overlap."""
    biexciton_yield = 0.2
    path, cfg = simulated_file(
        tmp_path / "g2.h5", frames=40, seed=3, channels={"apd2": 5},
        emitters=[emitter(lifetimes_ns=[1.5, 40.0])],
        sample={"background_cps": 0.0, "biexciton_yield": biexciton_yield},
        optics={"apd_afterpulsing": 0.0, "apd_dark_cps": 0.0})
    result = analyze_file(path, change_points=False)
    mean_n = LaserState(cfg.laser.repetition_rate_hz, cfg.laser.power_nw,
                        cfg.laser.wavelength_nm, True).mean_absorbed(cfg.sample)
    expected = expected_g2_zero(mean_n, biexciton_yield)
    g2 = result.g2
    assert g2 is not None
    assert g2.g2_zero_err < 0.02
    assert abs(g2.g2_zero - expected) < 3 * g2.g2_zero_err
    # Both APDs' photons are counted, split evenly, and merged into one decay.
    n2 = result.photons.n_apd2
    assert n2 == pytest.approx(result.photons.n / 2, rel=0.03)
    assert result.apd2_delay_offset_ps is not None and abs(result.apd2_delay_offset_ps) < 30
    (state,) = result.state_results
    assert state.decay is not None
    # (The fast part also holds the 0.2 ns biexciton photons: only the long decay is checked.)
    assert state.decay.taus_ns[-1] == pytest.approx(40.0, rel=0.05)
    data = json.loads(write_summary(result, tmp_path / "out").read_text())
    assert data["g2_zero"] == pytest.approx(g2.g2_zero)
    assert data["g2_zero_err"] == pytest.approx(g2.g2_zero_err)
    assert data["photons_apd2"] == n2 and data["photons"] == result.photons.n
    assert len(data["g2_peak_areas"]) == 7
    written = write_figures(result, tmp_path / "out")
    assert (tmp_path / "out" / "g2.png") in written
    assert layout_problems(g2_figure(result)) == []
