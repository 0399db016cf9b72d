"""Swabian Instruments Time Tagger 20 through the vendor SDK (``import Swabian.TimeTagger``).

The SDK (PyPI ``swabian-timetagger``) is imported at connect time. Usage statistics are switched
off before the tagger is opened. The time-tag stream is a ``TimeTagStream`` whose buffer holds at
most ``buffer_tags`` events; a read that returns a full buffer means tags were probably dropped
(read more often or enlarge the buffer), which is logged and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from drivers._sdk import import_sdk, require
from drivers.interfaces import (
    Identity,
    InstrumentError,
    InstrumentTimeoutError,
    SettingRejectedError,
    TagBlock,
    TagEventType,
    TaggerStatus,
    TimeTagger,
)
from drivers.limits import TIME_TAGGER_20

__all__ = ["SwabianTimeTagger"]

log = logging.getLogger(__name__)

_INSTALL = "install swabian-timetagger (the 'hardware' extra) and Swabian's USB driver"
_PS_PER_S = 10**12


class SwabianTimeTagger(TimeTagger):
    """A Time Tagger 20 (or any Swabian tagger).

    Parameters: ``serial`` (the tagger's serial; empty = the first found), ``buffer_tags``
    (stream buffer size, events), ``self_test_s`` (duration of :meth:`self_test`, s).
    """

    def __init__(self, serial: str = "", buffer_tags: int = 4_000_000,
                 self_test_s: float = 0.2) -> None:
        self.serial = serial
        self.buffer_tags = buffer_tags
        self.self_test_s = self_test_s
        self._tt: Any = None
        self._tagger: Any = None
        self._stream: Any = None
        self._streaming = False
        self._conditional_filter = False
        self.full_buffer_reads = 0

    def _dev(self) -> Any:
        return require(self.name, self._tagger)

    # -- life cycle ---------------------------------------------------------------------------

    def connect(self) -> None:
        if self._tagger is not None:
            return
        tt = import_sdk(self.name, "Swabian.TimeTagger", _INSTALL)
        tt.setUsageStatisticsStatus(tt.UsageStatisticsStatus.Disabled)
        try:
            tagger = tt.createTimeTagger(self.serial)
        except RuntimeError as exc:
            which = f"serial {self.serial}" if self.serial else "any serial"
            raise InstrumentError(
                self.name,
                f"no Time Tagger found ({which}): {str(exc).rstrip('.')}; check its USB cable "
                "and power, and that no other program holds it",
            ) from exc
        self._tt, self._tagger = tt, tagger
        self._conditional_filter = bool(list(tagger.getConditionalFilterTrigger()))
        log.info("tagger: %s %s connected", tagger.getModel(), tagger.getSerial())

    def close(self) -> None:
        tagger, self._tagger = self._tagger, None
        if tagger is None:
            return
        self.stop_stream()
        self._stream = None
        self._tt.freeTimeTagger(tagger)

    @property
    def is_connected(self) -> bool:
        return self._tagger is not None

    def identity(self) -> Identity:
        tagger = self._dev()
        return Identity(vendor="Swabian Instruments", model=str(tagger.getModel()),
                        serial=str(tagger.getSerial()), firmware=str(tagger.getFirmwareVersion()))

    # -- inputs -------------------------------------------------------------------------------

    def input_channels(self) -> Sequence[int]:
        """Physical inputs (rising-edge numbers, e.g. 1-8)."""
        tagger = self._dev()
        return [int(c) for c in tagger.getChannelList(self._tt.ChannelEdge.Rising)]

    def _check_channel(self, channel: int) -> None:
        if abs(channel) not in self.input_channels():
            raise SettingRejectedError(self.name, f"channel {channel} is not an input")

    def set_trigger_level_v(self, channel: int, level_v: float) -> None:
        """Set the trigger level (V) of input ``channel``, within the Time Tagger 20's."""
        self._check_channel(channel)
        TIME_TAGGER_20.trigger_level_v.check(self.name, level_v)
        self._dev().setTriggerLevel(abs(channel), float(level_v))

    def set_deadtime_ps(self, channel: int, deadtime_ps: int) -> None:
        """Set the dead time (ps) of ``channel``; the tagger rounds it to its clock period."""
        self._check_channel(channel)
        actual = int(self._dev().setDeadtime(channel, int(deadtime_ps)))
        if actual != deadtime_ps:
            log.info("tagger: channel %d dead time %d ps (asked %d ps)", channel, actual,
                     deadtime_ps)

    def set_conditional_filter(self, trigger: Sequence[int], filtered: Sequence[int]) -> None:
        """Pass one ``filtered`` tag after each ``trigger`` tag (e.g. sync after each APD click)."""
        self._dev().setConditionalFilter(trigger=list(trigger), filtered=list(filtered))
        self._conditional_filter = True

    def clear_conditional_filter(self) -> None:
        self._dev().clearConditionalFilter()
        self._conditional_filter = False

    # -- stream -------------------------------------------------------------------------------

    def start_stream(self, channels: Sequence[int]) -> None:
        """Start streaming ``channels`` (signed) into a buffer of ``buffer_tags`` events."""
        tagger = self._dev()
        if self._stream is not None:
            self._stream.stop()
        self._stream = self._tt.TimeTagStream(tagger, self.buffer_tags, list(channels))
        self._streaming = True
        self.full_buffer_reads = 0

    def read_block(self) -> TagBlock:
        """Everything streamed since the last read (also after :meth:`stop_stream`)."""
        require(self.name, self._tagger)
        if self._stream is None:
            return TagBlock.empty()
        buffer = self._stream.getData()
        block = TagBlock(
            timestamps_ps=np.asarray(buffer.getTimestamps(), dtype=np.int64),
            channels=np.asarray(buffer.getChannels(), dtype=np.int32),
            event_types=np.asarray(buffer.getEventTypes(), dtype=np.uint8),
            missed_events=np.asarray(buffer.getMissedEvents(), dtype=np.int32),
        )
        if int(buffer.size) >= self.buffer_tags:
            self.full_buffer_reads += 1
            log.warning("tagger: stream buffer full (%d tags): tags were probably dropped",
                        self.buffer_tags)
        if block.has_overflow:
            lost = int(block.missed_events[block.event_types == TagEventType.MISSED_EVENTS].sum())
            log.warning("tagger: overflow in the stream, %d tags missed", lost)
        return block

    def stop_stream(self) -> None:
        """Stop streaming; what was streamed stays readable with :meth:`read_block`."""
        if self._stream is not None and self._streaming:
            self._stream.stop()
        self._streaming = False

    def overflows(self) -> int:
        """Overflow count of the tagger since it was opened."""
        return int(self._dev().getOverflows())

    def status(self) -> TaggerStatus:
        return TaggerStatus(streaming=self._streaming,
                            conditional_filter=self._conditional_filter,
                            overflows=self.overflows())

    # -- self-test ----------------------------------------------------------------------------

    def self_test(self, channels: Sequence[int] | None = None,
                  duration_s: float | None = None) -> dict[int, float]:
        """Measure each input's rate (Hz) on the tagger's internal test signal.

        Connects ``channels`` (default: every input) to the test signal, counts for
        ``duration_s`` (default ``self_test_s``), disconnects the test signal and returns
        ``{channel: rate_hz}``; a healthy input reads the test-signal rate (~0.8-1 MHz).
        """
        tagger = self._dev()
        if self._streaming:
            raise SettingRejectedError(self.name, "cannot self-test while streaming")
        chans = list(channels) if channels is not None else list(self.input_channels())
        duration = self.self_test_s if duration_s is None else duration_s
        tagger.setTestSignal(chans, True)
        try:
            counter = self._tt.Countrate(tagger, chans)
            counter.startFor(int(duration * _PS_PER_S))
            if not counter.waitUntilFinished(int((duration + 5.0) * 1000)):
                raise InstrumentTimeoutError(self.name, "self-test count did not finish")
            rates = [float(r) for r in counter.getData()]
        finally:
            tagger.setTestSignal(chans, False)
        return dict(zip(chans, rates, strict=True))
