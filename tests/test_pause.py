"""A run paused for long (rig time) gives the numbers of a run without a pause: count rates of
the run and of its states, live and replayed traces, frame times; the photons of the pause stay
in the file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope import api
from cryoscope.acquisition import Progress, RunControl, RunEvent, RunResult, RunState
from cryoscope.analysis import AnalysisResult, analyze_file
from cryoscope.analysis.summary import summary_dict
from cryoscope.cli import main
from cryoscope.datafile import in_intervals, open_measurement, read_timing
from cryoscope.live import LiveAccumulator, replay_measurement
from tests.analysis.simfiles import emitter
from tests.spine_helpers import small_config

FRAMES = 24
PAUSE_AFTER = 10  # frames
PAUSE_S = 30.0  # rig seconds: five times the run's own time


@dataclass(frozen=True)
class Run:
    path: Path
    result: RunResult
    live: LiveAccumulator
    last_progress: Progress
    analysis: AnalysisResult


def _run(path: Path, pause: bool) -> Run:
    """One steady, never blinking emitter (the default particle's lines), the same seed with
    and without a pause of :data:`PAUSE_S` after :data:`PAUSE_AFTER` frames."""
    config = small_config(frames=FRAMES, exposure_s=0.25, waveplate_step_deg=5.0,
                          waveplate_dwell_s=1.5)
    config = config.with_overrides("sample", emitters=[emitter(biexciton_binding_mev=0.0)])
    control = RunControl()
    live = LiveAccumulator()
    progress: list[Progress] = []
    paused_at: list[float] = []
    with api.open_rig(config) as rig:

        def listen(event: RunEvent) -> None:
            if not isinstance(event, Progress):
                return
            progress.append(event)
            now = rig.clock.now()
            if pause and not paused_at and event.frames_done >= PAUSE_AFTER:
                control.request_pause()
                paused_at.append(now)
            elif control.pause_requested and now - paused_at[0] >= PAUSE_S:
                control.request_resume()

        result = api.run_polarization_series(rig, path, config.plan, control=control,
                                             listeners=[live.feed, listen])
    assert result.state is RunState.COMPLETE
    live.finish_tags()
    return Run(path, result, live, progress[-1], analyze_file(path, change_points=False))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    tmp = tmp_path_factory.mktemp("pause")
    return _run(tmp / "plain.h5", pause=False), _run(tmp / "paused.h5", pause=True)


def _sigma(rate_cps: float, seconds: float) -> float:
    """Poisson standard error of a count rate measured for ``seconds``."""
    return float(np.sqrt(rate_cps / seconds))


def test_a_pause_inflates_no_count_rate(runs: tuple[Run, Run],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    plain, paused = runs
    meas = open_measurement(paused.path)
    pauses = meas.pauses_ps
    assert pauses.shape == (1, 2) and (pauses[0, 1] - pauses[0, 0]) * 1e-12 >= PAUSE_S
    truth = plain.analysis.count_rate_cps
    tolerance = 4 * _sigma(truth, plain.analysis.duration_s) * np.sqrt(2)
    assert truth > 5_000
    # the engine's result and its last progress, the analysis and summary.json
    for rate in (paused.result.count_rate_cps, paused.last_progress.count_rate_cps,
                 paused.analysis.count_rate_cps,
                 summary_dict(paused.analysis)["count_rate_cps"]):
        assert rate == pytest.approx(truth, abs=tolerance)

    # the pause's photons stay in the file, and there are many of them
    with h5py.File(paused.path, "r") as f:
        t = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
    clicks = t[ch == meas.apd_channel]
    in_pause = int(np.count_nonzero(in_intervals(clicks, pauses)))
    assert paused.result.photons == clicks.size == paused.analysis.photons.n
    assert paused.result.paused_photons == in_pause == paused.analysis.photons.n_paused
    assert in_pause > 2 * (clicks.size - in_pause)
    # the engine and the file count the same photons in the same time
    assert paused.result.count_rate_cps == pytest.approx(paused.analysis.count_rate_cps,
                                                         rel=1e-3)
    assert summary_dict(paused.analysis)["photons_in_pauses"] == in_pause
    # cryoscope info prints the same rate
    assert main(["info", str(paused.path)]) == 0
    info = capsys.readouterr().out
    printed = re.search(r"mean APD rate\s+([\d.]+) kcps", info)
    assert printed is not None
    assert float(printed.group(1)) == pytest.approx(paused.analysis.count_rate_cps / 1e3,
                                                    abs=0.05)
    assert f"{in_pause} of them during pauses" in info


def test_a_pause_changes_no_state_count_rate(runs: tuple[Run, Run]) -> None:
    plain, paused = runs
    (state,) = paused.analysis.state_results
    (plain_state,) = plain.analysis.state_results
    exposed = state.n_frames * 0.25
    assert state.n_frames == FRAMES
    assert state.count_rate_cps == pytest.approx(
        plain_state.count_rate_cps, abs=4 * _sigma(plain_state.count_rate_cps, exposed) * 1.5)
    # a steady emitter: its rate during the exposures is the run's
    assert state.count_rate_cps == pytest.approx(paused.analysis.count_rate_cps, rel=0.03)


def test_live_and_replay_leave_the_pause_out_as_the_analysis(runs: tuple[Run, Run]) -> None:
    _, paused = runs
    meas = open_measurement(paused.path)
    pauses = meas.pauses_ps
    replay = replay_measurement(paused.path).live
    analysis = paused.analysis.trace
    for source in (paused.live, replay):
        trace = source.intensity_trace()
        assert trace is not None
        # the same bins: from the first exposure's start to the last one's end
        np.testing.assert_array_equal(trace.counts, analysis.counts)
        start_ps = analysis.start_s * 1e12
        gap = (start_ps >= pauses[0, 0]) & (start_ps + analysis.bin_s * 1e12 <= pauses[0, 1])
        assert gap.sum() * analysis.bin_s >= PAUSE_S - 1 and trace.counts[gap].sum() == 0
        decay = source.decay()
        assert decay is not None
        # the decay holds the photons of the exposures' span outside the pause
        np.testing.assert_array_equal(decay.counts, paused.analysis.decay_all.counts)
        outside = paused.analysis.photons.n - paused.analysis.photons.n_paused
        assert 100_000 < decay.counts.sum() < outside


def test_frames_keep_their_own_exposure_times_after_a_pause(runs: tuple[Run, Run]) -> None:
    _, paused = runs
    meas = open_measurement(paused.path)
    index = meas.exposure_index
    # the pause cut an exposure short: it has no frame, the frames after it keep their own
    assert index is not None and index[-1] > FRAMES - 1
    timing = read_timing(meas)[2]
    truth = (timing.start_ps - timing.start_ps[0]) * 1e-12
    replay = replay_measurement(paused.path).live
    for source in (paused.live, replay):
        spectra = source.spectral_trace()
        assert spectra is not None
        np.testing.assert_allclose(spectra.frame_start_s, truth, atol=1e-9)
    assert np.diff(truth).max() >= PAUSE_S
