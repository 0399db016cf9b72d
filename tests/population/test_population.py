"""A simulated night of 12 particles with known truth, analysed as a population on Dask.

The night is measured once (``cryoscope simulate-night``, 40 frames per particle, no charging so
that each particle has one spectral cluster: all centers neutral). Its analysis goes through a
Dask scheduler and worker started here on loopback (``--scheduler``); a few of its files, with a
broken one among them, through a local cluster (``--workers``), twice (the second run skips).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryoscope.analysis import population as pop
from cryoscope.cli import main
from cryoscope.config import ConfigError
from cryoscope.night import draw_particles, load_population

PARTICLES = 12
#: The test population: config/population.toml without charging, short runs.
POPULATION = """\
fraction_molecules = 0.5
[charging]
charging_rate_hz = [0.0, 0.0]
discharging_rate_hz = [0.0, 0.0]
[plan]
frames = 40
exposure_s = 0.5
waveplate_step_deg = 5.0
waveplate_dwell_s = 2.5
"""


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("night")
    (base / "population.toml").write_text(POPULATION)
    out = base / "files"
    code = main(["simulate-night", "--out", str(out), "--particles", str(PARTICLES),
                 "--config", str(base / "population.toml"), "--seed", "5"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Dask scheduler and one worker process (two for the files) on 127.0.0.1."""
    base = tmp_path_factory.mktemp("dask")
    info = base / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    sched = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=base)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--host",
             "127.0.0.1", "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=base)
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=180)
        yield address
    finally:
        for proc in (worker, sched):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def _by_name(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(name=frame["file"].map(lambda f: Path(f).name))


def test_population_through_a_dask_scheduler_matches_the_truth(
        night: Path, scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "population"
    code = main(["analyze", str(night), "--out", str(out), "--scheduler", scheduler,
                 "--no-figures"])
    assert code == 0, capsys.readouterr().err
    assert f"{PARTICLES} files: {PARTICLES} analyzed, 0 skipped" in capsys.readouterr().out
    truth = pd.read_parquet(night / "truth.parquet")
    particles = _by_name(pd.read_parquet(out / "particles.parquet"))
    lines = pd.read_parquet(out / "lines.parquet")
    states = pd.read_parquet(out / "states.parquet")
    assert (out / "population.png").stat().st_size > 10_000
    assert len(particles) == PARTICLES and set(truth["sample_type"]) == {"monomer", "molecule"}

    # One row per particle, carrying the file's metadata and the analysis' provenance.
    merged = truth.merge(particles, left_on="file", right_on="name", suffixes=("", "_found"))
    assert len(merged) == PARTICLES
    assert (merged["measurement.sample_type"] == merged["sample_type"]).all()
    assert (merged["measurement.particle"] == merged["particle"]).all()
    assert (merged["provenance.parameters.bin_s"] == 0.01).all()
    assert merged["provenance.software_version"].notna().all()
    # The number of centers of every particle.
    assert merged["n_centers_found"].tolist() == merged["n_centers"].tolist()
    assert len(lines) == truth["n_centers"].sum()
    assert {"file", "index", "measurement.sample_type", "provenance.software_version"} <= set(
        lines.columns) & set(states.columns)

    # The Fig. 3 histograms from the tables equal those from the truth: same counts, and the
    # cumulative counts differ by at most one entry (a value next to a bin edge).
    found = pop.histograms(pop.from_tables(lines, states))
    expected = pop.histograms(pop.from_truth(truth))
    assert set(found) == set(expected) == {"monomer", "molecule"}
    for group in expected:
        for panel in pop.PANELS:
            a, b = found[group][panel], expected[group][panel]
            assert a.sum() == pytest.approx(b.sum(), abs=1e-9), (group, panel)
            tol = 0.1 if panel == "zpl_ev" else 1
            assert np.abs(np.cumsum(a) - np.cumsum(b)).max() <= tol, (group, panel, a, b)
    # ... and value by value.
    q_found, q_truth = pop.from_tables(lines, states), pop.from_truth(truth)
    tolerances = {"zpl_ev": 0.0005, "spacing_mev": 0.5, "zpls_per_cluster": 0,
                  "long_lifetime_ns": 4.0, "long_amplitude": 0.05, "dphi_deg": 4.0}
    for group, q in q_truth.items():
        for panel, tol in tolerances.items():
            got, want = np.sort(getattr(q_found[group], panel)), np.sort(getattr(q, panel))
            assert got.shape == want.shape, (group, panel)
            np.testing.assert_allclose(got, want, atol=tol, err_msg=f"{group} {panel}")
    molecules = q_truth["molecule"]
    assert molecules.zpls_per_cluster and set(molecules.zpls_per_cluster) == {2}
    assert set(q_truth["monomer"].zpls_per_cluster) == {1}


def test_local_cluster_names_a_broken_file_and_skips_what_is_done(
        night: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for name in ("particle-001.h5", "particle-002.h5"):
        shutil.copy(night / name, files / name)
    (files / "broken.h5").write_bytes(b"not an HDF5 file")
    out = tmp_path / "out"
    args = ["analyze", str(files / "*.h5"), "--out", str(out), "--workers", "2"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "2 analyzed, 0 skipped" in captured.out and "1 failed" in captured.out
    assert f"failed: {files / 'broken.h5'}: not an HDF5 file" in captured.err
    for name in ("particle-001", "particle-002"):
        assert {"summary.json", "overview.png", "tracking.png"} <= {
            p.name for p in (out / name).iterdir()}
    assert not (out / "broken").exists() or not (out / "broken" / "summary.json").exists()
    assert len(pd.read_parquet(out / "particles.parquet")) == 2
    stamp = (out / "particle-001" / "summary.json").stat().st_mtime_ns

    assert main(args) == 1  # again: the done files are skipped, the broken one fails again
    captured = capsys.readouterr()
    assert "0 analyzed, 2 skipped" in captured.out and "1 failed" in captured.out
    assert (out / "particle-001" / "summary.json").stat().st_mtime_ns == stamp
    assert len(pd.read_parquet(out / "particles.parquet")) == 2

    (files / "broken.h5").unlink()
    assert main([*args, "--force", "--no-figures"]) == 0
    assert "2 analyzed, 0 skipped" in capsys.readouterr().out
    assert (out / "particle-001" / "summary.json").stat().st_mtime_ns > stamp


def test_analyze_bad_paths_are_usage_errors(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "none*.h5"), str(tmp_path)]) == 2
    assert "no measurement file in" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "missing.h5"), str(tmp_path / "other.h5")]) == 2
    assert f"file not found: {tmp_path / 'missing.h5'}" in capsys.readouterr().err
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "p.h5").write_bytes(b"x")
    assert main(["analyze", str(a), str(b)]) == 2
    assert "two files would write OUT/p/" in capsys.readouterr().err


