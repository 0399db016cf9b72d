"""The charging-state map (centers, configurations, jumps) against the simulator's truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope.analysis.figures import overview_figure, tracking_figure, write_figures
from cryoscope.analysis.mapping_figure import jump_label, mapping_figure
from cryoscope.analysis.report import AnalysisResult, analyze_file
from cryoscope.analysis.summary import write_summary
from cryoscope.analyze.cli import register
from cryoscope.api import measure
from cryoscope.config import load_config
from tests.analysis.figure_checks import layout_problems
from tests.analysis.simfiles import emitter, simulated_file
from tests.analysis.synthetic import Center, SyntheticRun, write_synthetic

DIMER_TOML = Path(__file__).resolve().parents[2] / "config" / "dimer.toml"


def _angle_diff(a: float, b: float) -> float:
    return (a - b + 90.0) % 180.0 - 90.0


def _match_centers(result: AnalysisResult) -> list[int]:
    """For each true emitter, the found center whose neutral ZPL is nearest."""
    emitters = result.measurement.truth.sample["emitters"]
    centers = result.centers.centers
    return [min(range(len(centers)), key=lambda c: abs(centers[c].zpl_ev - e["zpl_ev"]))
            for e in emitters]


def _window_excess_mev(result: AnalysisResult) -> list[float]:
    """Per line, how far (meV) its window reaches beyond the simulator's ZPLs of its dot in the
    line's charge (``X``: neutral frames, ``X*``: charged frames)."""
    truth = result.measurement.truth
    dot_of = {c: e for e, c in enumerate(_match_centers(result))}
    out = []
    for line in result.lines:
        e = dot_of[line.center]
        true = truth.frame_zpl_ev[truth.frame_state[:, e] == ("X", "X*").index(line.charge), e]
        lo, hi = line.window_ev
        out.append(max(true.min() - lo, hi - true.max()) * 1000.0)
    return out


def _chance_peaks(result: AnalysisResult, away_mev: float = 3.0) -> np.ndarray:
    """Peaks farther than ``away_mev`` from the neutral and charged ZPL of every simulated dot
    (files without spectral diffusion or surface charge)."""
    known = np.array([[e["zpl_ev"], e["zpl_ev"] + e["trion_shift_mev"] / 1000.0]
                      for e in result.measurement.truth.sample["emitters"]]).ravel()
    e = result.centers.peaks.energy_ev
    return np.flatnonzero(np.min(np.abs(e[:, None] - known[None, :]), axis=1) * 1000 > away_mev)


def _true_simultaneous_frames(path: Path, frame_start_s: np.ndarray) -> np.ndarray:
    """Frames of the events in which both centers' ZPL changed by > 2 meV while both were
    visible before and after (from the true state intervals)."""
    with h5py.File(path, "r") as h5:
        t = h5["simulation/truth_time_s"][:]
        zpl = h5["simulation/truth_zpl_ev"][:]
        state = h5["simulation/truth_state"][:]
    step = np.abs(np.diff(zpl, axis=0)) * 1000.0
    visible = (state[1:] != 2) & (state[:-1] != 2)
    both = np.flatnonzero(np.all((step > 2.0) & visible, axis=1)) + 1
    inside = (t[both] > frame_start_s[0]) & (t[both] < frame_start_s[-1])
    return np.searchsorted(frame_start_s, t[both][inside]) - 1


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mapping")


@pytest.fixture(scope="module")
def independent(workdir: Path) -> AnalysisResult:
    """Two dots that charge and go dark independently; no surface charge."""
    path, _ = simulated_file(
        workdir / "independent.h5", frames=240, seed=21,
        sample={"surface_charge_rate_hz": 0.0, "surface_charge_on_charging": 0.0},
        emitters=[emitter(zpl_ev=2.15, dipole_angle_deg=25.0, polarization_degree=0.75,
                          branching=0.5, charging_rate_hz=0.15, discharging_rate_hz=0.3,
                          dark_rate_hz=0.03, dark_recovery_rate_hz=0.5),
                  emitter(zpl_ev=2.128, dipole_angle_deg=105.0, polarization_degree=0.6,
                          trion_shift_mev=-13.0, trion_lifetime_ns=9.0, branching=0.5,
                          charging_rate_hz=0.1, discharging_rate_hz=0.25, dark_rate_hz=0.03,
                          dark_recovery_rate_hz=0.5)])
    return analyze_file(path, change_points=False)


