"""Simulated and real instruments refuse the same values, with the same error and message.

The real drivers run against their vendor-boundary fakes (loopback JSON-RPC server, pylablib
autospecs, Swabian SDK fake, pymeasure protocol adapter); the simulated ones on a simulated rig.
Each value is refused by both with :class:`SettingRejectedError` and one identical line, from
the one declaration in :mod:`drivers.limits`; values inside the declared range pass both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from attodry_fake import FakeAttoDry
from pymeasure.adapters import ProtocolAdapter
from test_lasers import VERSION

from cryoscope.backends import build_rig
from cryoscope.config import load_config
from cryoscope.rig import Rig
from drivers.andor import AndorCamera, AndorSpectrograph
from drivers.attodry import AttoDryNetworkCryostat
from drivers.interfaces import ReadMode, Readout, SettingRejectedError, Track
from drivers.kinesis import KinesisRotationStage
from drivers.limits import PILAS, SIMULATED_LASER
from drivers.pilas import PiLasLaser
from drivers.swabian import SwabianTimeTagger

NAN = math.nan


@pytest.fixture
def sim() -> Iterator[Rig]:
    rig = build_rig(load_config())
    for instrument in rig.instruments().values():
        instrument.connect()
    yield rig
    rig.close()


def _same_refusal(sim_call: Callable[[], Any], real_call: Callable[[], Any]) -> str:
    with pytest.raises(SettingRejectedError) as simulated:
        sim_call()
    with pytest.raises(SettingRejectedError) as real:
        real_call()
    assert str(simulated.value) == str(real.value)
    assert "\n" not in str(real.value)
    return str(real.value)


def test_cryostat_setpoint(sim: Rig, server: FakeAttoDry):
    with AttoDryNetworkCryostat("127.0.0.1", server.port, timeout_s=2.0) as real:
        for value in (1.0, 0.0, 320.5, NAN, math.inf):
            message = _same_refusal(lambda v=value: sim.cryostat.set_setpoint_k(v),
                                    lambda v=value: real.set_setpoint_k(v))
            assert message.startswith("cryostat: setpoint ")
        for value in (1.5, 4.0, 320.0):
            sim.cryostat.set_setpoint_k(value)
            real.set_setpoint_k(value)
            assert real.setpoint_k() == pytest.approx(value)


def test_stage_velocity_and_acceleration(sim: Rig, motor_class: Any):
    with KinesisRotationStage("27000123") as real:
        for velocity, acceleration in ((0.0, 5.0), (25.5, 5.0), (10.0, 0.0), (10.0, 26.0),
                                       (NAN, 5.0)):
            _same_refusal(lambda v=velocity, a=acceleration: sim.stage.set_velocity(v, a),
                          lambda v=velocity, a=acceleration: real.set_velocity(v, a))
        sim.stage.set_velocity(25.0, 25.0)
        real.set_velocity(25.0, 25.0)
    motor_class.return_value.setup_velocity.assert_called_once_with(acceleration=25.0,
                                                                    max_velocity=25.0)


def test_camera_settings(sim: Rig, camera_class: Any):
    out_of_order = Readout(ReadMode.TRACKS, (Track("H", 530, 550), Track("V", 470, 490)))
    overlapping = Readout(ReadMode.TRACKS, (Track("V", 470, 540), Track("H", 530, 550)))
    with AndorCamera() as real:
        refused: list[Callable[[Any], Any]] = [
            lambda cam: cam.set_exposure_s(1e-6),
            lambda cam: cam.set_exposure_s(4000.0),
            lambda cam: cam.set_exposure_s(NAN),
            lambda cam: cam.set_cooling(True, 25.0),
            lambda cam: cam.set_cooling(True, -120.0),
            lambda cam: cam.set_em_gain(1001, advanced=True),
            lambda cam: cam.set_em_gain(301),
            lambda cam: cam.set_readout(out_of_order),
            lambda cam: cam.set_readout(overlapping),
            lambda cam: cam.set_readout(Readout(ReadMode.TRACKS, ())),
            lambda cam: cam.start_series(0),
            lambda cam: cam.start_series(10**9),
        ]
        for call in refused:
            _same_refusal(lambda c=call: c(sim.camera), lambda c=call: c(real))
        for cam in (sim.camera, real):
            cam.set_exposure_s(1e-5)
            cam.set_cooling(True, 20.0)
            cam.set_readout(Readout(ReadMode.TRACKS, (Track("V", 470, 490),
                                                      Track("H", 490, 510))))


def test_spectrograph_center_wavelength(sim: Rig, spectrograph_class: Any):
    with AndorSpectrograph() as real:
        for value in (150.0, 1300.0, NAN):
            _same_refusal(lambda v=value: sim.spectrograph.set_center_wavelength_nm(v),
                          lambda v=value: real.set_center_wavelength_nm(v))


def test_tagger_inputs_and_trigger_level(sim: Rig, sdk: Any):
    with SwabianTimeTagger() as real:
        assert list(real.input_channels()) == list(sim.tagger.input_channels())
        for level in (-0.1, 2.6, NAN):
            _same_refusal(lambda v=level: sim.tagger.set_trigger_level_v(1, v),
                          lambda v=level: real.set_trigger_level_v(1, v))
        for cam in (sim.tagger, real):
            with pytest.raises(SettingRejectedError):
                cam.set_trigger_level_v(9, 0.5)


def test_lasers_refuse_outside_their_own_models_ranges(sim: Rig):
    """The simulated laser and the PiLas are different models: each refuses what its own
    declaration excludes, with the same error type and wording."""
    real = PiLasLaser(port="", full_power_nw=2000.0, adapter=ProtocolAdapter(VERSION))
    real.connect()
    for limits, laser in ((SIMULATED_LASER, sim.laser), (PILAS, real)):
        for rate in (limits.repetition_rate_hz.low / 2, limits.repetition_rate_hz.high * 1.01):
            with pytest.raises(SettingRejectedError) as err:
                laser.set_repetition_rate_hz(rate)
            assert str(err.value) == f"laser: {limits.repetition_rate_hz.problem(rate)}"
