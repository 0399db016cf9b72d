"""Andor camera and spectrograph against autospecs of pylablib's real classes."""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest
from pylablib.devices import Andor
from pylablib.devices.Andor import AndorSDK2
from vendor_fakes import COLUMNS, ROWS

from drivers.andor import AndorCamera, AndorSpectrograph
from drivers.interfaces import (
    CoolingStatus,
    InstrumentError,
    InstrumentTimeoutError,
    ReadMode,
    Readout,
    SdkMissingError,
    SettingRejectedError,
    Track,
)

TWO_TRACKS = Readout(ReadMode.TRACKS, (Track("V", 470, 490), Track("H", 530, 550)))


def _frames(first: int, count: int, tracks: int = 2) -> list[np.ndarray]:
    return [np.full((tracks, COLUMNS), first + k, dtype=np.uint16) for k in range(count)]


@pytest.fixture
def camera(camera_class: Any) -> Any:
    dev = AndorCamera(index=0, temperature_c=-80.0, readout_rate_mhz=30.0)
    dev.connect()
    yield dev
    dev.close()


def test_connect_configures_em_amplifier_frame_transfer_and_trigger(camera_class: Any):
    with AndorCamera(index=1, temperature_c=-75.0, readout_rate_mhz=30.0) as dev:
        camera_class.assert_called_once_with(idx=1, temperature=-75.0, fan_mode="full")
        cam = camera_class.return_value
        cam.set_amp_mode.assert_called_once_with(0, 0, 0, 1)
        cam.enable_frame_transfer_mode.assert_called_once_with(True)
        cam.set_trigger_mode.assert_called_once_with("int")
        assert dev.sensor_shape() == (ROWS, COLUMNS)
        assert dev.pixel_width_um() == pytest.approx(13.0)
        identity = dev.identity()
        assert (identity.model, identity.serial) == ("DU888_BV", "12345")
        assert dev.readout_settings() == {
            "amplifier": "Electron Multiplying", "rate_mhz": 30.0, "preamp_gain": 2.0,
            "vertical_shift_us": 0.6, "frame_transfer": "on",
        }
    assert cam.method_calls[-3:] == [
        mock.call.stop_acquisition(), mock.call.set_EMCCD_gain(0, advanced=False), mock.call.close()
    ]


def test_cooling_with_status(camera: AndorCamera, camera_class: Any):
    cam = camera_class.return_value
    camera.set_cooling(True, setpoint_c=-85.0)
    cam.set_temperature.assert_called_once_with(-85.0, enable_cooler=True)
    cam.get_temperature_status.return_value = "not_reached"
    assert camera.cooling_status() is CoolingStatus.NOT_REACHED
    camera.set_cooling(False)
    assert cam.method_calls[-2:] == [
        mock.call.set_EMCCD_gain(0, advanced=False), mock.call.set_cooler(False)
    ]


def test_em_gain_guards(camera: AndorCamera, camera_class: Any):
    cam = camera_class.return_value
    with pytest.raises(SettingRejectedError, match="exceeds 300: it needs advanced mode"):
        camera.set_em_gain(301)
    camera.set_em_gain(300)
    cam.set_EMCCD_gain.assert_called_with(300, advanced=False)
    camera.set_em_gain(500, advanced=True)
    cam.set_EMCCD_gain.assert_called_with(500, advanced=True)
    cam.get_temperature_status.return_value = "not_reached"
    cam.get_temperature.return_value = -12.5
    cam.set_EMCCD_gain.reset_mock()
    with pytest.raises(SettingRejectedError,
                       match=r"no EM gain before the sensor is cold \(cooling is not_reached"):
        camera.set_em_gain(100)
    cam.set_EMCCD_gain.assert_not_called()
    camera.set_em_gain(0)
    cam.set_EMCCD_gain.assert_called_once_with(0, advanced=False)


def test_two_track_readout_uses_random_tracks(camera: AndorCamera, camera_class: Any):
    cam = camera_class.return_value
    camera.set_readout(TWO_TRACKS)
    cam.set_read_mode.assert_called_with("random_track")
    cam.setup_random_track_mode.assert_called_once_with([(470, 490), (530, 550)])
    assert camera.readout() == TWO_TRACKS
    camera.set_readout(Readout(ReadMode.IMAGE))
    assert cam.setup_image_mode.call_count == 2  # at connect and now
    overlapping = Readout(ReadMode.TRACKS, (Track("H", 530, 550), Track("V", 470, 540)))
    with pytest.raises(SettingRejectedError, match="ascending, non-overlapping"):
        camera.set_readout(overlapping)
    beyond = Readout(ReadMode.TRACKS, (Track("V", 990, 1010),))
    with pytest.raises(SettingRejectedError, match="1000-row sensor"):
        camera.set_readout(beyond)


def test_polarization_series_call_sequence(camera: AndorCamera, camera_class: Any):
    cam = camera_class.return_value
    cam.read_multiple_images.side_effect = [
        ([], (0, 0)),
        (_frames(0, 2), (0, 2)),
        ([], (2, 2)),
        (_frames(2, 1), (2, 3)),
        (None, None),
    ]
    cam.reset_mock()
    camera.set_readout(TWO_TRACKS)
    camera.set_exposure_s(0.5)
    camera.set_em_gain(100)
    camera.start_series(3)
    blocks = [camera.read_new_frames() for _ in range(5)]
    camera.stop_series()

    assert [len(b) for b in blocks] == [0, 2, 0, 1, 0]
    assert [b.first_index for b in blocks] == [0, 0, 2, 2, 3]
    assert blocks[0].frames.shape == (0, 2, COLUMNS)
    assert blocks[1].frames.dtype == np.uint16
    assert blocks[1].frames.shape == (2, 2, COLUMNS)
    assert blocks[3].frames[0, 0, 0] == 2
    names = [c[0] for c in cam.method_calls]
    assert names[names.index("setup_acquisition"):] == [
        "setup_acquisition", "start_acquisition",
        *["read_multiple_images"] * 5, "stop_acquisition",
    ]
    cam.setup_acquisition.assert_called_once_with(mode="kinetic", nframes=3)
    cam.read_multiple_images.assert_called_with(missing_frame="skip", return_rng=True)
    cam.wait_for_frame.assert_not_called()


