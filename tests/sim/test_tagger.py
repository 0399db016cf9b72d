"""The time tagger: int64 picoseconds, falling edges as negative channels, the conditional filter,
and a finite sustained rate whose overflow is reported as the SDK reports it, into the file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from simtools import make_config


@pytest.fixture(scope="module")
def standard(measure):
    return measure(make_config(simulation={"seed": 80}), frames=8, exposure_s=0.5)


def test_tags_are_int64_ps_with_negative_falling_edges(standard) -> None:
    m = standard
    assert m.timestamps_ps.dtype == np.int64
    assert m.channels.dtype == np.int32
    assert np.all(np.diff(m.timestamps_ps) >= 0)
    assert m.tags(m.camera_fire).shape == m.tags(-m.camera_fire).shape == (8,)
    starts, ends = m.exposures_ps()
    assert np.all(ends - starts == 500_000_000_000)
    assert m.tags(m.stage_motion).shape[0] == m.tags(-m.stage_motion).shape[0]
    assert not np.any(m.channels == -m.apd)  # the APD's falling edges are not streamed


def test_conditional_filter_passes_exactly_the_next_sync_of_each_click(standard) -> None:
    m = standard
    clicks, sync = m.tags(m.apd), m.tags(m.laser_sync)
    assert np.all(sync % m.period_ps == 0)
    expected = np.unique(-(-clicks // m.period_ps) * m.period_ps)
    assert np.array_equal(sync, expected[expected <= sync[-1]])


def test_overflow_is_reported_and_recorded(measure) -> None:
    cfg = make_config(channels={"conditional_filter": False},
                      laser={"repetition_rate_hz": 2e6},
                      optics={"tagger_max_rate_hz": 1e6, "tagger_buffer_tags": 200_000},
                      simulation={"seed": 81})
    m = measure(cfg, frames=4, exposure_s=0.5)
    with h5py.File(m.path, "r") as f:
        types = f["tagger/event_type"][:]
        missed = f["tagger/event_missed"][:]
        channels = f["tagger/event_channel"][:]
        assert f["tagger"].attrs["overflows"] >= 1
        assert f["tagger"].attrs["missed_events"] == missed.sum()
    assert 2 in types  # overflow begin
    assert missed.sum() > 0.5e6  # 2 MHz of sync against 1 M tags/s for ~2 s
    assert m.laser_sync in channels[types == 4]
    # what got through is about the sustained rate
    duration_s = (m.timestamps_ps[-1] - m.timestamps_ps[0]) / 1e12
    assert m.timestamps_ps.shape[0] / duration_s == pytest.approx(1e6, rel=0.25)


def test_input_dead_time_of_the_tagger(measure) -> None:
    cfg = make_config(tagger={"apd_deadtime_ps": 200_000}, simulation={"seed": 82})
    m = measure(cfg, frames=4, exposure_s=0.5)
    clicks = m.tags(m.apd)
    assert np.diff(clicks).min() > 200_000
