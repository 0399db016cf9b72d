"""Which of a center's peaks make its lines (constructed peak tables with known lines): chance
peaks of stray light join no line, so no line's window reaches out to them, while a line's own
spectral-diffusion jumps and a trion's shifted frames stay in their lines."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscope.analysis.centers import _split_lines

NEUTRAL_MEV = 2150.0
TRION_MEV = 2135.0
#: Mean photon delay of a frame (ns): neutral exciton (long component) and trion.
NEUTRAL_DELAY_NS, TRION_DELAY_NS = 60.0, 6.0


class Table:
    """Peaks of one center: energy (meV), photons, frame delay (ns) and the true line of each
    (0 neutral, 1 trion, −1 chance peak)."""

    def __init__(self) -> None:
        self.e: list[np.ndarray] = []
        self.photons: list[np.ndarray] = []
        self.delay: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []

    def add(self, e_mev: np.ndarray, photons: np.ndarray, line: int) -> None:
        self.e.append(np.asarray(e_mev, float))
        self.photons.append(np.asarray(photons, float))
        delay = TRION_DELAY_NS if line == 1 else NEUTRAL_DELAY_NS
        self.delay.append(np.full(np.size(e_mev), delay))
        self.truth.append(np.full(np.size(e_mev), line))

    def split(self) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """Energies, line of each peak, charges of the lines, true line of each peak."""
        e = np.concatenate(self.e)
        label, charges = _split_lines(e, np.concatenate(self.photons), np.concatenate(self.delay))
        return e, label, charges, np.concatenate(self.truth)


def _blinking_dot(rng: np.random.Generator, neutral: int = 280, charged: int = 120) -> Table:
    """A dot without spectral diffusion: neutral line, trion 15 meV red at 0.4 of its photons,
    and frames shared with a switch (a part of the exposure's photons, at the line's energy)."""
    table = Table()
    table.add(NEUTRAL_MEV + rng.normal(0, 0.03, neutral), rng.normal(5000, 150, neutral), 0)
    table.add(TRION_MEV + rng.normal(0, 0.03, charged), rng.normal(2000, 90, charged), 1)
    table.add(NEUTRAL_MEV + rng.normal(0, 0.05, 10), rng.uniform(200, 3000, 10), 0)
    return table


def _line_of(label: np.ndarray, truth: np.ndarray, line: int) -> int:
    """The found line of all the peaks of true line ``line`` (they must share one)."""
    found = np.unique(label[truth == line])
    assert found.size == 1 and found[0] >= 0, found
    return int(found[0])


@pytest.mark.parametrize("seed", range(5))
def test_chance_peaks_join_no_line(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = _blinking_dot(rng)
    # chance peaks of stray light and EMCCD noise: a few photons anywhere on the sensor, 3 meV or
    # more from both lines (blue and red of them, in the trion's range too)
    e = rng.uniform(2080.0, 2200.0, 400)
    e = e[(np.abs(e - NEUTRAL_MEV) > 3.0) & (np.abs(e - TRION_MEV) > 3.0)][:8]
    e[0] = NEUTRAL_MEV + 17.7  # the chance peak of `cryoscope run --seed 4`
    e[1] = NEUTRAL_MEV - 12.0  # where a trion would be
    table.add(e, rng.uniform(4.0, 12.0, e.size), -1)
    energy, label, charges, truth = table.split()
    assert np.all(label[truth == -1] == -1)
    neutral, trion = _line_of(label, truth, 0), _line_of(label, truth, 1)
    assert (charges[neutral], charges[trion]) == ("X", "X*") and len(charges) == 2
    # each line's peaks (its window) lie where the dot emits it
    for line, true_mev in ((neutral, NEUTRAL_MEV), (trion, TRION_MEV)):
        assert np.all(np.abs(energy[label == line] - true_mev) < 0.5)


def test_a_trion_of_a_few_frames_does_not_stretch_the_neutral_line() -> None:
    rng = np.random.default_rng(11)
    table = Table()
    table.add(NEUTRAL_MEV + rng.normal(0, 0.03, 397), rng.normal(5000, 150, 397), 0)
    table.add(TRION_MEV + rng.normal(0, 0.03, 3), rng.normal(2000, 90, 3), 1)
    energy, label, charges, truth = table.split()
    neutral = _line_of(label, truth, 0)
    assert charges == ["X"]
    # three frames are too few for a line of their own, and 15 meV is out of the neutral line's
    # reach: they are in no line instead of stretching the neutral line's window by 15 meV
    assert np.all(label[truth == 1] == -1)
    assert np.ptp(energy[label == neutral]) < 0.5


@pytest.mark.parametrize("case", ["diffusing", "stable_jump", "shifted_trion"])
def test_a_lines_own_jumps_stay_in_it(case: str) -> None:
    rng = np.random.default_rng(5)
    table = Table()
    if case == "diffusing":
        # discrete spectral-diffusion jumps (1 meV rms, every 10 frames), and two frames at a
        # 4 meV excursion: within the reach of the line's diffusion
        offsets = np.repeat(np.clip(rng.normal(0, 1.0, 28), -2.5, 2.5), 10)
        table.add(NEUTRAL_MEV + offsets + rng.normal(0, 0.03, offsets.size),
                  rng.normal(5000, 150, offsets.size), 0)
        table.add(NEUTRAL_MEV + 4.0 + rng.normal(0, 0.03, 2), rng.normal(5000, 150, 2), 0)
    else:
        table.add(NEUTRAL_MEV + rng.normal(0, 0.03, 280), rng.normal(5000, 150, 280), 0)
    if case == "stable_jump":
        # a steady line jumps by 4.5 meV for three frames: a line of one charge within 5 meV
        table.add(NEUTRAL_MEV + 4.5 + rng.normal(0, 0.03, 3), rng.normal(5000, 150, 3), 0)
    table.add(TRION_MEV + rng.normal(0, 0.03, 117), rng.normal(2000, 90, 117), 1)
    if case == "shifted_trion":
        # the trion 3.5 meV off its usual energy for three frames (a charge nearby): still X*
        table.add(TRION_MEV + 3.5 + rng.normal(0, 0.03, 3), rng.normal(2000, 90, 3), 1)
    _, label, charges, truth = table.split()
    neutral, trion = _line_of(label, truth, 0), _line_of(label, truth, 1)
    assert (charges[neutral], charges[trion]) == ("X", "X*") and len(charges) == 2
    assert np.all(label >= 0)