@pytest.fixture(scope="module")
def surface(workdir: Path) -> tuple[Path, AnalysisResult]:
    """Every charging of a dot moves the surface charge next to the other dot."""
    path, _ = simulated_file(
        workdir / "surface.h5", frames=300, seed=22,
        sample={"surface_charge_rate_hz": 0.0, "surface_charge_on_charging": 1.0,
                "surface_charge_shift_mev": -9.0},
        emitters=[emitter(zpl_ev=2.15, dipole_angle_deg=25.0, branching=0.5,
                          charging_rate_hz=0.12, discharging_rate_hz=0.3),
                  emitter(zpl_ev=2.128, dipole_angle_deg=105.0, polarization_degree=0.6,
                          trion_shift_mev=-13.0, branching=0.5, charging_rate_hz=0.12,
                          discharging_rate_hz=0.3)])
    return path, analyze_file(path, change_points=False)


def test_independent_dimer_configurations(independent: AnalysisResult) -> None:
    truth = independent.measurement.truth.frame_state
    assert len(set(truth[:, 0].tolist())) == 3 and len(set(truth[:, 1].tolist())) == 3
    assert len(independent.centers.centers) == 2
    match = _match_centers(independent)
    assert sorted(match) == [0, 1]
    config = independent.centers.configuration[:, match]
    assert np.mean(np.all(config == truth, axis=1)) >= 0.90
    for c, zpl, shift in zip(match, (2.15, 2.128), (-15.0, -13.0), strict=True):
        center = independent.centers.centers[c]
        assert abs(center.zpl_ev - zpl) < 0.5e-3
        assert abs(center.trion_shift_mev - shift) < 1.0
    # The state of each frame is its configuration.
    states = independent.states
    for s in range(states.n_states):
        frames = states.labels == s
        assert np.all(independent.centers.configuration[frames] == states.configuration[s])


def test_the_dimer_s_line_windows_stay_on_their_lines(independent: AnalysisResult) -> None:
    # A chance peak of stray light (a few photons) joins no line, so no window reaches out to it
    # (the chance peaks themselves: test_chance_peak_of_the_default_run_joins_no_line).
    chance = _chance_peaks(independent)
    assert np.all(independent.centers.peak_line[chance] == -1)
    assert max(_window_excess_mev(independent)) < 2.0
    emitters = independent.measurement.truth.sample["emitters"]
    for e, c in enumerate(_match_centers(independent)):
        for line in (ln for ln in independent.lines if ln.center == c):
            assert abs(line.polarization.p - emitters[e]["polarization_degree"]) < 0.1
            assert abs(_angle_diff(line.polarization.phi_deg,
                                   emitters[e]["dipole_angle_deg"])) < 5.0


def test_chance_peak_of_the_default_run_joins_no_line(workdir: Path) -> None:
    # `cryoscope run --seed 9`: the default configuration, 400 frames of 0.5 s. A chance peak
    # of stray light (~10 photons) joined the charged line and stretched its window 63 meV past
    # the charged ZPL (5 of seeds 1-24 have such peaks; every one stretched a window 26-93 meV).
    path = workdir / "default_seed9.h5"
    measure(path, load_config().with_overrides("simulation", seed=9))
    result = analyze_file(path, change_points=False)
    chance = _chance_peaks(result)
    assert chance.size >= 1 and np.all(result.centers.peak_line[chance] == -1)
    assert max(_window_excess_mev(result)) < 2.0
    (center,) = result.centers.centers
    assert abs(center.zpl_ev - 2.15) < 0.3e-3
    assert abs(center.trion_shift_mev + 15.0) < 0.5
    assert center.zpl_spread_mev < 0.1  # no spectral diffusion (the chance peak made it 1 meV)
    assert sorted(ln.charge for ln in result.lines) == ["X", "X*"]
    for line in result.lines:
        assert abs(line.polarization.p - 0.7) < 0.03
        assert abs(_angle_diff(line.polarization.phi_deg, 30.0)) < 2.0
        assert line.window_ev[1] - line.window_ev[0] < 3e-3


def test_surface_charge_moves_are_simultaneous_jumps(surface: tuple[Path, AnalysisResult]
                                                      ) -> None:
    path, result = surface
    start = result.photons.frames.start_ps[:result.states.labels.size] * 1e-12
    true = _true_simultaneous_frames(path, start)
    found = np.array([j.frame for j in result.jumps if len(j.centers) == 2])
    assert true.size >= 8
    hit = [np.any(np.abs(found - f) <= 1) for f in true]
    assert np.mean(hit) >= 0.80
    false = [f for f in found if not np.any(np.abs(true - f) <= 1)]
    assert len(false) <= 0.25 * true.size
    kinds = {j.kind for j in result.jumps if len(j.centers) == 2}
    # one dot charges while the surface charge moves to the other one
    assert kinds & {"charging+surface_charge", "surface_charge+charging"}


