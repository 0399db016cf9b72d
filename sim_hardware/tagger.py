"""Simulated Swabian Time Tagger 20.

It sees the edges the bench puts on its inputs (APD clicks, camera Fire, stage in-motion) and the
laser's sync output, which it derives from the laser's pulse train. With the conditional filter
(``trigger=[apd], filtered=[sync]``) each APD click lets exactly the *next* sync tag through.
Each APD input applies its own dead time (``set_deadtime_ps``) on top of the APD's.
Beyond its sustained throughput the stream overflows, reported as the SDK reports it: an
overflow-begin event, missed-events counts per channel, an overflow-end event.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from drivers.interfaces import (
    InstrumentError,
    SettingRejectedError,
    TagBlock,
    TagEventType,
    TaggerStatus,
    TimeTagger,
)
from drivers.limits import TIME_TAGGER_20
from sim_hardware.base import SimInstrument
from sim_hardware.bench import Bench, dead_time_keep
from sim_hardware.faults import drop_in_bursts
from sim_hardware.units import PS_PER_S

INPUTS = tuple(range(int(TIME_TAGGER_20.inputs.low), int(TIME_TAGGER_20.inputs.high) + 1))


class SimTimeTagger(SimInstrument, TimeTagger):
    model = "Time Tagger 20"

    def __init__(self, bench: Bench) -> None:
        super().__init__(bench)
        self._levels = dict.fromkeys(INPUTS, 0.5)
        self._deadtimes = dict.fromkeys(INPUTS, 6000)
        self._last_tag_ps: dict[int, int] = {}
        self._filter: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self._channels: frozenset[int] | None = None
        self._wanted = np.zeros(2 * len(INPUTS) + 1, bool)
        self._read_until_ps = 0
        self._deferred_sync = np.empty(0, np.int64)
        self._backlog = 0.0
        self._overflowing = False
        self._overflows = 0

    def input_channels(self) -> Sequence[int]:
        return INPUTS

    def _check_input(self, channel: int) -> None:
        if abs(channel) not in INPUTS:
            raise SettingRejectedError(self.name, f"no input {channel} (inputs are 1-8)")

    def set_trigger_level_v(self, channel: int, level_v: float) -> None:
        self._require()
        self._check_input(channel)
        TIME_TAGGER_20.trigger_level_v.check(self.name, level_v)
        self._levels[abs(channel)] = level_v

    def set_deadtime_ps(self, channel: int, deadtime_ps: int) -> None:
        self._require()
        self._check_input(channel)
        self._deadtimes[abs(channel)] = max(int(deadtime_ps), 2000)

    def set_conditional_filter(self, trigger: Sequence[int], filtered: Sequence[int]) -> None:
        self._require()
        for ch in (*trigger, *filtered):
            self._check_input(ch)
        self._filter = (tuple(trigger), tuple(filtered))

    def clear_conditional_filter(self) -> None:
        self._require()
        self._filter = None

    def start_stream(self, channels: Sequence[int]) -> None:
        self._require()
        if self._channels is not None:
            raise InstrumentError(self.name, "a stream is already running")
        for ch in channels:
            self._check_input(ch)
        self._bench.release_edges()  # what happened before the stream is not recorded
        self._channels = frozenset(channels)
        self._wanted = np.zeros(2 * len(INPUTS) + 1, bool)
        self._wanted[np.asarray(list(channels)) + len(INPUTS)] = True
        self._read_until_ps = self._bench.now_ps
        self._deferred_sync = np.empty(0, np.int64)
        self._bench.tagger_listening = True

    def stop_stream(self) -> None:
        if self._channels is None:
            return
        self._channels = None
        self._bench.tagger_listening = False

    def close(self) -> None:
        self.stop_stream()
        super().close()

    def _sync_tags(self, t: npt.NDArray[np.int64], ch: npt.NDArray[np.int32],
                   start: int, end: int) -> npt.NDArray[np.int64]:
        """Sync tags in ``[start, end)``: all pulses, or the filtered next-after-click ones."""
        laser, sync = self._bench.laser, self._bench.wiring.laser_sync
        if not laser.emission_on:
            return np.empty(0, np.int64)
        period = laser.period_ps
        if self._filter is not None and sync in self._filter[1]:
            trigger = np.zeros(ch.shape, bool)
            for channel in self._filter[0]:
                trigger |= ch == channel
            nxt = np.concatenate([self._deferred_sync, -(-t[trigger] // period) * period])
            if nxt.size > 1:
                nxt = nxt[np.concatenate([[True], nxt[1:] != nxt[:-1]])]
            due = nxt < end
            self._deferred_sync = nxt[~due]
            return nxt[due]
        first = -(-start // period)
        return np.arange(first, -(-end // period), dtype=np.int64) * period

    def read_block(self) -> TagBlock:
        self._require()
        if self._channels is None:
            return TagBlock.empty()
        start, end = self._read_until_ps, self._bench.now_ps
        self._read_until_ps = end
        t, ch = self._input_dead_time(*self._bench.release_edges())
        sync = self._sync_tags(t, ch, start, end)
        t = np.concatenate([t, sync])
        ch = np.concatenate([ch, np.full(sync.shape, self._bench.wiring.laser_sync, np.int32)])
        wanted = self._wanted[ch + len(INPUTS)]
        if not wanted.all():
            t, ch = t[wanted], ch[wanted]
        order = np.argsort(t, kind="stable")
        t, ch = t[order], ch[order]
        bursts = self._faults.overflow_bursts()
        if bursts:
            t, ch, events = drop_in_bursts(t, ch, bursts, start, end)
            if events:
                self._overflows += sum(e[2] == TagEventType.OVERFLOW_BEGIN for e in events)
                block = self._throttle(t, ch, start, end)
                return _with_events(block.timestamps_ps, block.channels, block.event_types,
                                    block.missed_events, events)
        return self._throttle(t, ch, start, end)

    def _input_dead_time(self, t: npt.NDArray[np.int64], ch: npt.NDArray[np.int32],
                         ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """The inputs' own dead time (``set_deadtime_ps``) on the APD inputs, the only signals
        fast enough for it to matter (the sync is a regular pulse train). It only bites when it
        is longer than the APD's own dead time, which already spaces the clicks."""
        w = self._bench.wiring
        apd_dead_ps = self._bench.params.optics.apd_dead_time_ns * 1e3
        slower = [channel for channel in (w.apd, w.apd2)
                  if channel is not None and self._deadtimes[channel] >= apd_dead_ps]
        if not slower:
            return t, ch
        keep = np.ones(t.shape[0], bool)
        for channel in slower:
            sel = np.flatnonzero(ch == channel)
            if not sel.shape[0]:
                continue
            ok = dead_time_keep(t[sel], self._last_tag_ps.get(channel),
                                self._deadtimes[channel])
            keep[sel[~ok]] = False
            if ok.any():
                self._last_tag_ps[channel] = int(t[sel[ok]][-1])
        return (t, ch) if keep.all() else (t[keep], ch[keep])

    def _throttle(self, t: npt.NDArray[np.int64], ch: npt.NDArray[np.int32], start: int,
                  end: int) -> TagBlock:
        """Model the finite USB throughput: tags beyond it are lost in an overflow."""
        capacity = self._bench.params.optics.tagger_max_rate_hz * (end - start) / PS_PER_S
        self._backlog = max(0.0, self._backlog + t.shape[0] - capacity)
        types = np.zeros(t.shape, np.uint8)
        missed = np.zeros(t.shape, np.int32)
        buffer_tags = self._bench.params.optics.tagger_buffer_tags
        if self._backlog <= buffer_tags:
            if self._overflowing:
                self._overflowing = False
                end_event = (start, 0, TagEventType.OVERFLOW_END, 0)
                return _with_events(t, ch, types, missed, [end_event])
            return TagBlock(t, ch, types, missed)
        lost = int(self._backlog - buffer_tags)
        self._backlog = float(buffer_tags)
        keep = t.shape[0] - min(lost, t.shape[0])
        dropped_ch, counts = np.unique(ch[keep:], return_counts=True)
        events = [(int(t[keep]) if keep < t.shape[0] else end, 0,
                   TagEventType.OVERFLOW_BEGIN, 0)] if not self._overflowing else []
        self._overflowing = True
        self._overflows += 0 if not events else 1
        events += [(end, int(c), TagEventType.MISSED_EVENTS, int(n))
                   for c, n in zip(dropped_ch, counts, strict=True)]
        return _with_events(t[:keep], ch[:keep], types[:keep], missed[:keep], events)

    def status(self) -> TaggerStatus:
        self._require()
        return TaggerStatus(self._channels is not None, self._filter is not None,
                            self._overflows)


def _with_events(t: npt.NDArray[np.int64], ch: npt.NDArray[np.int32],
                 types: npt.NDArray[np.uint8], missed: npt.NDArray[np.int32],
                 events: list[tuple[int, int, TagEventType, int]]) -> TagBlock:
    if not events:
        return TagBlock(t, ch, types, missed)
    et, ech, etype, emiss = (np.array(x) for x in zip(*events, strict=True))
    t = np.concatenate([t, et.astype(np.int64)])
    order = np.argsort(t, kind="stable")
    return TagBlock(t[order], np.concatenate([ch, ech.astype(np.int32)])[order],
                    np.concatenate([types, etype.astype(np.uint8)])[order],
                    np.concatenate([missed, emiss.astype(np.int32)])[order])
