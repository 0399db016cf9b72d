"""`cryoscope config check` refuses what the run would die on or the instruments would refuse.

Every case goes through the command line's own entry point (``cryoscope.cli.main``; a few also as
a subprocess): exit code 2, one line on stderr, no traceback, the key and the value named. The
instruments' ranges come from their declaration in ``drivers.limits``; ``cryoscope run``
refuses the same files before any instrument is opened.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from cryoscope.cli import main

CLI = [sys.executable, "-m", "cryoscope.cli"]

TWO_TRACKS = """
[[camera.tracks]]
name = "{a}"
row_start = {a0}
row_stop = {a1}

[[camera.tracks]]
name = "{b}"
row_start = {b0}
row_stop = {b1}
"""

#: (id, TOML text, the key, the value as shown, more text the line must hold)
CASES = [
    ("nan", "[plan]\nexposure_s = nan\n", "plan.exposure_s", "nan", "NaN and infinity"),
    ("inf", "[plan]\nwaveplate_step_deg = inf\n", "plan.waveplate_step_deg", "inf", ""),
    ("-inf", "[laser]\npower_nw = -inf\n", "laser.power_nw", "-inf", ""),
    ("nan-in-an-emitter", "[[sample.emitters]]\nzpl_ev = nan\n", "sample.emitters[0].zpl_ev",
     "nan", ""),
    ("nan-in-a-list", "[spectrograph]\ngratings_lines_per_mm = [150.0, nan]\n",
     "spectrograph.gratings_lines_per_mm[1]", "nan", ""),
    ("1e9-frames", "[plan]\nframes = 1000000000\n", "plan.frames", "1000000000",
     "outside 1-1000000 frames"),
    ("seed-1e30", "[simulation]\nseed = 1e30\n", "simulation.seed", "1e+30", ""),
    ("seed-10^30", "[simulation]\nseed = 1000000000000000000000000000000\n", "simulation.seed",
     "1000000000000000000000000000000", ""),
    ("negative-seed", "[simulation]\nseed = -1\n", "simulation.seed", "-1", ""),
    ("huge-buffer", "[tagger]\nbuffer_tags = 10000000000\n", "tagger.buffer_tags",
     "10000000000", ""),
    ("no-emitter", "[sample]\nemitters = []\n", "sample.emitters", "[]", "at least one emitter"),
    ("no-grating", "[spectrograph]\ngratings_lines_per_mm = []\n",
     "spectrograph.gratings_lines_per_mm", "", "at least 1 item"),
    ("setpoint-1K", "[cryostat]\ntarget_temperature_k = 1.0\n", "cryostat.target_temperature_k",
     "1.0", "setpoint 1 K is outside 1.5-320 K"),
    ("apd-input-12", "[channels]\napd = 12\n", "channels.apd", "12", "input 12 is outside 1-8"),
    ("apd2-input-9", "[channels]\napd2 = 9\n", "channels.apd2", "9", "outside 1-8"),
    ("exposure-1us", "[plan]\nexposure_s = 1e-6\n", "plan.exposure_s", "1e-06",
     "outside 1e-05-3600 s"),
    ("sim-laser-90MHz", "[laser]\nrepetition_rate_hz = 90e6\n", "laser.repetition_rate_hz",
     "90000000.0", "simulated pulsed diode laser"),
    ("pilas-50MHz", "[laser]\nmodel = 'pilas'\nrepetition_rate_hz = 50e6\n",
     "laser.repetition_rate_hz", "50000000.0", "outside 25-40000000 Hz (NKT PiLas)"),
    ("pilas-10Hz", "[laser]\nmodel = 'pilas'\nrepetition_rate_hz = 10\n",
     "laser.repetition_rate_hz", "10.0", "NKT PiLas"),
    ("pilas-beyond-full-power", "[laser]\nmodel = 'pilas'\npower_nw = 1500\n", "laser.power_nw",
     "1500.0", "full_power_nw"),
    ("epl-remote", "[laser]\nmodel = 'epl'\nremote_control = true\n", "laser.remote_control",
     "True", "front panel only"),
    ("camera-setpoint-25C", "[camera]\ntemperature_c = 25\n", "camera.temperature_c", "25",
     "outside -100-20 °C"),
    ("em-gain-1001", "[camera]\nem_gain = 1001\nadvanced_em_gain = true\n", "camera.em_gain",
     "1001", "outside 0-1000"),
    ("velocity-30", "[stage]\nmax_velocity_deg_s = 30\n", "stage.max_velocity_deg_s", "30",
     "outside (0, 25 deg/s]"),
    ("trigger-3V", "[tagger]\ntrigger_level_v = 3.0\n", "tagger.trigger_level_v", "3.0",
     "outside 0-2.5 V"),
    ("center-1500nm", "[spectrograph]\ncenter_wavelength_nm = 1500\n",
     "spectrograph.center_wavelength_nm", "1500", "outside 200-1200 nm"),
    ("tracks-out-of-order", TWO_TRACKS.format(a="H", a0=530, a1=550, b="V", b0=470, b1=490),
     "camera.tracks", "[(530, 550), (470, 490)]", "ascending, non-overlapping"),
    ("tracks-overlapping", TWO_TRACKS.format(a="V", a0=470, a1=540, b="H", b0=530, b1=550),
     "camera.tracks", "[(470, 540), (530, 550)]", "ascending, non-overlapping"),
    ("track-beyond-sensor", TWO_TRACKS.format(a="V", a0=470, a1=490, b="H", b0=1000, b1=1030),
     "camera.tracks", "[(470, 490), (1000, 1030)]", "beyond the 1024-row sensor"),
    ("track-names-twice", TWO_TRACKS.format(a="V", a0=470, a1=490, b="V", b0=530, b1=550),
     "camera.tracks", "['V', 'V']", "distinct"),
]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def _one_line_exit_2(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("toml", "key", "shown", "text"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_config_check_refuses_naming_key_and_value(tmp_path: Path, toml: str, key: str,
                                                   shown: str, text: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "fuzz.toml"
    config.write_text(toml, encoding="utf-8")
    code = main(["config", "check", str(config)])
    captured = capsys.readouterr()
    result = subprocess.CompletedProcess(["config", "check"], code, captured.out, captured.err)
    _one_line_exit_2(result, f"'{key}'", text, f"(got {shown})" if shown else "")
    assert captured.out == ""


def test_a_fuzz_case_as_a_subprocess(tmp_path: Path) -> None:
    """The installed command, as a user types it: the same one line and exit code."""
    config = tmp_path / "fuzz.toml"
    config.write_text("[channels]\napd = 12\n")
    _one_line_exit_2(cli("config", "check", str(config)), "'channels.apd'",
                     "input 12 is outside 1-8", "(got 12)")


def test_a_non_utf8_byte_is_one_line_naming_where(tmp_path: Path) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes('[rig]\nname = "Café"\n'.encode("latin-1"))
    _one_line_exit_2(cli("config", "check", str(config)), str(config), "not UTF-8",
                     "byte 0xe9", "line 2")


@pytest.mark.parametrize(("toml", "key"), [
    ("[cryostat]\ntarget_temperature_k = 1.0\n", "cryostat.target_temperature_k"),
    ("[channels]\napd = 12\n", "channels.apd"),
    ("[plan]\nexposure_s = 1e-6\n", "plan.exposure_s"),
], ids=["setpoint-1K", "apd-input-12", "exposure-1us"])
def test_run_refuses_before_any_instrument_and_writes_nothing(tmp_path: Path, toml: str,
                                                              key: str) -> None:
    """These used to exit 1 at run time, when the instrument refused them."""
    config = tmp_path / "fuzz.toml"
    config.write_text(toml)
    out = tmp_path / "never.h5"
    _one_line_exit_2(cli("run", "--config", str(config), "--out", str(out)), f"'{key}'")
    assert not out.exists()


@pytest.mark.parametrize(("args", "key"), [
    (("--exposure", "nan"), "plan.exposure_s"),
    (("--frames", "1000000000"), "plan.frames"),
    (("--step-deg", "inf"), "plan.waveplate_step_deg"),
], ids=["exposure-nan", "1e9-frames", "step-inf"])
def test_run_options_are_checked_like_the_file(tmp_path: Path, args: tuple[str, ...],
                                               key: str) -> None:
    out = tmp_path / "never.h5"
    _one_line_exit_2(cli("run", *args, "--out", str(out)), f"'{key}'")
    assert not out.exists()


def test_a_front_panel_only_simulated_laser_runs_at_its_configured_settings(
    tmp_path: Path,
) -> None:
    config = tmp_path / "front-panel.toml"
    config.write_text("[laser]\nremote_control = false\nrepetition_rate_hz = 2e6\n")
    assert cli("config", "check", str(config)).returncode == 0
    out = tmp_path / "m.h5"
    result = cli("run", "--config", str(config), "--frames", "3", "--exposure", "0.2",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    with h5py.File(out, "r") as f:
        assert not f["laser"].attrs["remote_control"]
        assert f["laser"].attrs["repetition_rate_hz"] == 2e6
        np.testing.assert_array_equal(f["laser/repetition_rate_hz"][:], 2e6)
