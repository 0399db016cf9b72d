"""The Swabian Time Tagger driver against autospecs of the real SDK classes."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import Swabian.TimeTagger as tt
from vendor_fakes import SwabianSdk, stream_buffer

from drivers.interfaces import (
    InstrumentError,
    NotConnectedError,
    SettingRejectedError,
    TagEventType,
)
from drivers.swabian import SwabianTimeTagger


def test_connect_disables_usage_statistics_first(sdk: SwabianSdk):
    with SwabianTimeTagger(serial="1740000ABC") as tagger:
        identity = tagger.identity()
    assert sdk.manager.mock_calls[:2] == [
        mock.call.setUsageStatisticsStatus(tt.UsageStatisticsStatus.Disabled),
        mock.call.createTimeTagger("1740000ABC"),
    ]
    assert (identity.vendor, identity.model, identity.serial) == (
        "Swabian Instruments", "Time Tagger 20", "1740000ABC")
    sdk.free.assert_called_once_with(sdk.tagger)


def test_inputs_levels_deadtime(sdk: SwabianSdk):
    with SwabianTimeTagger() as tagger:
        assert list(tagger.input_channels()) == list(range(1, 9))
        sdk.tagger.getChannelList.assert_called_with(tt.ChannelEdge.Rising)
        tagger.set_trigger_level_v(1, 0.5)
        tagger.set_trigger_level_v(-3, 0.7)
        tagger.set_deadtime_ps(1, 6000)
        with pytest.raises(SettingRejectedError, match="channel 9 is not an input"):
            tagger.set_trigger_level_v(9, 0.5)
        with pytest.raises(SettingRejectedError, match=r"trigger level 3 V is outside 0-2.5 V"):
            tagger.set_trigger_level_v(2, 3.0)
    assert sdk.tagger.setTriggerLevel.call_args_list == [mock.call(1, 0.5), mock.call(3, 0.7)]
    sdk.tagger.setDeadtime.assert_called_once_with(1, 6000)


def test_polarization_series_stream_sequence(sdk: SwabianSdk):
    sdk.stream.getData.side_effect = [
        stream_buffer([100, 1_000_100, 1_000_150], [1, 2, 3]),
        stream_buffer([], []),
        stream_buffer([2_000_000, 2_000_500, 2_001_000], [1, 0, 0], types=[0, 2, 3]),
        stream_buffer([3_000_000, 3_000_010], [4, 2], types=[4, 0], missed=[17, 0]),
        stream_buffer([4_000_000], [-3]),
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


def test_full_buffer_is_counted(sdk: SwabianSdk):
    sdk.stream.getData.return_value = stream_buffer(list(range(10)), [1] * 10)
    with SwabianTimeTagger(buffer_tags=10) as tagger:
        tagger.start_stream([1])
        tagger.read_block()
        assert tagger.full_buffer_reads == 1
        sdk.tagger.getOverflows.return_value = 3
        assert tagger.status().overflows == 3


def test_self_test_measures_rates_and_switches_the_test_signal_off(sdk: SwabianSdk):
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


def test_self_test_refused_while_streaming(sdk: SwabianSdk):
    with SwabianTimeTagger() as tagger:
        tagger.start_stream([1])
        with pytest.raises(SettingRejectedError, match="while streaming"):
            tagger.self_test()


def test_no_device_is_one_line(sdk: SwabianSdk):
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