def test_dimer_figures_show_the_map_and_are_laid_out_cleanly(
        surface: tuple[Path, AnalysisResult], tmp_path: Path) -> None:
    _, result = surface
    both = [j.frame for j in result.jumps if len(j.centers) > 1]
    assert both
    for make in (overview_figure, mapping_figure, tracking_figure):
        fig = make(result)
        assert layout_problems(fig) == [], make.__name__
    fig = mapping_figure(result)
    titles = [ax.get_title() or ax.get_title(loc="right") for ax in fig.axes]
    assert [t[:3] for t in titles if t] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    trace = next(ax for ax in fig.axes if ax.get_title().startswith("(c)"))
    letters = [t.get_text() for t in trace.texts]
    assert letters == [jump_label(i) for i in range(len(both))]
    diagram = next(ax for ax in fig.axes if ax.get_title(loc="right").startswith("(e)"))
    n = result.states.n_states
    rows = [t.get_text() for t in diagram.texts if ":" in t.get_text()]
    assert rows == [f"{s}: {'/'.join(result.states.names(s))} "
                    f"({np.mean(result.states.labels == s):.0%})" for s in range(n)]
    counts = np.zeros((n, n), int)
    np.add.at(counts, (result.states.labels[:-1], result.states.labels[1:]), 1)
    np.fill_diagonal(counts, 0)
    cells = [int(t.get_text()) for t in diagram.texts if ":" not in t.get_text()]
    assert sorted(cells) == sorted(counts[counts > 0])
    written = write_figures(result, tmp_path)
    assert [p.name for p in written] == ["overview.png", "tracking.png", "mapping.png"]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_monomer_has_one_center_and_no_simultaneous_jumps(workdir: Path) -> None:
    path, _ = simulated_file(
        workdir / "monomer.h5", frames=240, seed=23,
        sample={"surface_charge_rate_hz": 0.05},
        emitters=[emitter(charging_rate_hz=0.15, discharging_rate_hz=0.3, dark_rate_hz=0.05,
                          dark_recovery_rate_hz=0.4, spectral_diffusion_mev=0.8,
                          spectral_diffusion_rate_hz=0.1)])
    result = analyze_file(path, change_points=False)
    assert len(result.centers.centers) == 1
    assert result.jumps and all(len(j.centers) == 1 for j in result.jumps)
    assert result.tracks.simultaneous == ()
    truth = result.measurement.truth.frame_state[:, 0]
    assert np.mean(result.centers.configuration[:, 0] == truth) >= 0.90


def test_spectral_diffusion_is_one_center_with_one_line_per_charge(workdir: Path) -> None:
    path, _ = simulated_file(
        workdir / "diffusing.h5", frames=240, seed=24,
        emitters=[emitter(charging_rate_hz=0.1, discharging_rate_hz=0.2,
                          spectral_diffusion_mev=1.2, spectral_diffusion_rate_hz=0.3)])
    result = analyze_file(path, change_points=False)
    zpl = result.measurement.truth.frame_zpl_ev[:, 0]
    neutral = result.measurement.truth.frame_state[:, 0] == 0
    assert np.ptp(zpl[neutral]) * 1000 > 3.0  # it did wander
    (center,) = result.centers.centers
    charges = [result.centers.lines[i].charge for i in center.lines]
    assert charges.count("X") <= 1 and charges.count("X*") <= 1
    assert abs(center.zpl_ev - 2.15) < 1e-3
    assert center.zpl_spread_mev > 0.5
    assert all(ln.center == 0 for ln in result.lines)


def test_every_line_of_the_shipped_dimer_has_its_dipole(workdir: Path) -> None:
    path, _ = simulated_file(workdir / "dimer.h5", frames=300, seed=7, emitters=[],
                             config=load_config(DIMER_TOML))
    result = analyze_file(path, change_points=False)
    emitters = result.measurement.truth.sample["emitters"]
    match = _match_centers(result)
    assert len(result.centers.centers) == 2 and sorted(match) == [0, 1]
    owner = {c: e for e, c in zip(emitters, match, strict=True)}
    assert {ln.charge for ln in result.lines} == {"X", "X*"}
    n_frames = result.centers.frame_line.shape[0]
    seen = [int(np.sum(result.centers.frame_line == k)) for k in range(len(result.lines))]
    determined = set()
    for k, line in enumerate(result.lines):
        pol = line.polarization
        if pol is None or pol.problem:
            # no dipole from a configuration seen too briefly to span the waveplate's angles
            assert seen[k] < 0.05 * n_frames, (line, seen[k])
            continue
        determined.add(k)
        truth = owner[line.center]
        assert abs(pol.p - truth["polarization_degree"]) < 0.1, line
        assert abs(_angle_diff(pol.phi_deg, truth["dipole_angle_deg"])) < 5.0, line
    for c in (0, 1):  # each center's most seen line has its dipole
        of_c = [k for k, ln in enumerate(result.lines) if ln.center == c]
        assert max(of_c, key=lambda k: seen[k]) in determined


