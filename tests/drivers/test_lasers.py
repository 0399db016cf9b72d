"""Lasers: the EPL-475 (front panel only), and the PiLas byte by byte (pymeasure protocol tests)."""

from __future__ import annotations

import pytest
from pymeasure.adapters import ProtocolAdapter
from pymeasure.test import expected_protocol

from drivers.epl import EplLaser
from drivers.interfaces import (
    InstrumentError,
    InstrumentTimeoutError,
    NotConnectedError,
    NotSupportedError,
    SettingRejectedError,
)
from drivers.pilas import PiLasLaser
from drivers.pilas_protocol import PiLasInstrument, PiLasProtocolError

VERSION = [
    ("version?", "controller serial: PLC475PS0F00000123"),
    (None, "laser head serial: PLH475PS0F00000123"),
    (None, "center wavelength: 475 nm"),
    (None, "CW laser option: no"),
    (None, "CW laser power: fixed"),
    (None, "software version: SW.PiLas.V1.1.AEb"),
    (None, "controller hardware version: PiLas_Control_PCB_Rev.2.1"),
    (None, "laser head hardware version: PiLas_Laser_Head_PCB_Rev.2.0"),
]


# -- EPL-475 ----------------------------------------------------------------------------------


def test_epl_reports_front_panel_settings():
    laser = EplLaser(repetition_rate_hz=1e6, power_nw=300.0, wavelength_nm=475.0, serial="E1")
    assert laser.remote_control is False
    with pytest.raises(NotConnectedError):
        laser.power_nw()
    with laser:
        assert laser.status().as_dict() == {
            "emission_on": True, "repetition_rate_hz": 1e6, "power_nw": 300.0,
            "wavelength_nm": 475.0,
        }
        assert laser.identity().model == "EPL-475"
        laser.set_repetition_rate_hz(1e6)
        laser.set_power_nw(300.0)
        laser.set_emission(True)


@pytest.mark.parametrize(
    ("call", "value", "shown"),
    [("set_repetition_rate_hz", 5e6, "now 1e+06 Hz"), ("set_power_nw", 10.0, "now 300 nW"),
     ("set_emission", False, "now on")],
)
def test_epl_refuses_other_values(call: str, value: object, shown: str):
    laser = EplLaser(repetition_rate_hz=1e6, power_nw=300.0)
    with laser, pytest.raises(NotSupportedError) as err:
        getattr(laser, call)(value)
    assert "no remote control" in str(err.value) and shown in str(err.value)


# -- PiLas: the instrument's bytes ------------------------------------------------------------


def test_pilas_emission_bytes():
    with expected_protocol(
        PiLasInstrument,
        [("ld=1", "done"), ("ld?", "pulsed laser emission: on"), ("ld=0", "done"),
         ("ld?", "pulsed laser emission: off")],
    ) as inst:
        inst.emission_enabled = True
        assert inst.emission_enabled is True
        inst.emission_enabled = False
        assert inst.emission_enabled is False


def test_pilas_tune_and_frequency_bytes():
    with expected_protocol(
        PiLasInstrument,
        [("tm=0", "done"), ("tune=425", "done"), ("tune?", "tune value:\t\t     42.50 %"),
         ("f=5000000", "done"), ("f?", "int. frequency:\t       5000000 Hz")],
    ) as inst:
        inst.tune_manual = True
        inst.tune_permille = 425
        assert inst.tune_permille == pytest.approx(425.0)
        inst.frequency_hz = 5e6
        assert inst.frequency_hz == pytest.approx(5e6)


def test_pilas_version_lines():
    with expected_protocol(PiLasInstrument, VERSION) as inst:
        info = inst.version_info()
    assert info["controller serial"] == "PLC475PS0F00000123"
    assert info["software version"] == "SW.PiLas.V1.1.AEb"


def test_pilas_write_not_done_raises():
    with (
        expected_protocol(PiLasInstrument, [("ld=1", "interlock open")]) as inst,
        pytest.raises(PiLasProtocolError, match="interlock open"),
    ):
        inst.emission_enabled = True


def test_pilas_tune_range_is_validated_before_sending():
    with expected_protocol(PiLasInstrument, []) as inst, pytest.raises(ValueError):
        inst.tune_permille = 1001


@pytest.mark.parametrize("rate_hz", [10.0, 50e6, 100e6])
def test_pilas_frequency_outside_25_hz_to_40_mhz_is_never_sent(rate_hz: float):
    with expected_protocol(PiLasInstrument, []) as inst, pytest.raises(ValueError):
        inst.frequency_hz = rate_hz
    with expected_protocol(PiLasInstrument, [("f=25", "done"), ("f=40000000", "done")]) as inst:
        inst.frequency_hz = 25
        inst.frequency_hz = 40e6


# -- PiLas: the driver behind PulsedLaser -----------------------------------------------------


def _laser(pairs: list[tuple[str | None, str | None]]) -> tuple[PiLasLaser, ProtocolAdapter]:
    adapter = ProtocolAdapter(VERSION + pairs)
    laser = PiLasLaser(port="", full_power_nw=2000.0, wavelength_nm=470.0, adapter=adapter)
    laser.connect()
    return laser, adapter


def _assert_all_used(adapter: ProtocolAdapter) -> None:
    assert adapter._index == len(adapter.comm_pairs)


def test_pilas_driver_identity_and_status():
    laser, adapter = _laser([
        ("ld?", "pulsed laser emission: on"), ("f?", "int. frequency:\t 1000000 Hz"),
        ("tune?", "tune value:\t\t 15.00 %"),
    ])
    assert laser.remote_control is True
    identity = laser.identity()
    assert (identity.vendor, identity.serial) == ("NKT Photonics", "PLC475PS0F00000123")
    assert laser.wavelength_nm() == pytest.approx(475.0)
    status = laser.status()
    assert status.emission_on is True
    assert status.repetition_rate_hz == pytest.approx(1e6)
    assert status.power_nw == pytest.approx(300.0)
    _assert_all_used(adapter)


def test_pilas_driver_sets_power_rate_and_emission():
    laser, adapter = _laser([
        ("tm=0", "done"), ("tune=150", "done"), ("f=2000000", "done"), ("ld=1", "done"),
    ])
    laser.set_power_nw(300.0)
    laser.set_repetition_rate_hz(2e6)
    laser.set_emission(True)
    _assert_all_used(adapter)
    with pytest.raises(SettingRejectedError, match="outside 0-2000 nW"):
        laser.set_power_nw(2500.0)
    with pytest.raises(SettingRejectedError,
                       match=r"repetition rate 50000000 Hz is outside 25-40000000 Hz"):
        laser.set_repetition_rate_hz(50e6)
    _assert_all_used(adapter)  # nothing more was sent


def test_pilas_driver_maps_failures():
    laser, _ = _laser([("ld=1", "error"), ("f?", "")])
    with pytest.raises(InstrumentError, match="switching emission on: expected 'done'"):
        laser.set_emission(True)
    with pytest.raises(InstrumentTimeoutError, match="no answer within 2 s"):
        laser.repetition_rate_hz()


def test_pilas_without_port_is_one_line():
    with pytest.raises(InstrumentError, match="laser: no serial port given"):
        PiLasLaser(port="", full_power_nw=1000.0).connect()


def test_pilas_diode_temperature_measurement():
    with expected_protocol(
        PiLasInstrument, [("ldtemp?", "LD temp.:\t\tgood"), ("ldtemp?", "LD temp.:\t\tbad")],
    ) as inst:
        assert inst.diode_temperature_ok is True
        assert inst.diode_temperature_ok is False
