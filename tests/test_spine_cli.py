"""The command line: runs, file info, config checks and bad input."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope.cli import main
from cryoscope.config import default_config_path
from cryoscope.datafile import open_h5

CLI = [sys.executable, "-m", "cryoscope.cli"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_run_prints_a_summary_and_info_reads_the_file(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.h5"
    assert main(["run", "--frames", "8", "--exposure", "0.5", "--dwell", "1.0",
                 "--step-deg", "2", "--seed", "7", "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert re.search(r"^status\s+complete$", summary, re.M)
    assert re.search(r"^frames\s+8$", summary, re.M)
    photons = int(re.search(r"^photons\s+(\d+)$", summary, re.M).group(1))  # type: ignore[union-attr]
    assert str(out) in summary
    with h5py.File(out, "r") as f:
        assert f["camera/frames"].shape[0] == 8
        assert int(np.sum(f["tags/channel"][:] == 1)) == photons
        assert f["simulation"].attrs["seed"] == 7
        np.testing.assert_allclose(f["stage/target_deg"][:], 2.0 * np.arange(1, 5))
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "status        complete" in info
    assert "frames        8 x [2, 1024] (V, H)" in info
    assert f"({photons} APD photons)" in info


def test_config_check_accepts_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(default_config_path())]) == 0
    assert "valid (simulated rig, 400 frames x 0.5 s" in capsys.readouterr().out


def test_every_key_of_the_default_config_has_a_comment() -> None:
    for number, line in enumerate(default_config_path().read_text().splitlines(), 1):
        if re.match(r"^\s*[A-Za-z_0-9]+\s*=", line):
            assert "#" in line, f"simulated.toml line {number} has no comment: {line}"


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(("toml", "needles"), [
    ("[plan]\nframez = 3\n", ("unknown key 'plan.framez'",)),
    ("[[sample.emitters]]\nzpl_ev = 2.1\ncolour = 'red'\n", ("sample.emitters.0.colour",)),
    ("[camera]\nem_gain = 500\n", ("em_gain = 500", "advanced_em_gain")),
    ("[simulation]\nspeed = 'fast'\n", ("simulation.speed",)),
    ("[plan\n", ("not valid TOML",)),
])
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, toml: str,
                                           needles: tuple[str, ...]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    out = tmp_path / "never.h5"
    _one_line_error(cli("run", "--config", str(config), "--out", str(out)), *needles)
    _one_line_error(cli("config", "check", str(config)), *needles)
    assert not out.exists()


def test_negative_exposure_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "never.h5"
    _one_line_error(cli("run", "--exposure", "-1", "--out", str(out)),
                    "plan.exposure_s", "exposure -1 s is outside 1e-05-3600 s", "-1")
    assert not out.exists()


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    _one_line_error(cli("run", "--config", str(missing), "--out", str(tmp_path / "x.h5")),
                    "config file not found", str(missing))


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "precious.h5"
    out.write_bytes(b"irreplaceable data")
    _one_line_error(cli("run", "--frames", "2", "--out", str(out)), "output file exists",
                    str(out), "--overwrite")
    assert out.read_bytes() == b"irreplaceable data"


def test_overwrite_replaces_the_output(tmp_path: Path) -> None:
    out = tmp_path / "old.h5"
    out.write_bytes(b"old")
    result = cli("run", "--frames", "2", "--exposure", "0.1", "--out", str(out), "--overwrite")
    assert result.returncode == 0, result.stderr
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"


def test_bad_argument_type_exits_2_in_one_line(tmp_path: Path) -> None:
    _one_line_error(cli("run", "--frames", "many"), "--frames", "'many'")


def test_info_on_a_foreign_file_exits_2(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    _one_line_error(cli("info", str(foreign)), "not a cryoscope measurement file")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _one_line_error(cli("info", str(text)), "not an HDF5 file")


def test_kill_9_loses_at_most_about_a_second(tmp_path: Path) -> None:
    """A run killed with SIGKILL leaves a file that opens, with the data up to ~1 s before."""
    config = tmp_path / "paced.toml"
    config.write_text(default_config_path().read_text().replace('speed = "max"', "speed = 2.0"))
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen([*CLI, "run", "--config", str(config), "--out", str(out),
                             "--frames", "100", "--exposure", "0.25"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert out.exists(), "the run never created its file"
        started = time.monotonic()
        time.sleep(4.0)
        os.kill(proc.pid, signal.SIGKILL)
        killed_after = time.monotonic() - started
    finally:
        proc.wait(timeout=30)
    with open_h5(out) as f:
        assert f.attrs["status"] == "running"
        frames = f["camera/frames"].shape[0]
        t = f["tags/timestamp_ps"][:]
        ch = f["tags/channel"][:]
    # at speed 2 the run exposed ~8 frames per wall second; at most ~1 s of them may be lost
    expected = killed_after * 2.0 / 0.252
    assert frames >= expected - 2.0 * 2.0 / 0.252 - 1
    assert int(np.sum(ch == 3)) >= frames
    assert np.all(np.diff(t) >= 0)
    assert (t[-1] - t[0]) / 1e12 >= (frames - 1) * 0.252
    assert main(["info", str(out)]) == 0
