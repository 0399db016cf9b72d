"""config/lab.toml, the hardware rig builder and ``cryoscope devices`` (no instruments attached)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import Swabian.TimeTagger as tt
from attodry_fake import FakeAttoDry
from vendor_fakes import SwabianSdk

from cryoscope import devices
from cryoscope.backends import hardware as hardware_rig
from cryoscope.cli import main
from cryoscope.config import Backend, Config, ConfigError, load_config
from drivers.andor import AndorCamera, AndorSpectrograph
from drivers.attodry import AttoDryLibCryostat, AttoDryNetworkCryostat
from drivers.clock import SystemClock
from drivers.epl import EplLaser
from drivers.interfaces import Identity, PulsedLaser
from drivers.kinesis import KinesisRotationStage
from drivers.pilas import PiLasLaser
from drivers.swabian import SwabianTimeTagger

LAB = Path(__file__).resolve().parents[2] / "config" / "lab.toml"


@pytest.fixture
def lab() -> Config:
    return load_config(LAB)


@pytest.fixture(autouse=True)
def no_tagger(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Time Tagger attached, and no usage-statistics setting written by the tests."""
    monkeypatch.setattr(tt, "setUsageStatisticsStatus",
                        mock.create_autospec(tt.setUsageStatisticsStatus))
    monkeypatch.setattr(tt, "createTimeTagger", mock.create_autospec(
        tt.createTimeTagger, side_effect=RuntimeError("No Time Tagger attached.")))


def test_lab_config_is_the_real_rig(lab: Config):
    assert lab.rig.backend is Backend.HARDWARE
    assert (lab.cryostat.connection, lab.laser.model) == ("network", "epl")
    assert LAB.read_text().count("[[camera.tracks]]") == 2


def test_every_lab_key_is_documented():
    for number, line in enumerate(LAB.read_text().splitlines(), start=1):
        if "=" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"config/lab.toml line {number} has no comment: {line!r}"


def test_hardware_instruments_from_the_lab_config(lab: Config):
    hw = hardware_rig.build_hardware_rig(lab)
    assert isinstance(hw.clock, SystemClock)
    assert isinstance(hw.cryostat, AttoDryNetworkCryostat)
    assert (hw.cryostat.host, hw.cryostat.port) == (lab.cryostat.host, 9090)
    assert isinstance(hw.laser, EplLaser)
    assert isinstance(hw.stage, KinesisRotationStage) and hw.stage.conn == lab.stage.serial
    assert isinstance(hw.spectrograph, AndorSpectrograph)
    assert isinstance(hw.camera, AndorCamera) and hw.camera.initial_temperature_c == -80.0
    assert isinstance(hw.tagger, SwabianTimeTagger)
    assert not any(i.is_connected for i in hw.instruments().values())


def test_other_connection_choices(lab: Config):
    dll = lab.with_overrides("cryostat", connection="dll", com_port="COM9")
    cryostat = hardware_rig.build_cryostat(dll)
    assert isinstance(cryostat, AttoDryLibCryostat) and cryostat.com_port == "COM9"
    pilas = lab.with_overrides("laser", model="pilas", port="COM4", full_power_nw=2000.0)
    laser = hardware_rig.build_laser(pilas)
    assert isinstance(laser, PiLasLaser) and laser.full_power_nw == 2000.0


def test_simulated_instruments_are_refused_on_hardware(lab: Config):
    with pytest.raises(ConfigError, match=r"cryostat\.connection = 'simulated'"):
        hardware_rig.build_cryostat(lab.with_overrides("cryostat", connection="simulated"))
    with pytest.raises(ConfigError, match=r"laser\.model = 'simulated'"):
        hardware_rig.build_laser(lab.with_overrides("laser", model="simulated"))


@pytest.fixture
def lab_on_loopback(lab: Config, server: FakeAttoDry) -> Config:
    return lab.with_overrides("cryostat", host="127.0.0.1", port=server.port, timeout_s=2.0)


