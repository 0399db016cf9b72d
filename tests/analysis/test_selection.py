"""The shared photon selection of live views and file analysis: run window, overflow intervals,
the second APD's merge."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscope.analysis.lifetime import decay_histogram
from cryoscope.analysis.selection import (
    DECAY_BIN_PS,
    Apd2Offset,
    RunDecay,
    aligned_delays,
    run_window,
)
from cryoscope.datafile import (
    OPEN_PS,
    StageTiming,
    frame_timing,
    overflow_intervals,
    pair_edges,
)
from drivers.interfaces import TagEventType

BEGIN, END = TagEventType.OVERFLOW_BEGIN, TagEventType.OVERFLOW_END


def test_overflow_intervals_pair_begin_and_end_and_an_open_one_ends_at_the_last_tag() -> None:
    types = [BEGIN, END, TagEventType.MISSED_EVENTS, BEGIN]
    times = [100, 200, 250, 300]
    np.testing.assert_array_equal(overflow_intervals(types, times, 450),
                                  [[100, 200], [300, 450]])
    # the stream goes on: still open
    np.testing.assert_array_equal(overflow_intervals(types, times, None),
                                  [[100, 200], [300, OPEN_PS]])
    assert overflow_intervals([], [], None).shape == (0, 2)


def test_the_run_window_spans_the_stored_frames_and_leaves_gaps_out() -> None:
    # exposures 0..3 of 100 ps every 200 ps; exposure 0's frame was lost, exposure 3 has none
    # (cut short by the stop)
    rise = np.array([0, 200, 400, 600])
    exposures = pair_edges(rise, rise + 100)
    frames = frame_timing(exposures, StageTiming(pair_edges([], []), np.zeros(1)),
                          np.array([1, 2]))
    window = run_window(frames, [[250, 260]], [[420, 450], [440, 460]])
    assert window is not None
    assert (window.start_ps, window.stop_ps) == (200, 500)
    np.testing.assert_array_equal(window.gaps_ps, [[250, 260], [420, 460]])
    t = np.array([50, 199, 200, 255, 260, 419, 459, 460, 499, 500, 650])
    assert window.contains(t).tolist() == [False, False, True, False, True, True, False, True,
                                           True, False, False]
    assert window.trace_bins(100e-12) == 3
    no_frame = frame_timing(exposures, StageTiming(pair_edges([], []), np.zeros(1)),
                            np.zeros(0, np.int64))
    assert run_window(no_frame, [], []) is None


def test_the_run_decay_merges_the_second_apd_shifted_by_an_offset_given_when_read() -> None:
    rng = np.random.default_rng(4)
    period, n = 1_000_000, 200_000
    detector = (rng.random(n) < 0.5).astype(np.int8)
    offset = np.where(detector == 1, 700, 0)
    tau = np.where(rng.random(n) < 0.3, 1500.0, 100_000.0)
    delay = np.mod(np.rint(3000 + offset + rng.normal(0, 150, n) + rng.exponential(tau)),
                   period).astype(np.int64)
    delay[::97] = -1  # no sync
    decay = RunDecay(period, two_apds=True)
    for part in np.array_split(np.arange(n), 7):
        decay.add(delay[part], detector[part])
    at_once = RunDecay(period, two_apds=True)  # many photons at once: counted another way
    at_once.add(delay, detector)
    measured = Apd2Offset(period)
    measured.add(delay, detector)
    found = measured.offset_ps()
    assert found == pytest.approx(700.0, abs=20.0)
    for shift in (None, found, -333.0):
        expected = decay_histogram(aligned_delays(delay, detector, period, shift), period,
                                   DECAY_BIN_PS)
        np.testing.assert_array_equal(decay.histogram(shift).counts, expected.counts)
        np.testing.assert_array_equal(at_once.histogram(shift).counts, expected.counts)
    assert decay.photons == np.count_nonzero(delay >= 0)
    # one APD: nothing kept per picosecond
    single = RunDecay(period, two_apds=False)
    single.add(delay, np.zeros(n, np.int8))
    np.testing.assert_array_equal(single.histogram().counts,
                                  decay_histogram(delay, period, DECAY_BIN_PS).counts)


def test_too_few_photons_on_an_apd_give_no_offset() -> None:
    measured = Apd2Offset(1_000_000)
    measured.add(np.full(50_000, 3000, np.int64), np.zeros(50_000, np.int8))
    assert measured.offset_ps() is None