def test_population_file_is_validated(tmp_path: Path) -> None:
    population = load_population()  # config/population.toml
    assert population.fraction_molecules == 0.5 and population.plan.frames == 60
    bad = tmp_path / "bad.toml"
    bad.write_text("[zpl]\nmean_ev = 2.15\nwidth_ev = 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'zpl.width_ev'"):
        load_population(bad)
    bad.write_text("[lifetimes]\nlong_weight = [0.9, 0.2]\n")
    with pytest.raises(ConfigError, match="low <= high"):
        load_population(bad)
    assert main(["simulate-night", "--out", str(tmp_path / "n"), "--particles", "2",
                 "--config", str(bad)]) == 2
    assert not (tmp_path / "n").exists()


def test_draws_follow_the_population() -> None:
    particles = draw_particles(load_population(), 400, seed=1)
    molecules = [p for p in particles if p["sample_type"] == "molecule"]
    assert 0.4 < len(molecules) / 400 < 0.6
    spacing = np.array([(p["zpl_ev"][1] - p["zpl_ev"][0]) * 1000 for p in molecules])
    assert np.all((np.abs(spacing) >= 8.0) & (np.abs(spacing) <= 70.0))
    assert 0.3 < np.mean(spacing > 0) < 0.7
    zpl = np.array([p["zpl_ev"][0] for p in particles])
    assert zpl.min() >= 2.10 and zpl.max() <= 2.20 and abs(zpl.mean() - 2.15) < 0.005
    longs = np.array([p["lifetimes_ns"][1] for p in particles if p["sample_type"] == "monomer"])
    assert longs.min() >= 40 and longs.max() <= 160
    assert all(p["branching"][1] < p["branching"][0] for p in molecules)
