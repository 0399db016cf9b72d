"""Autospecs of the real vendor classes, patched into the real vendor modules.

``mock.create_autospec`` copies the signatures of pylablib's ``Thorlabs.KinesisMotor``,
``Andor.AndorSDK2Camera``, ``Andor.ShamrockSpectrograph`` and of the Swabian SDK, so a call the
real class does not have (a misspelled SDK call, a wrong argument) fails the test.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest
import Swabian.TimeTagger as tt
from pylablib.devices import Andor, Thorlabs
from pylablib.devices.Andor import AndorSDK2, Shamrock
from pylablib.devices.Andor.atmcd32d_lib import TAmpModeFull
from pylablib.devices.Thorlabs import kinesis

COLUMNS, ROWS = 1024, 1000
#: The real SDK entry points, captured before any test patches them.
_SWABIAN = {name: getattr(tt, name) for name in (
    "createTimeTagger", "setUsageStatisticsStatus", "freeTimeTagger", "TimeTagStream",
    "Countrate")}
EM_30 = TAmpModeFull(0, 16, 0, "Electron Multiplying", 0, 30.0, 1, 2.0)


def patch_kinesis_motor(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A KDC101 with a homed PRM1-Z8 at 12.5 deg."""
    cls = mock.create_autospec(Thorlabs.KinesisMotor)
    motor = cls.return_value
    motor.get_scale_units.return_value = "deg"
    motor.get_status.return_value = ["connected", "homed", "enabled"]
    motor.get_position.return_value = 12.5
    motor.get_device_info.return_value = kinesis.TDeviceInfo(
        27000123, "KDC101", "3.0.10", 16, 1, 0, 1, "Brushed DC motor"
    )
    motor.get_velocity_parameters.return_value = kinesis.TVelocityParams(0.0, 10.0, 10.0)
    monkeypatch.setattr(Thorlabs, "KinesisMotor", cls)
    return cls


def patch_andor_camera(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An iXon with a 1000 x 1024 sensor, cold and stabilized, idle."""
    cls = mock.create_autospec(Andor.AndorSDK2Camera)
    cam = cls.return_value
    cam.get_all_amp_modes.return_value = [
        TAmpModeFull(0, 16, 0, "Electron Multiplying", 1, 20.0, 0, 1.0),
        EM_30,
        TAmpModeFull(0, 16, 0, "Electron Multiplying", 0, 30.0, 2, 3.0),
        TAmpModeFull(0, 16, 1, "Conventional", 0, 1.0, 0, 1.0),
    ]
    cam.get_detector_size.return_value = (COLUMNS, ROWS)
    cam.get_pixel_size.return_value = (13e-6, 13e-6)
    cam.get_temperature_status.return_value = "stabilized"
    cam.get_temperature.return_value = -80.0
    cam.get_EMCCD_gain.return_value = (100, False)
    cam.get_exposure.return_value = 0.5
    cam.acquisition_in_progress.return_value = False
    cam.get_acquisition_progress.return_value = AndorSDK2.TAcqProgress(0, 0)
    cam.get_amp_mode.return_value = EM_30
    cam.get_vsspeed_period.return_value = 0.6
    cam.is_frame_transfer_enabled.return_value = True
    cam.get_device_info.return_value = AndorSDK2.TDeviceInfo("CCI-24", "DU888_BV", 12345)
    cam.read_multiple_images.return_value = ([], (0, 0))
    monkeypatch.setattr(Andor, "AndorSDK2Camera", cls)
    return cls


def patch_shamrock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Kymera with 150, 600 and 1200 l/mm gratings, on grating 2 at 580 nm."""
    cls = mock.create_autospec(Andor.ShamrockSpectrograph)
    spec = cls.return_value
    spec.get_gratings_number.return_value = 3
    spec.get_grating.return_value = 2
    lines = {1: 150, 2: 600, 3: 1200}
    spec.get_grating_info.side_effect = lambda g=None: Shamrock.TGratingInfo(
        lines[g or 2], "500nm", 0, 0)
    spec.get_wavelength.return_value = 580e-9
    spec.get_device_info.return_value = Shamrock.TDeviceInfo("KY-328i-0042")
    spec.get_calibration.return_value = np.linspace(550e-9, 610e-9, COLUMNS)
    monkeypatch.setattr(Andor, "ShamrockSpectrograph", cls)
    return cls


def stream_buffer(timestamps: list[int], channels: list[int], types: list[int] | None = None,
                  missed: list[int] | None = None) -> Any:
    """A ``TimeTagStreamBuffer`` holding the given events."""
    buffer = mock.create_autospec(tt.TimeTagStreamBuffer, instance=True)
    n = len(timestamps)
    buffer.getTimestamps.return_value = np.array(timestamps, dtype=np.int64)
    buffer.getChannels.return_value = np.array(channels, dtype=np.int32)
    buffer.getEventTypes.return_value = np.array(types or [0] * n, dtype=np.uint8)
    buffer.getMissedEvents.return_value = np.array(missed or [0] * n, dtype=np.uint16)
    buffer.size = n
    return buffer


class SwabianSdk:
    """The SDK entry points patched on the real ``Swabian.TimeTagger`` module; ``manager``
    records every call in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tagger = mock.create_autospec(tt.TimeTagger, instance=True)
        self.tagger.getChannelList.return_value = list(range(1, 9))
        self.tagger.getModel.return_value = "Time Tagger 20"
        self.tagger.getSerial.return_value = "1740000ABC"
        self.tagger.getFirmwareVersion.return_value = "FW 4"
        self.tagger.getOverflows.return_value = 0
        self.tagger.getConditionalFilterTrigger.return_value = []
        self.tagger.setDeadtime.side_effect = lambda channel, deadtime: deadtime
        self.create = mock.create_autospec(_SWABIAN["createTimeTagger"],
                                           return_value=self.tagger)
        self.usage = mock.create_autospec(_SWABIAN["setUsageStatisticsStatus"])
        self.free = mock.create_autospec(_SWABIAN["freeTimeTagger"])
        self.stream_class = mock.create_autospec(_SWABIAN["TimeTagStream"])
        self.stream = self.stream_class.return_value
        self.stream.getData.return_value = stream_buffer([], [])
        self.countrate_class = mock.create_autospec(_SWABIAN["Countrate"])
        self.manager = mock.Mock()
        for name, value in [("createTimeTagger", self.create),
                            ("setUsageStatisticsStatus", self.usage),
                            ("freeTimeTagger", self.free), ("TimeTagStream", self.stream_class),
                            ("Countrate", self.countrate_class)]:
            monkeypatch.setattr(tt, name, value)
            self.manager.attach_mock(value, name)
        self.manager.attach_mock(self.tagger, "tagger")
        self.manager.attach_mock(self.stream, "stream")
