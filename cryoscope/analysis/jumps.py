"""Spectral jumps of each center between consecutive frames, classified (paper Fig. 4 c–g).

A center jumps in frame k when it is seen in frames k − 1 and k and either its line changes or
its peak moves by more than ``jump_mev``. Kinds: ``charging`` (X → X*), ``discharging``
(X* → X), ``surface_charge`` (another line of the same charge: a surface charge moved),
``diffusion`` (the same line moved). Jumps of different centers within ``window_frames`` frames
are one event of both centers at once (its frame the earlier one); its ``kind`` joins the
centers' kinds with ``+`` in the order of its ``centers``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["JUMP_KINDS", "Jump", "find_jumps"]

JUMP_KINDS = ("charging", "discharging", "surface_charge", "diffusion")


@dataclass(frozen=True)
class Jump:
    """One jump event: a center, or several at once."""

    frame: int
    time_s: float  #: start of the frame's exposure after the first exposure's (s)
    centers: tuple[int, ...]
    shifts_mev: tuple[float, ...]  #: peak energy change of each center (meV)
    kinds: tuple[str, ...]  #: kind of each center's jump (JUMP_KINDS)

    @property
    def kind(self) -> str:
        """The centers' kinds joined by ``+``."""
        return "+".join(self.kinds)


def _kind(before: str, after: str, same_line: bool) -> str:
    if before == after:
        return "diffusion" if same_line else "surface_charge"
    return "charging" if after == "X*" else "discharging"


def find_jumps(frame_line: np.ndarray, frame_energy_ev: np.ndarray,
               line_charge: tuple[str, ...], frame_time_s: np.ndarray, *,
               jump_mev: float = 2.0, window_frames: int = 1) -> tuple[Jump, ...]:
    """Jumps of every center (``frame_line``/``frame_energy_ev`` ``[frames, centers]``, line −1
    and energy NaN when dark; ``line_charge`` the charge of each line)."""
    single: list[tuple[int, int, float, str]] = []
    for c in range(frame_line.shape[1]):
        line = frame_line[:, c]
        seen = line >= 0
        both = np.flatnonzero(seen[1:] & seen[:-1]) + 1
        shift = (frame_energy_ev[both, c] - frame_energy_ev[both - 1, c]) * 1000.0
        changed = line[both] != line[both - 1]
        for k, s, ch in zip(both.tolist(), shift.tolist(), changed.tolist(), strict=True):
            if ch or abs(s) > jump_mev:
                kind = _kind(line_charge[line[k - 1]], line_charge[line[k]], not ch)
                single.append((k, c, s, kind))
    single.sort()
    used = [False] * len(single)
    out = []
    t0 = float(frame_time_s[0]) if frame_time_s.size else 0.0
    for i, (k, c, s, kind) in enumerate(single):
        if used[i]:
            continue
        used[i] = True
        group = [(c, s, kind)]
        frame = k
        for j in range(i + 1, len(single)):
            k2, c2, s2, kind2 = single[j]
            if k2 - k > window_frames:
                break
            if not used[j] and c2 not in [g[0] for g in group]:
                used[j] = True
                group.append((c2, s2, kind2))
        group.sort()
        out.append(Jump(frame=frame, time_s=float(frame_time_s[frame]) - t0,
                        centers=tuple(g[0] for g in group),
                        shifts_mev=tuple(g[1] for g in group),
                        kinds=tuple(g[2] for g in group)))
    return tuple(out)
