"""analyze_file, summary.json and the ``analyze`` command on an exactly known synthetic file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope.analysis.figures import overview_figure, tracking_figure
from cryoscope.analysis.mapping_figure import mapping_figure
from cryoscope.analysis.report import AnalysisResult, analyze_file
from cryoscope.analysis.summary import write_summary
from cryoscope.analyze.cli import register
from tests.analysis.figure_checks import layout_problems
from tests.analysis.synthetic import SyntheticRun, blinking_states, write_synthetic


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(3)
    states = blinking_states(80, 1, rng, p_switch=0.15, allowed=(0, 1, 2))
    path = tmp_path_factory.mktemp("syn") / "mono.h5"
    write_synthetic(path, SyntheticRun(frames=80, frame_state=states, dwell_s=2.5))
    return path, states[:, 0]


@pytest.fixture(scope="module")
def result(synthetic: tuple[Path, np.ndarray]) -> AnalysisResult:
    return analyze_file(synthetic[0])


def test_states_lifetimes_and_lines(result: AnalysisResult, synthetic: tuple[Path, np.ndarray]
                                    ) -> None:
    truth = synthetic[1]
    labels = result.states.labels
    by_state = {int(np.bincount(truth[labels == s.id], minlength=3).argmax()): s
                for s in result.state_results}
    agree = sum(np.bincount(truth[labels == s]).max() for s in range(result.states.n_states))
    assert agree / truth.size >= 0.95
    neutral, trion, dark = by_state[0], by_state[1], by_state[2]
    assert neutral.decay is not None and trion.decay is not None and dark.decay is None
    np.testing.assert_allclose(neutral.decay.taus_ns, [1.5, 100.0], rtol=0.05)
    assert trion.decay.taus_ns == pytest.approx((6.0,), rel=0.05)
    assert neutral.count_rate_cps == pytest.approx(20000 + 200, rel=0.03)
    assert dark.count_rate_cps == pytest.approx(200, rel=0.3)
    assert neutral.zpl_ev == pytest.approx((2.15,), abs=0.3e-3)
    assert trion.zpl_ev == pytest.approx((2.135,), abs=0.3e-3)
    assert result.spectra.cosmic_rays == 3


def test_summary_contract(result: AnalysisResult, tmp_path: Path) -> None:
    path = write_summary(result, tmp_path / "out")
    data = json.loads(path.read_text())
    assert data["format"] == "cryoscope.summary" and data["version"] == 1
    assert data["frames"] == 80
    assert data["photons"] == result.photons.n
    assert data["count_rate_cps"] == pytest.approx(data["photons"] / data["duration_s"])
    assert {round(ln["zpl_ev"], 3) for ln in data["lines"]} == {2.15, 2.135}
    for line in data["lines"]:
        assert {"zpl_ev", "fwhm_mev", "polarization_degree", "dipole_angle_deg",
                "dipole_angle_err_deg"} <= line.keys()
    assert sum(s["fraction"] for s in data["states"]) == pytest.approx(1.0)
    # One APD, track readout: no g², no second APD, no image rows.
    assert data["readout"] == "tracks" and data["image_rows"] is None
    for key in ("g2_zero", "g2_zero_err", "g2_peak_areas", "photons_apd2",
                "apd2_delay_offset_ps"):
        assert data[key] is None, key
    for state in data["states"]:
        assert {"id", "fraction", "count_rate_cps", "lifetimes_ns", "lifetime_weights",
                "zpl_ev"} <= state.keys()


def test_figures_are_laid_out_cleanly(result: AnalysisResult) -> None:
    for make in (overview_figure, mapping_figure, tracking_figure):
        assert layout_problems(make(result)) == [], make.__name__


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_cli_writes_summary_and_figures(synthetic: tuple[Path, np.ndarray], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "an"
    assert _cli(["analyze", str(synthetic[0]), "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["frames"] == 80
    for name in ("overview.png", "tracking.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "2.1500" in printed and "2.1350" in printed


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    assert _cli(["analyze", str(tmp_path / "missing.h5")]) == 2
    assert "file not found" in capsys.readouterr().err
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = [1]
    assert _cli(["analyze", str(other)]) == 2
    err = capsys.readouterr().err
    assert "not a cryoscope measurement file" in err and err.count("\n") == 1
    text = tmp_path / "text.h5"
    text.write_text("hello")
    assert _cli(["analyze", str(text)]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err


def test_cli_names_an_unknown_readout(synthetic: tuple[Path, np.ndarray], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "odd.h5"
    odd.write_bytes(synthetic[0].read_bytes())
    with h5py.File(odd, "a") as h5:
        h5["camera"].attrs["readout"] = "kinetics"
    assert _cli(["analyze", str(odd)]) == 2
    assert "unknown camera readout 'kinetics'" in capsys.readouterr().err
