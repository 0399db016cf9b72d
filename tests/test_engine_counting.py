"""The run loop's tally of a tag block: APD clicks, sync tags and edges, by channel."""

from __future__ import annotations

import numpy as np

from cryoscope.engine import _ChannelKinds


def test_tags_are_counted_by_what_their_channel_carries() -> None:
    kinds = _ChannelKinds([1, 5], sync=2, camera_fire=3, stage_motion=4)
    channels = np.array([1, 5, 5, 2, 3, -3, -3, 4, -4, 0, 7, -8, 9, -12, 1], np.int32)
    counts = kinds.count(channels)
    assert counts[_ChannelKinds.APD] == 4  # both APDs
    assert counts[_ChannelKinds.SYNC] == 1
    # rising and falling camera edges, rising and falling stage edges
    assert counts[_ChannelKinds.EDGES:].tolist() == [1, 2, 1, 1]
    # unused inputs (7), overflow entries (0) and channels beyond the configured ones: other
    assert counts[_ChannelKinds.OTHER] == 5
    assert counts.sum() == channels.shape[0]


def test_a_block_without_edges_counts_none() -> None:
    kinds = _ChannelKinds([1], sync=2, camera_fire=3, stage_motion=4)
    counts = kinds.count(np.array([1, 2, 1, 2, 2], np.int32))
    assert counts[_ChannelKinds.APD] == 2 and counts[_ChannelKinds.SYNC] == 3
    assert not counts[_ChannelKinds.EDGES:].any()
    assert kinds.count(np.empty(0, np.int32)).sum() == 0


def test_the_kind_of_each_tag() -> None:
    kinds = _ChannelKinds([1], sync=2, camera_fire=3, stage_motion=4)
    channels = np.array([1, 2, 3, -3, 4, -4, 0, 5, -30], np.int32)
    k = _ChannelKinds
    assert kinds.of(channels).tolist() == [k.APD, k.SYNC, k.EDGES, k.EDGES + 1, k.EDGES + 2,
                                           k.EDGES + 3, k.OTHER, k.OTHER, k.OTHER]
