"""States of a particle as configurations: per frame, which line (or none) each center shows.

A state is the tuple of every center's line in a frame (``-1``: the center is dark), so the
neutral and charged lines of a center and their surface-charge variants make different states,
while spectral diffusion inside a line does not. Tuples seen in fewer than ``MIN_STATE_FRAMES``
frames or ``MIN_STATE_SHARE`` of them join the most frequent state with the same configuration
(``X`` / ``X*`` / ``dark`` per center). States are numbered by brightness (mean photons of their
frames' peaks), 0 brightest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryoscope.analysis.centers import CONFIGURATIONS, CenterMap

__all__ = ["ConfigurationStates", "configuration_states"]

#: A line tuple seen in fewer frames than this, or than this share of the frames, is no state of
#: its own (when a state of the same configuration exists).
MIN_STATE_FRAMES = 3
MIN_STATE_SHARE = 0.02


@dataclass(frozen=True)
class ConfigurationStates:
    """Frames grouped by configuration."""

    labels: np.ndarray  #: int [frames], state of each frame
    lines: tuple[tuple[int, ...], ...]  #: per state, each center's line (−1: dark)
    configuration: np.ndarray  #: int [states, centers], index into CONFIGURATIONS

    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self.lines)

    def names(self, state: int) -> tuple[str, ...]:
        """Configuration of each center in ``state`` (``X``, ``X*`` or ``dark``)."""
        return tuple(CONFIGURATIONS[int(c)] for c in self.configuration[state])


def configuration_states(cmap: CenterMap) -> ConfigurationStates:
    """The states of a center map (see the module docstring)."""
    frame_line = cmap.frame_line
    n_frames = frame_line.shape[0]
    config = cmap.configuration
    if frame_line.shape[1] == 0:
        return ConfigurationStates(np.zeros(n_frames, int), ((),), np.zeros((1, 0), int))
    keys, inverse, counts = np.unique(frame_line, axis=0, return_inverse=True,
                                      return_counts=True)
    inverse = inverse.reshape(-1)
    key_config = np.array([config[np.flatnonzero(inverse == i)[0]] for i in range(len(keys))])
    rare = counts < max(MIN_STATE_FRAMES, MIN_STATE_SHARE * n_frames)
    target = np.arange(len(keys))
    for i in np.flatnonzero(rare):
        same = np.flatnonzero(~rare & np.all(key_config == key_config[i], axis=1))
        if same.size:
            target[i] = same[np.argmax(counts[same])]
    label = target[inverse]
    used = np.unique(label)
    photons = np.zeros(n_frames)
    np.add.at(photons, cmap.peaks.frame, cmap.peaks.photons)
    brightness = np.array([photons[label == u].mean() for u in used])
    order = used[np.argsort(-brightness, kind="stable")]
    remap = np.zeros(len(keys), int)
    remap[order] = np.arange(order.size)
    return ConfigurationStates(labels=remap[label],
                               lines=tuple(tuple(int(x) for x in keys[u]) for u in order),
                               configuration=key_config[order])
