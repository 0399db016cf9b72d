"""Image readout: V and H row bands binned into spectra, from the configuration or found."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope.analysis.image import (
    bands_from_config,
    bin_bands,
    find_bands,
    mean_row_profile,
    row_profile,
)
from cryoscope.analysis.report import AnalysisResult, analyze_file
from cryoscope.analysis.summary import write_summary
from tests.analysis.simfiles import emitter, simulated_file


def _angle_diff(a: float, b: float) -> float:
    return (a - b + 90.0) % 180.0 - 90.0


def test_bands_found_in_a_noisy_row_profile() -> None:
    rng = np.random.default_rng(2)
    rows = np.arange(1024)
    upper = 900 * np.exp(-0.5 * ((rows - 300) / 2.0) ** 2)
    lower = 400 * np.exp(-0.5 * ((rows - 700) / 3.0) ** 2)
    v, h = find_bands(upper + lower + rng.normal(0, 10, rows.size))
    assert (v.name, h.name) == ("V", "H")  # V is the band at the lower rows
    # Each band holds nearly all of its replica's light, in a few σ of rows.
    assert upper[v.row_start:v.row_stop].sum() > 0.98 * upper.sum() and v.rows <= 8 * 2.0
    assert lower[h.row_start:h.row_stop].sum() > 0.95 * lower.sum() and h.rows <= 8 * 3.0
    # A cosmic ray in one of 40 frames is no band.
    frames = np.tile(upper + lower, (40, 1)) + rng.normal(0, 60, (40, rows.size))
    frames[7, 100:102] += 30_000
    v2, h2 = find_bands(mean_row_profile(frames))
    assert abs((v2.row_start + v2.row_stop - 1) / 2 - 300) <= 1
    assert abs((h2.row_start + h2.row_stop - 1) / 2 - 700) <= 1
    with pytest.raises(ValueError, match="1 band"):
        find_bands(900 * np.exp(-0.5 * ((rows - 300) / 2.0) ** 2) + rng.normal(0, 10, rows.size))


def test_configured_tracks_and_binning() -> None:
    toml = ('[camera]\nreadout = "image"\n[[camera.tracks]]\nname = "H"\nrow_start = 50\n'
            'row_stop = 60\n[[camera.tracks]]\nname = "V"\nrow_start = 10\nrow_stop = 20\n')
    v, h = bands_from_config(toml, 100)
    assert (v.name, v.row_start, v.row_stop, h.name, h.row_start, h.row_stop) == (
        "V", 10, 20, "H", 50, 60)
    assert bands_from_config(toml, 55) is None  # H does not fit a 55-row image
    assert bands_from_config("", 100) is None
    frames = np.zeros((2, 100, 8), np.uint16) + 200
    frames[:, 12, 3] += 50
    frames[1, 55, 4] += 70
    binned = bin_bands(frames, v, h)
    assert binned.shape == (2, 2, 8)
    assert binned[1, 0, 3] == 10 * 200 + 50 and binned[1, 1, 4] == 10 * 200 + 70
    profile = row_profile(frames)
    assert profile[1, 55] == 70 and profile[0, 12] == 50 and profile[0, 0] == 0


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The monomer (2.15 eV, φ = 30°, p = 0.7) in full-frame image readout, 1024 × 1024."""
    path, _ = simulated_file(tmp_path_factory.mktemp("img") / "image.h5", frames=40, seed=21,
                             # no biexciton binding: the line model has no biexciton line
                             emitters=[emitter(dipole_angle_deg=30.0, biexciton_binding_mev=0.0)],
                             camera={"readout": "image"})
    return path


@pytest.fixture(scope="module")
def image_result(image_file: Path) -> AnalysisResult:
    return analyze_file(image_file, change_points=False)


def _check_physics(result: AnalysisResult) -> None:
    (line,) = result.lines
    assert abs(line.zpl_ev - 2.15) < 0.5e-3
    assert line.replica_weights[0] == pytest.approx(0.15, abs=0.03)
    pol = line.polarization
    assert pol is not None
    assert abs(_angle_diff(pol.phi_deg, 30.0)) < max(5.0, 3 * pol.phi_err_deg)
    assert pol.p == pytest.approx(0.7, abs=max(0.05, 3 * pol.p_err))
    # The simulated optics transmit H at 0.9 of V.
    assert pol.gain_ratio == pytest.approx(1 / 0.9, rel=0.05)
    (state,) = result.state_results
    assert state.decay is not None and state.decay.taus_ns[-1] == pytest.approx(100.0, rel=0.05)


def test_image_readout_with_the_configured_tracks(image_result: AnalysisResult,
                                                   tmp_path: Path) -> None:
    bands = image_result.image_bands
    assert bands is not None and bands.source == "config"
    assert (bands.v.row_start, bands.v.row_stop, bands.h.row_start, bands.h.row_stop) == (
        470, 490, 530, 550)
    assert bands.captured > 0.99
    _check_physics(image_result)
    data = json.loads(write_summary(image_result, tmp_path).read_text())
    assert data["readout"] == "image"
    assert data["image_rows"]["v"] == [470, 490] and data["image_rows"]["source"] == "config"


def test_image_readout_finds_the_bands_without_a_configuration(image_file: Path,
                                                                tmp_path: Path) -> None:
    bare = tmp_path / "bare.h5"
    bare.write_bytes(image_file.read_bytes())
    with h5py.File(bare, "a") as h5:
        del h5.attrs["config_toml"]
    result = analyze_file(bare, change_points=False)
    bands = result.image_bands
    assert bands is not None and bands.source == "profile"
    # The simulated replicas are centered on rows 480 (V) and 540 (H), σ = 2 rows.
    assert bands.v.row_start <= 476 and bands.v.row_stop >= 485 and bands.v.rows <= 16
    assert bands.h.row_start <= 536 and bands.h.row_stop >= 545 and bands.h.rows <= 16
    assert bands.captured > 0.97
    _check_physics(result)