def test_replica_energies_are_fitted(workdir: Path) -> None:
    path, _ = simulated_file(
        workdir / "replicas.h5", frames=120, seed=26,
        emitters=[emitter(phonon_energies_mev=[25.0, 40.0], phonon_weights=[0.15, 0.1])])
    result = analyze_file(path, change_points=False)
    (center,) = result.centers.centers
    assert center.replica_shifts_mev == pytest.approx((25.0, 40.0), abs=1.0)
    assert all(0 < e < 1.0 for e in center.replica_shifts_err_mev)
    (line,) = result.lines
    assert line.replica_weights == pytest.approx((0.15, 0.1), abs=0.03)


def test_two_level_blinking_dot_has_two_intensity_levels(workdir: Path) -> None:
    path, _ = simulated_file(
        workdir / "blinking.h5", frames=200, seed=25,
        emitters=[emitter(dark_rate_hz=0.2, dark_recovery_rate_hz=0.3)])
    result = analyze_file(path)
    assert result.levels is not None and result.levels.rate_cps.size == 2
    on = result.state_results[0].count_rate_cps
    assert result.levels.rate_cps[-1] == pytest.approx(on, rel=0.1)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_regions_from_the_cli_and_summary_keys(surface: tuple[Path, AnalysisResult],
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path, auto = surface
    out = tmp_path / "regions"
    assert _cli(["analyze", str(path), "--out", str(out), "--regions",
                 "2.133:2.156,2.100:2.1329", "--no-figures"]) == 0
    data = json.loads((out / "summary.json").read_text())
    assert [c["id"] for c in data["centers"]] == [0, 1]
    assert data["centers"][0]["region_ev"] == [2.133, 2.156]
    # Each region is a center: its lines lie inside it.
    for line in data["lines"]:
        lo, hi = data["centers"][line["center"]]["region_ev"]
        assert lo <= line["zpl_ev"] <= hi
    assert _cli(["analyze", str(path), "--out", str(tmp_path / "bad"), "--regions",
                 "2.15:2.13"]) == 2
    err = capsys.readouterr().err
    assert "'2.15:2.13'" in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()
    # The automatic analysis: summary keys as documented.
    summary = json.loads(write_summary(auto, tmp_path / "auto").read_text())
    n_centers = len(summary["centers"])
    for center in summary["centers"]:
        assert {"id", "zpl_ev", "zpl_spread_mev", "dipole_angle_deg", "dipole_angle_err_deg",
                "polarization_degree", "charged_zpl_ev", "trion_shift_mev",
                "lines"} <= center.keys()
        for i in center["lines"]:
            assert summary["lines"][i]["center"] == center["id"]
    for line in summary["lines"]:
        assert line["charge"] in ("X", "X*")
    for state in summary["states"]:
        assert len(state["configuration"]) == n_centers
        assert set(state["configuration"]) <= {"X", "X*", "dark"}
    for jump in summary["jumps"]:
        assert {"frame", "time_s", "centers", "shifts_mev", "kind"} <= jump.keys()
        assert len(jump["centers"]) == len(jump["shifts_mev"])
    both = [j["frame"] for j in summary["jumps"] if len(j["centers"]) == 2]
    assert summary["simultaneous_jump_frames"] == both


def test_doubtful_lines_are_flagged_with_the_reason(independent: AnalysisResult,
                                                    tmp_path: Path) -> None:
    for line, found in zip(independent.lines, independent.centers.lines, strict=True):
        few = found.frames.size < 8
        assert any(r.endswith(" frames") for r in line.uncertain) == few
    # A fully polarized line fits to the boundary p = 1: flagged, not reported as real.
    path = write_synthetic(tmp_path / "p1.h5", SyntheticRun(
        centers=(Center(p=1.0, phi_deg=40.0),), frames=40, dwell_s=2.5))
    result = analyze_file(path, change_points=False)
    (line,) = result.lines
    assert line.polarization.p > 0.98
    assert any("boundary" in r for r in line.uncertain)
    summary = json.loads(write_summary(result, tmp_path / "out").read_text())
    assert any("boundary" in r for r in summary["lines"][0]["uncertain"])


def test_jumps_are_lettered_like_spreadsheet_columns() -> None:
    assert [jump_label(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]
