"""Live views (fed block by block by the run engine), their replay from the file and
``analyze_file`` count the same photons: trace, decay of the whole run and FLID are equal, count
for count, in runs whose time tagger overflows (an injected burst, and a throughput limit that
lets tags through inside its overflows) with one and with two APDs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope import api
from cryoscope.analysis import AnalysisResult, analyze_file
from cryoscope.datafile import in_intervals, open_measurement, read_timing
from cryoscope.live import LiveAccumulator, replay_measurement
from tests.analysis.simfiles import emitter
from tests.spine_helpers import small_config

#: The tagger passes this many tags per second (its buffer: TAGGER_BUFFER tags): the particle's
#: bright spells (two tags a click, with the conditional filter) overflow it, its dark spells
#: let it recover.
TAGGER_RATE = 30_000
TAGGER_BUFFER = 10_000


@dataclass(frozen=True)
class Run:
    path: Path
    live: LiveAccumulator
    analysis: AnalysisResult


def _run(path: Path, apd2: int | None) -> Run:
    config = small_config(frames=24, exposure_s=0.25, waveplate_step_deg=5.0,
                          waveplate_dwell_s=1.5)
    config = config.with_overrides(
        "sample", emitters=[emitter(dark_rate_hz=1.0, dark_recovery_rate_hz=1.0)])
    config = config.with_overrides("optics", tagger_max_rate_hz=TAGGER_RATE,
                                   tagger_buffer_tags=TAGGER_BUFFER)
    config = config.with_overrides(
        "simulation", seed=5, faults=[{"instrument": "tagger", "kind": "overflow", "at_s": 2.0}])
    if apd2 is not None:
        config = config.with_overrides("channels", apd2=apd2)
    live = LiveAccumulator()
    api.measure(path, config, listeners=[live.feed])
    live.finish_tags()
    return Run(path, live, analyze_file(path, change_points=False))


@pytest.fixture(scope="module", params=[None, 5], ids=["one APD", "two APDs"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = tmp_path_factory.mktemp("live_analysis") / "run.h5"
    return _run(path, request.param)


def _counted(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The file's APD clicks (both APDs): time, whether it arrived from the first frame's
    exposure start to the last frame's exposure end, whether it is inside an overflow."""
    meas = open_measurement(path)
    with h5py.File(path, "r") as f:
        t = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
    clicks = t[np.isin(ch, [meas.apd_channel, meas.apd2_channel or meas.apd_channel])]
    frames = read_timing(meas)[2]
    in_exposures = (clicks >= frames.start_ps[0]) & (clicks < frames.stop_ps[-1])
    return clicks, in_exposures, in_intervals(clicks, meas.overflows_ps)


def test_the_runs_overflow_with_clicks_inside(run: Run) -> None:
    meas = open_measurement(run.path)
    assert meas.overflows_ps.shape[0] >= 2  # the injected burst, and the throughput limit's
    assert meas.pauses_ps.shape[0] == 0
    _, in_exposures, overflow = _counted(run.path)
    # clicks the analysis leaves out: in overflows, and before or after the frames' exposures
    assert np.count_nonzero(in_exposures & overflow) > 1000
    assert np.count_nonzero(~in_exposures) > 1000
    assert np.count_nonzero(in_exposures & ~overflow) > 20_000
    if meas.apd2_channel is not None:
        assert run.analysis.photons.n_apd2 == pytest.approx(run.analysis.photons.n / 2, rel=0.05)
        assert run.analysis.apd2_delay_offset_ps is not None


def test_live_and_replay_show_the_analysis_trace_decay_and_flid(run: Run) -> None:
    analysis = run.analysis
    _, in_exposures, overflow = _counted(run.path)
    assert int(analysis.trace.counts.sum()) == np.count_nonzero(in_exposures & ~overflow)
    replay = replay_measurement(run.path)
    for name, source in (("live", run.live), ("replay", replay.live)):
        trace = source.intensity_trace()
        decay = source.decay()
        flid = source.flid()
        assert trace is not None and decay is not None and flid is not None, name
        np.testing.assert_array_equal(trace.counts, analysis.trace.counts, err_msg=name)
        np.testing.assert_allclose(trace.start_s + analysis.trace.start_s[0],
                                   analysis.trace.start_s, rtol=0, atol=1e-9, err_msg=name)
        np.testing.assert_array_equal(decay.counts, analysis.decay_all.counts, err_msg=name)
        np.testing.assert_array_equal(flid.flid.counts, analysis.flid.counts, err_msg=name)
    # replay fits the decay as the analysis does
    assert replay.decay_fit is not None and analysis.decay_all_fit is not None
    assert replay.decay_fit.taus_ns == pytest.approx(analysis.decay_all_fit.taus_ns)


def test_per_state_photons_and_decays_leave_the_overflows_out(run: Run) -> None:
    """A state's photons and decay are the clicks of its frames' exposures outside the tagger's
    overflows, as for the trace, decay and FLID."""
    clicks, _, overflow = _counted(run.path)
    frames = read_timing(open_measurement(run.path))[2]
    k = np.searchsorted(frames.start_ps, clicks, side="right") - 1
    exposed = (k >= 0) & (clicks < frames.stop_ps[np.clip(k, 0, None)])
    labels = run.analysis.states.labels
    state_of_click = np.where(exposed, labels[np.clip(k, 0, None)], -1)
    counted = (state_of_click >= 0) & ~overflow
    assert np.count_nonzero((state_of_click >= 0) & overflow) > 1000  # there is something to leave
    photons = [s.photons for s in run.analysis.state_results]
    assert photons == [np.count_nonzero(counted & (state_of_click == sid))
                       for sid in range(len(photons))]
    for state in run.analysis.state_results:  # the decays: those of them with a delay
        assert 0.99 * state.photons <= state.histogram.counts.sum() <= state.photons
