"""The Swabian Time Tagger driver against autospecs of the real SDK classes."""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest
import Swabian.TimeTagger as tt

from drivers.interfaces import (
    InstrumentError,
    NotConnectedError,
    SettingRejectedError,
    TagEventType,
)
from drivers.swabian import SwabianTimeTagger


def _buffer(timestamps: list[int], channels: list[int], types: list[int] | None = None,
            missed: list[int] | None = None) -> Any:
    buffer = mock.create_autospec(tt.TimeTagStreamBuffer, instance=True)
    n = len(timestamps)
    buffer.getTimestamps.return_value = np.array(timestamps, dtype=np.int64)
    buffer.getChannels.return_value = np.array(channels, dtype=np.int32)
    buffer.getEventTypes.return_value = np.array(types or [0] * n, dtype=np.uint8)
    buffer.getMissedEvents.return_value = np.array(missed or [0] * n, dtype=np.uint16)
    buffer.size = n
    return buffer


class Sdk:
    """The SDK entry points patched on the real ``Swabian.TimeTagger`` module."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tagger = mock.create_autospec(tt.TimeTagger, instance=True)
        self.tagger.getChannelList.return_value = list(range(1, 9))
        self.tagger.getModel.return_value = "Time Tagger 20"
        self.tagger.getSerial.return_value = "1740000ABC"
        self.tagger.getFirmwareVersion.return_value = "FW 4"
        self.tagger.getOverflows.return_value = 0
        self.tagger.setDeadtime.side_effect = lambda channel, deadtime: deadtime
        self.create = mock.create_autospec(tt.createTimeTagger, return_value=self.tagger)
        self.usage = mock.create_autospec(tt.setUsageStatisticsStatus)
        self.free = mock.create_autospec(tt.freeTimeTagger)
        self.stream_class = mock.create_autospec(tt.TimeTagStream)
        self.stream = self.stream_class.return_value
        self.countrate_class = mock.create_autospec(tt.Countrate)
        self.manager = mock.Mock()
        for name, value in [("createTimeTagger", self.create),
                            ("setUsageStatisticsStatus", self.usage),
                            ("freeTimeTagger", self.free), ("TimeTagStream", self.stream_class),
                            ("Countrate", self.countrate_class)]:
            monkeypatch.setattr(tt, name, value)
            self.manager.attach_mock(value, name)
        self.manager.attach_mock(self.tagger, "tagger")
        self.manager.attach_mock(self.stream, "stream")


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> Sdk:
    return Sdk(monkeypatch)


def test_connect_disables_usage_statistics_first(sdk: Sdk):
    with SwabianTimeTagger(serial="1740000ABC") as tagger:
        identity = tagger.identity()
    assert sdk.manager.mock_calls[:2] == [
        mock.call.setUsageStatisticsStatus(tt.UsageStatisticsStatus.Disabled),
        mock.call.createTimeTagger("1740000ABC"),
    ]
    assert (identity.vendor, identity.model, identity.serial) == (
        "Swabian Instruments", "Time Tagger 20", "1740000ABC")
    sdk.free.assert_called_once_with(sdk.tagger)


def test_inputs_levels_deadtime(sdk: Sdk):
    with SwabianTimeTagger() as tagger:
        assert list(tagger.input_channels()) == list(range(1, 9))
        sdk.tagger.getChannelList.assert_called_with(tt.ChannelEdge.Rising)
        tagger.set_trigger_level_v(1, 0.5)
        tagger.set_trigger_level_v(-3, 0.7)
        tagger.set_deadtime_ps(1, 6000)
        with pytest.raises(SettingRejectedError, match="channel 9 is not an input"):
            tagger.set_trigger_level_v(9, 0.5)
    assert sdk.tagger.setTriggerLevel.call_args_list == [mock.call(1, 0.5), mock.call(3, 0.7)]
    sdk.tagger.setDeadtime.assert_called_once_with(1, 6000)


def test_polarization_series_stream_sequence(sdk: Sdk):
    sdk.stream.getData.side_effect = [
        _buffer([100, 1_000_100, 1_000_150], [1, 2, 3]),
        _buffer([], []),
        _buffer([2_000_000, 2_000_500, 2_001_000], [1, 0, 0], types=[0, 2, 3]),
        _buffer([3_000_000, 3_000_010], [4, 2], types=[4, 0], missed=[17, 0]),
        _buffer([4_000_000], [-3]),
    ]
    with SwabianTimeTagger(buffer_tags=1000) as tagger:
        tagger.set_conditional_filter(trigger=[1], filtered=[2])
        assert tagger.status().conditional_filter is True
        tagger.start_stream([1, 2, 3, -3, 4, -4])
        blocks = [tagger.read_block() for _ in range(4)]
        tagger.stop_stream()
        blocks.append(tagger.read_block())
        assert tagger.status().streaming is False
        tagger.clear_conditional_filter()
    assert [len(b) for b in blocks] == [3, 0, 3, 2, 1]
    assert blocks[0].timestamps_ps.dtype == np.int64
    assert blocks[0].channels.tolist() == [1, 2, 3]
    assert blocks[0].event_types.dtype == np.uint8
    assert not blocks[0].has_overflow and blocks[2].has_overflow
    assert blocks[2].event_types.tolist() == [0, TagEventType.OVERFLOW_BEGIN,
                                              TagEventType.OVERFLOW_END]
    assert blocks[3].missed_events.dtype == np.int32
    assert blocks[3].missed_events.tolist() == [17, 0]
    assert blocks[4].channels.tolist() == [-3]
    sdk.stream_class.assert_called_once_with(sdk.tagger, 1000, [1, 2, 3, -3, 4, -4])
    names = [c[0] for c in sdk.manager.mock_calls]
    assert names[names.index("tagger.setConditionalFilter"):] == [
        "tagger.setConditionalFilter", "tagger.getOverflows", "TimeTagStream",
        "stream.getData", "stream.getData", "stream.getData", "stream.getData",
        "stream.stop", "stream.getData", "tagger.getOverflows",
        "tagger.clearConditionalFilter", "freeTimeTagger",
    ]
    sdk.tagger.setConditionalFilter.assert_called_once_with(trigger=[1], filtered=[2])


def test_full_buffer_is_counted(sdk: Sdk):
    sdk.stream.getData.return_value = _buffer(list(range(10)), [1] * 10)
    with SwabianTimeTagger(buffer_tags=10) as tagger:
        tagger.start_stream([1])
        tagger.read_block()
        assert tagger.full_buffer_reads == 1
        sdk.tagger.getOverflows.return_value = 3
        assert tagger.status().overflows == 3


def test_self_test_measures_rates_and_switches_the_test_signal_off(sdk: Sdk):
    counter = sdk.countrate_class.return_value
    counter.waitUntilFinished.return_value = True
    counter.getData.return_value = np.array([800_000.0, 799_950.0])
    with SwabianTimeTagger(self_test_s=0.5) as tagger:
        rates = tagger.self_test([1, 2])
    assert rates == {1: 800_000.0, 2: 799_950.0}
    sdk.countrate_class.assert_called_once_with(sdk.tagger, [1, 2])
    counter.startFor.assert_called_once_with(500_000_000_000)
    assert sdk.tagger.setTestSignal.call_args_list == [
        mock.call([1, 2], True), mock.call([1, 2], False)]


def test_self_test_refused_while_streaming(sdk: Sdk):
    with SwabianTimeTagger() as tagger:
        tagger.start_stream([1])
        with pytest.raises(SettingRejectedError, match="while streaming"):
            tagger.self_test()


def test_no_device_is_one_line(sdk: Sdk):
    sdk.create.side_effect = RuntimeError("No Time Tagger found.")
    with pytest.raises(InstrumentError) as err:
        SwabianTimeTagger().connect()
    assert str(err.value).startswith("tagger: no Time Tagger found (any serial)")
    assert "\n" not in str(err.value)


def test_not_connected():
    tagger = SwabianTimeTagger()
    with pytest.raises(NotConnectedError):
        tagger.read_block()
    tagger.close()