def test_lost_frames_keep_their_index(camera: AndorCamera, camera_class: Any):
    cam = camera_class.return_value
    camera.set_readout(TWO_TRACKS)
    camera.start_series(10)
    cam.read_multiple_images.return_value = (_frames(4, 2), (4, 6))
    block = camera.read_new_frames()
    assert (block.first_index, len(block)) == (4, 2)
    assert block.lost == (0, 1, 2, 3)


def test_status_and_errors(camera: AndorCamera, camera_class: Any):
    cam = camera_class.return_value
    cam.acquisition_in_progress.return_value = True
    cam.get_acquisition_progress.return_value = AndorSDK2.TAcqProgress(7, 0)
    assert camera.status().as_dict() == {
        "temperature_c": -80.0, "cooling": CoolingStatus.STABILIZED, "em_gain": 100,
        "exposure_s": 0.5, "acquiring": True, "frames_acquired": 7,
    }
    cam.start_acquisition.side_effect = Andor.AndorTimeoutError("no response")
    with pytest.raises(InstrumentTimeoutError, match="camera: starting a series"):
        camera.start_series(5)
    cam.set_exposure.side_effect = Andor.AndorError("DRV_P1INVALID")
    with pytest.raises(InstrumentError, match="DRV_P1INVALID"):
        camera.set_exposure_s(2.0)


def test_values_outside_the_declared_ranges_never_reach_the_sdk(
    camera: AndorCamera, camera_class: Any
):
    cam = camera_class.return_value
    cam.reset_mock()
    refused = [
        (lambda: camera.set_exposure_s(1e-6), r"exposure 1e-06 s is outside 1e-05-3600 s"),
        (lambda: camera.set_exposure_s(-1.0), r"exposure -1 s is outside"),
        (lambda: camera.set_cooling(True, setpoint_c=30.0),
         r"cooling setpoint 30 °C is outside -100-20 °C"),
        (lambda: camera.set_em_gain(-1), r"EM gain -1 is outside 0-1000"),
        (lambda: camera.start_series(10**9), r"series length 1000000000 frames is outside"),
        (lambda: camera.start_series(0), r"series length 0 frames is outside"),
    ]
    for call, message in refused:
        with pytest.raises(SettingRejectedError, match=message):
            call()
    assert cam.method_calls == []


def test_missing_andor_library_is_one_line(monkeypatch: pytest.MonkeyPatch):
    failing = mock.create_autospec(Andor.AndorSDK2Camera,
                                   side_effect=OSError("atmcd64d.dll not found"))
    monkeypatch.setattr(Andor, "AndorSDK2Camera", failing)
    with pytest.raises(SdkMissingError) as err:
        AndorCamera().connect()
    assert str(err.value).startswith("camera: cannot load the Andor camera library atmcd64d.dll")
    assert "\n" not in str(err.value)


def test_on_linux_pylablib_fails_cleanly():
    """Without the patch: the real pylablib class on this machine (no Andor DLL)."""
    with pytest.raises(SdkMissingError, match="install Andor SDK2 or Solis"):
        AndorCamera().connect()
    with pytest.raises(SdkMissingError, match="spectrograph: cannot load"):
        AndorSpectrograph().connect()


# -- spectrograph -----------------------------------------------------------------------------


def test_spectrograph_gratings_wavelength_and_calibration(spectrograph_class: Any):
    spec = spectrograph_class.return_value
    with AndorSpectrograph(index=0) as dev:
        spectrograph_class.assert_called_once_with(idx=0)
        assert [(g.index, g.lines_per_mm) for g in dev.gratings()] == [
            (1, 150.0), (2, 600.0), (3, 1200.0)]
        dev.set_grating(3)
        spec.set_grating.assert_called_once_with(3)
        with pytest.raises(SettingRejectedError, match="grating 4 is not in 1-3"):
            dev.set_grating(4)
        dev.set_center_wavelength_nm(600.0)
        spec.set_wavelength.assert_called_once_with(pytest.approx(600e-9))
        assert dev.center_wavelength_nm() == pytest.approx(580.0)
        calibration = dev.wavelength_calibration_nm(COLUMNS, 13.0)
        spec.set_number_pixels.assert_called_once_with(COLUMNS)
        spec.set_pixel_width.assert_called_once_with(pytest.approx(13e-6))
        assert calibration.shape == (COLUMNS,)
        assert calibration[[0, -1]] == pytest.approx([550.0, 610.0])
        assert dev.status().as_dict() == {
            "grating": 2, "lines_per_mm": 600.0, "center_wavelength_nm": pytest.approx(580.0)}
        assert dev.identity().serial == "KY-328i-0042"
        with pytest.raises(InstrumentError, match="calibration has 1024 values for 512 pixels"):
            dev.wavelength_calibration_nm(512, 26.0)
    spec.close.assert_called_once()


def test_calibration_from_the_camera(spectrograph_class: Any, camera: AndorCamera,
                                     camera_class: Any):
    spec = spectrograph_class.return_value
    with AndorSpectrograph() as dev:
        calibration = dev.wavelength_calibration_from_camera(camera)
    spec.setup_pixels_from_camera.assert_called_once_with(camera_class.return_value)
    assert calibration.shape == (COLUMNS,)