def test_check_devices_reports_each_instrument(lab_on_loopback: Config):
    reports = devices.check_devices(lab_on_loopback, timeout_s=30.0)
    by_name = {r.instrument: r for r in reports}
    assert list(by_name) == ["cryostat", "laser", "stage", "spectrograph", "camera", "tagger"]
    cryostat = by_name["cryostat"]
    assert cryostat.ok and cryostat.identity == Identity("attocube", "attoDRY800", "AD800-0042",
                                                         "1.2.3")
    assert cryostat.status["sample_temperature_k"] == pytest.approx(4.2)
    assert by_name["laser"].ok and by_name["laser"].status["power_nw"] == 300.0
    for name in ("stage", "spectrograph", "camera", "tagger"):
        report = by_name[name]
        assert not report.ok and report.identity is None
        assert report.error.startswith(f"{name}: ") and "\n" not in report.error
    assert "pyft232" in by_name["stage"].error
    assert "Andor SDK2" in by_name["camera"].error
    assert "no Time Tagger found" in by_name["tagger"].error


@pytest.fixture
def hanging_laser(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    release = threading.Event()
    builders: dict[str, Any] = dict(hardware_rig.BUILDERS)
    laser = mock.create_autospec(PulsedLaser, instance=True)
    laser.connect.side_effect = lambda: release.wait()  # a vendor call that never returns
    builders["laser"] = lambda config: laser
    monkeypatch.setattr(hardware_rig, "BUILDERS", builders)
    yield
    release.set()


def test_a_hung_instrument_is_reported_not_waited_for(lab_on_loopback: Config,
                                                      hanging_laser: None):
    reports = devices.check_devices(lab_on_loopback, timeout_s=0.2)
    laser = next(r for r in reports if r.instrument == "laser")
    assert not laser.ok
    assert laser.error.startswith("laser: no answer within 0.2 s")
    assert [r.instrument for r in reports][-1] == "tagger"


def test_cli_prints_each_instrument_and_fails(lab_on_loopback: Config, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]):
    config_file = tmp_path / "lab.toml"
    config_file.write_text(lab_on_loopback.to_toml())
    code = main(["devices", "--config", str(config_file), "--timeout", "30"])
    out = capsys.readouterr().out
    assert code == 1
    assert "cryostat      OK    attocube attoDRY800, serial AD800-0042, firmware 1.2.3" in out
    assert "sample_temperature_k=4.2" in out
    assert "camera        FAIL  camera: cannot load the Andor camera library" in out
    assert out.rstrip().endswith("failed: stage, spectrograph, camera, tagger")


def test_cli_simulated_rig_all_ok(capsys: pytest.CaptureFixture[str]):
    code = main(["devices", "--config", str(LAB.with_name("simulated.toml"))])
    out = capsys.readouterr().out
    assert code == 0
    assert "6 of 6 instruments OK" in out


def test_cli_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bad = tmp_path / "bad.toml"
    bad.write_text("[laser]\nmodle = 'epl'\n")
    assert main(["devices", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cryoscope: error:") and "laser.modle" in err
    assert "\n" not in err


def _only_tagger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware_rig, "BUILDERS", {"tagger": hardware_rig.build_tagger})


def test_tagger_self_test_rates_join_the_status(lab: Config, sdk: SwabianSdk,
                                                monkeypatch: pytest.MonkeyPatch):
    _only_tagger(monkeypatch)
    counter = sdk.countrate_class.return_value
    counter.waitUntilFinished.return_value = True
    counter.getData.return_value = np.full(8, 800_000.0)
    (report,) = devices.check_devices(lab, timeout_s=30.0, self_test=True)
    assert report.ok
    assert report.status["test_rate_hz_1"] == 800_000.0
    assert len([k for k in report.status if k.startswith("test_rate_hz_")]) == 8
    (plain,) = devices.check_devices(lab, timeout_s=30.0)
    assert "test_rate_hz_1" not in plain.status


def test_tagger_self_test_names_dead_inputs(lab: Config, sdk: SwabianSdk,
                                            monkeypatch: pytest.MonkeyPatch):
    _only_tagger(monkeypatch)
    counter = sdk.countrate_class.return_value
    counter.waitUntilFinished.return_value = True
    counter.getData.return_value = np.array([800_000.0, 0.0, 800_000.0, 0.0, *[8e5] * 4])
    (report,) = devices.check_devices(lab, timeout_s=30.0, self_test=True)
    assert not report.ok
    assert report.error == "tagger: self-test: no test-signal counts on input(s) 2, 4"
