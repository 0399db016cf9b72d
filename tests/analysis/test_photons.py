"""Photon bookkeeping against a hand-built tag stream with known delays, frames and angles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryoscope.analysis.photons import (
    PhotonBookkeeper,
    PhotonPasses,
    iter_photons,
    photon_table_from_tags,
)
from cryoscope.datafile import (
    StageTiming,
    open_measurement,
    pair_edges,
    rest_angles,
    stage_angle_at,
)
from tests.analysis.simfiles import simulated_file

PERIOD = 1_000_000
APD, SYNC, CAM, STAGE, APD2 = 1, 2, 3, 4, 5


def _stream(conditional: bool, seed: int = 0):
    """Photons at known pulse/delay, 3 frames, 2 stage moves; returns tags and the truth."""
    rng = np.random.default_rng(seed)
    n_pulses = 20_000
    pulses = np.sort(rng.choice(np.arange(1, n_pulses - 1), 3000, replace=False))
    delay = rng.integers(1_000, 900_000, pulses.size)
    t_ph = pulses * PERIOD + delay
    t_sync = (pulses + 1) * PERIOD if conditional else np.arange(n_pulses) * PERIOD
    frames = [(2_000_000_000, 6_000_000_000), (6_500_000_000, 10_000_000_000),
              (12_000_000_000, 16_000_000_000)]
    moves = [(5_000_000_000, 7_000_000_000), (14_000_000_000, 15_000_000_000)]
    tags = [(t_ph, APD), (t_sync, SYNC),
            (np.array([f[0] for f in frames]), CAM), (np.array([f[1] for f in frames]), -CAM),
            (np.array([m[0] for m in moves]), STAGE), (np.array([m[1] for m in moves]), -STAGE)]
    ts = np.concatenate([t for t, _ in tags]).astype(np.int64)
    ch = np.concatenate([np.full(len(t), c, np.int32) for t, c in tags])
    order = np.lexsort((ch, ts))
    frame_truth = np.full(t_ph.size, -1)
    for k, (a, b) in enumerate(frames):
        frame_truth[(t_ph >= a) & (t_ph < b)] = k
    moving_truth = np.zeros(t_ph.size, bool)
    for a, b in moves:
        moving_truth |= (t_ph >= a) & (t_ph < b)
    return ts[order], ch[order], delay, frame_truth, moving_truth, t_ph, moves


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("chunk", [7, 1000, 10_000_000])
def test_delay_frame_and_motion_of_every_photon(conditional: bool, chunk: int) -> None:
    ts, ch, delay, frame, moving, t_ph, moves = _stream(conditional)
    rest = rest_angles(10.0, np.array([15.0, 20.0]), np.array([15.0, 20.0]), zero_deg=4.0)
    table = photon_table_from_tags(ts, ch, apd=APD, laser_sync=SYNC, camera_fire=CAM,
                                   stage_motion=STAGE, conditional_filter=conditional,
                                   laser_period_ps=PERIOD, rest_deg=rest, chunk_tags=chunk)
    assert table.n == t_ph.size
    np.testing.assert_array_equal(table.time_ps, t_ph)
    np.testing.assert_array_equal(table.delay_ps, delay)
    np.testing.assert_array_equal(table.frame, frame)
    np.testing.assert_array_equal(table.moving, moving)
    # θ = stage − zero: 6° before the first move, 11° between, 16° after; linear while moving.
    still = ~moving
    before = t_ph < moves[0][0]
    between = (t_ph >= moves[0][1]) & (t_ph < moves[1][0])
    after = t_ph >= moves[1][1]
    assert np.all(table.theta_deg[still & before] == 6.0)
    assert np.all(table.theta_deg[still & between] == 11.0)
    assert np.all(table.theta_deg[still & after] == 16.0)
    mid = moving & (t_ph < moves[0][1])
    expected = 6.0 + 5.0 * (t_ph[mid] - moves[0][0]) / (moves[0][1] - moves[0][0])
    np.testing.assert_allclose(table.theta_deg[mid], expected)
    np.testing.assert_array_equal(table.frames.start_ps, [2e9, 6.5e9, 12e9])
    np.testing.assert_array_equal(table.frames.moving, [True, True, True])
    # Frame 2 is centred on the start of move 2: still at 11°.
    np.testing.assert_allclose(table.frames.theta_deg, [6.0, 11.0, 11.0], atol=1e-9)


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("chunk", [5, 10_000_000])
def test_second_apd_photons_are_booked_and_marked(conditional: bool, chunk: int) -> None:
    """Half the photons on a second APD input: same delays and frames, detector 1."""
    ts, ch, delay, frame, moving, t_ph, _ = _stream(conditional, seed=3)
    on_apd2 = np.random.default_rng(4).random(t_ph.size) < 0.5
    photon_tags = np.flatnonzero(ch == APD)  # in time order, like t_ph
    ch = ch.copy()
    ch[photon_tags[on_apd2]] = APD2
    rest = rest_angles(10.0, np.array([15.0, 20.0]), np.array([15.0, 20.0]), zero_deg=4.0)
    kwargs = dict(apd=APD, laser_sync=SYNC, camera_fire=CAM, stage_motion=STAGE,
                  conditional_filter=conditional, laser_period_ps=PERIOD, rest_deg=rest,
                  chunk_tags=chunk)
    table = photon_table_from_tags(ts, ch, apd2=APD2, **kwargs)
    np.testing.assert_array_equal(table.time_ps, t_ph)
    np.testing.assert_array_equal(table.delay_ps, delay)
    np.testing.assert_array_equal(table.frame, frame)
    np.testing.assert_array_equal(table.moving, moving)
    np.testing.assert_array_equal(table.from_apd2, on_apd2)
    # Without apd2 the second APD's tags are not photons.
    single = photon_table_from_tags(ts, ch, **kwargs)
    np.testing.assert_array_equal(single.time_ps, t_ph[~on_apd2])
    assert not single.from_apd2.any()


def test_photon_without_its_sync_is_flagged_not_dropped() -> None:
    book = PhotonBookkeeper(APD, SYNC, CAM, STAGE, True, PERIOD)
    first = book.feed(np.array([100, 200_000], np.int64), np.array([APD, SYNC], np.int32))
    assert first.delay_ps.tolist() == [PERIOD - 199_900]
    # A photon at the end of a chunk waits for the sync in the next chunk...
    waiting = book.feed(np.array([300_000], np.int64), np.array([APD], np.int32))
    assert waiting.time_ps.size == 0
    done = book.feed(np.array([1_200_000, 1_500_000], np.int64),
                     np.array([SYNC, APD], np.int32), last=True)
    # ...and the last photon, with no sync after it, comes out with delay -1.
    assert done.time_ps.tolist() == [300_000, 1_500_000]
    assert done.delay_ps.tolist() == [PERIOD - 900_000, -1]


def test_stage_angle_interpolates_and_holds() -> None:
    rest = np.array([0.0, 5.0, 10.0])
    stage = StageTiming(pair_edges([100, 300], [200, 350]), rest)
    theta, moving = stage_angle_at(np.array([0, 150, 250, 400]), stage)
    np.testing.assert_allclose(theta, [0.0, 2.5, 5.0, 10.0])
    assert moving.tolist() == [False, True, False, False]


def test_exposure_cut_short_by_the_end_of_the_run() -> None:
    """A run aborted mid-exposure leaves a rising camera edge without its falling edge."""
    ts = np.array([100, 200, 1_000, 1_500, 2_000, 2_500], np.int64)
    ch = np.array([CAM, APD, -CAM, SYNC, CAM, APD], np.int32)
    table = photon_table_from_tags(ts, ch, apd=APD, laser_sync=SYNC, camera_fire=CAM,
                                   stage_motion=STAGE, conditional_filter=False,
                                   laser_period_ps=PERIOD, rest_deg=np.array([0.0]))
    # the second photon is in the unfinished exposure 1, which has no frame
    assert table.frame.tolist() == [0, -1]
    assert table.delay_ps.tolist() == [-1, 1_000]
    assert table.frames.n == 1
    assert table.frames.theta_deg.shape == table.frames.moving.shape == (1,)


@pytest.mark.parametrize(("budget", "reads"), [(1 << 30, 1), (0, 3), (100_000, 3)],
                         ids=["kept", "no-cache", "too-big-to-keep"])
def test_passes_give_every_photon_each_time_and_read_the_file_once_when_it_fits(
        tmp_path: Path, budget: int, reads: int) -> None:
    path, _ = simulated_file(tmp_path / "m.h5", emitters=[], frames=6, seed=3)
    meas = open_measurement(path)
    reference = list(iter_photons(meas, chunk_tags=20_000))
    assert len(reference) > 3 and sum(c.n for c in reference) > 20_000
    passes = PhotonPasses(meas, chunk_tags=20_000, cache_bytes=budget)
    for _ in range(3):
        chunks = list(passes)
        assert len(chunks) == len(reference)
        for got, want in zip(chunks, reference, strict=True):
            np.testing.assert_array_equal(got.time_ps, want.time_ps)
            np.testing.assert_array_equal(got.delay_ps, want.delay_ps)
            np.testing.assert_array_equal(got.frame, want.frame)
    assert passes.reads == reads
