"""The real rig's instruments, built (not connected) from a configuration.

:mod:`cryoscope.backends` imports this module lazily for ``[rig] backend = "hardware"``,
connects each instrument and applies the configured settings through the interfaces. The driver
modules only
import their vendor libraries when an instrument connects, so building needs no SDK.
"""

from __future__ import annotations

from collections.abc import Callable

from cryoscope.config import Config, ConfigError
from cryoscope.rig import Rig
from drivers.andor import AndorCamera, AndorSpectrograph
from drivers.attodry import AttoDryLibCryostat, AttoDryNetworkCryostat
from drivers.clock import SystemClock
from drivers.epl import EplLaser
from drivers.interfaces import (
    Camera,
    Cryostat,
    Instrument,
    PulsedLaser,
    RotationStage,
    Spectrograph,
    TimeTagger,
)
from drivers.kinesis import KinesisRotationStage
from drivers.pilas import PiLasLaser
from drivers.swabian import SwabianTimeTagger

__all__ = [
    "BUILDERS",
    "build_camera",
    "build_cryostat",
    "build_hardware_rig",
    "build_laser",
    "build_spectrograph",
    "build_stage",
    "build_tagger",
]


def build_cryostat(config: Config) -> Cryostat:
    """The attoDRY800 through its network API or attoDRYLib, as ``cryostat.connection`` says."""
    c = config.cryostat
    if c.connection == "network":
        return AttoDryNetworkCryostat(c.host, c.port, c.password, c.timeout_s)
    if c.connection == "dll":
        return AttoDryLibCryostat(c.com_port, c.dll_path, c.timeout_s)
    raise ConfigError(
        "cryostat.connection = 'simulated' needs rig.backend = 'simulated'; for the real rig "
        "choose 'network' or 'dll'"
    )


def build_laser(config: Config) -> PulsedLaser:
    """The EPL-475 (front-panel settings) or a PiLas (remote control), as ``laser.model`` says."""
    c = config.laser
    if c.model == "epl":
        return EplLaser(c.repetition_rate_hz, c.power_nw, c.wavelength_nm)
    if c.model == "pilas":
        return PiLasLaser(c.port, c.full_power_nw, c.wavelength_nm, c.timeout_s)
    raise ConfigError(
        "laser.model = 'simulated' needs rig.backend = 'simulated'; for the real rig choose "
        "'epl' or 'pilas'"
    )


def build_stage(config: Config) -> RotationStage:
    """The PRM1-Z8 on its KDC101 (``stage.serial``: serial number or serial port path)."""
    return KinesisRotationStage(config.stage.serial, config.stage.timeout_s)


def build_spectrograph(config: Config) -> Spectrograph:
    """The Kymera 328i (``spectrograph.index``: SDK index)."""
    return AndorSpectrograph(config.spectrograph.index)


def build_camera(config: Config) -> Camera:
    """The iXon Ultra 888 (``camera.index``: SDK index)."""
    c = config.camera
    return AndorCamera(c.index, c.temperature_c, c.readout_rate_mhz, c.frame_transfer)


def build_tagger(config: Config) -> TimeTagger:
    """The Time Tagger 20 (``tagger.serial``; empty = the first found)."""
    c = config.tagger
    return SwabianTimeTagger(c.serial, c.buffer_tags, c.self_test_s)


#: One builder per instrument, in connection order.
BUILDERS: dict[str, Callable[[Config], Instrument]] = {
    "cryostat": build_cryostat,
    "laser": build_laser,
    "stage": build_stage,
    "spectrograph": build_spectrograph,
    "camera": build_camera,
    "tagger": build_tagger,
}


def build_hardware_rig(config: Config) -> Rig:
    """All real instruments for ``config``, unconnected, on the wall clock. Raises
    :class:`ConfigError` if the configuration names a simulated cryostat or laser."""
    return Rig(
        config=config,
        clock=SystemClock(),
        cryostat=build_cryostat(config),
        laser=build_laser(config),
        stage=build_stage(config),
        spectrograph=build_spectrograph(config),
        camera=build_camera(config),
        tagger=build_tagger(config),
    )
