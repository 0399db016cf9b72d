"""The whole real rig (backend = "hardware") through the real drivers, down to faked vendor
boundaries: open, configure, a short polarization series into a file, close."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import h5py
import numpy as np
import pytest
from attodry_fake import FakeAttoDry
from vendor_fakes import COLUMNS, SwabianSdk, stream_buffer

from cryoscope.acquisition import RunState
from cryoscope.api import run_polarization_series
from cryoscope.backends import hardware as hardware_rig
from cryoscope.backends import open_rig
from cryoscope.config import Config, load_config
from cryoscope.datafile import open_measurement
from drivers.interfaces import Clock

LAB = Path(__file__).resolve().parents[2] / "config" / "lab.toml"
FRAMES = 4


class VirtualClock(Clock):
    """Stands in for SystemClock: sleeping advances time at once."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)


class CameraSeries:
    """The faked camera delivers one frame per poll once a series is started."""

    def __init__(self, cam: Any, lose: tuple[int, ...] = ()) -> None:
        self.cam = cam
        self.delivered = 0
        self.total = 0
        self.lose = lose  # frames lost in the camera's buffer (skipped by the SDK's read)
        cam.setup_acquisition.side_effect = self._setup
        cam.read_multiple_images.side_effect = self._read
        cam.acquisition_in_progress.side_effect = lambda: self.delivered < self.total

    def _setup(self, mode: str | None = None, nframes: int | None = None) -> None:
        self.total, self.delivered = int(nframes or 0), 0

    def _read(self, **kwargs: Any) -> tuple[Any, Any]:
        if self.delivered >= self.total:
            return [], (self.delivered, self.delivered)
        k = self.delivered
        while k in self.lose and k + 1 < self.total:
            k += 1
        self.delivered = k + 1
        frame = np.stack([np.full(COLUMNS, 100 + k), np.full(COLUMNS, 200 + k)])
        return [frame.astype(np.uint16)], (k, k + 1)


def _tag_blocks(sdk: SwabianSdk) -> list[Any]:
    """Every read of the stream returns one exposure's edges, a photon and its sync."""
    blocks = []
    for k in range(40):
        t0 = 1_000_000 * k
        blocks.append(stream_buffer([t0, t0 + 1000, t0 + 1800, t0 + 900_000],
                                    [3, 1, 2, -3]))
    sdk.stream.getData.side_effect = blocks
    return blocks


@pytest.fixture
def lab(server: FakeAttoDry, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setattr(hardware_rig, "SystemClock", VirtualClock)
    config = load_config(LAB)
    config = config.with_overrides("cryostat", host="127.0.0.1", port=server.port, timeout_s=2.0)
    return config.with_overrides("plan", frames=FRAMES, exposure_s=0.5, waveplate_dwell_s=1.0,
                                 waveplate_step_deg=5.0)


def test_polarization_series_on_the_hardware_rig(
    lab: Config, server: FakeAttoDry, motor_class: Any, camera_class: Any,
    spectrograph_class: Any, sdk: SwabianSdk, tmp_path: Path,
):
    cam = camera_class.return_value
    motor = motor_class.return_value
    spec = spectrograph_class.return_value
    cam.get_EMCCD_gain.return_value = (0, False)
    CameraSeries(cam)
    _tag_blocks(sdk)
    out = tmp_path / "particle.h5"

    with open_rig(lab) as rig:
        result = run_polarization_series(rig, out)
    assert result.state is RunState.COMPLETE

    # configuration applied through the interfaces, down to the vendor calls
    assert ("sample.setSetPoint", [4.0]) in server.calls
    assert ("sample.startTempControl", []) in server.calls
    motor.setup_kcube_trigio.assert_called_once_with(
        trig1_mode="out_in_motion", trig1_pol=1, trig2_mode="off", trig2_pol=1)
    motor.setup_velocity.assert_called_once_with(acceleration=10.0, max_velocity=10.0)
    motor.home.assert_called_once_with(sync=False, force=True)
    spec.set_grating.assert_not_called()  # already on the 600 l/mm grating
    spec.set_wavelength.assert_called_once_with(pytest.approx(580e-9))
    cam.setup_random_track_mode.assert_called_once_with([(470, 490), (530, 550)])
    cam.set_EMCCD_gain.assert_any_call(100, advanced=False)
    sdk.tagger.setConditionalFilter.assert_called_once_with(trigger=[1], filtered=[2])
    assert sdk.tagger.setTriggerLevel.call_count == 4
    sdk.tagger.setDeadtime.assert_called_once_with(1, 6000)

    # the series: camera kinetic series polled, stage stepped, tagger streamed, all stopped
    cam.setup_acquisition.assert_called_once_with(mode="kinetic", nframes=FRAMES)
    cam.wait_for_frame.assert_not_called()
    sdk.stream_class.assert_called_once_with(sdk.tagger, 4_000_000, [2, 3, -3, 4, -4, 1])
    names = [c[0] for c in sdk.manager.mock_calls]
    assert names.index("TimeTagStream") < names.index("stream.stop") < names.index(
        "freeTimeTagger")
    moves = [c.args[0] for c in motor.move_to.call_args_list]
    assert moves[0] == 0.0 and moves[1:] == [5.0 * k for k in range(1, len(moves))]
    assert mock.call.stop_acquisition() in cam.method_calls
    cam.close.assert_called_once()
    motor.close.assert_called_once()
    spec.close.assert_called_once()
    sdk.free.assert_called_once_with(sdk.tagger)

    # the file holds what the faked instruments delivered
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"
        assert f.attrs["rig_backend"] == "hardware"
        frames = f["camera/frames"][()]
        assert frames.shape == (FRAMES, 2, COLUMNS)
        assert frames[:, 0, 0].tolist() == [100, 101, 102, 103]
        assert frames[:, 1, 0].tolist() == [200, 201, 202, 203]
        assert f["spectrograph/wavelength_nm"][[0, -1]] == pytest.approx([550.0, 610.0])
        tags = f["tags/channel"][()]
        assert tags.size % 4 == 0 and tags[:4].tolist() == [3, 1, 2, -3]
        timestamps = f["tags/timestamp_ps"][()]
        assert np.all(np.diff(timestamps) > 0)


def test_a_frame_the_ixon_loses_is_recorded_not_a_traceback(
    lab: Config, server: FakeAttoDry, motor_class: Any, camera_class: Any,
    spectrograph_class: Any, sdk: SwabianSdk, tmp_path: Path,
):
    """A buffer overrun: pylablib's read skips frame 1 (missing_frame="skip"); the run goes on,
    the file says which exposure lost its frame, and every other frame keeps its exposure."""
    cam = camera_class.return_value
    cam.get_EMCCD_gain.return_value = (0, False)
    CameraSeries(cam, lose=(1,))
    _tag_blocks(sdk)
    out = tmp_path / "lost.h5"
    with open_rig(lab) as rig:
        result = run_polarization_series(rig, out)
    assert result.state is RunState.COMPLETE and result.frames == FRAMES - 1
    meas = open_measurement(out)
    assert meas.lost_frames.tolist() == [1]
    assert meas.exposure_index is not None and meas.exposure_index.tolist() == [0, 2, 3]
    assert [e.kind for e in meas.events] == ["lost_frame"]
    with h5py.File(out, "r") as f:
        assert f["camera/frames"][:, 0, 0].tolist() == [100, 102, 103]
