"""The configuration of a cryoscope rig and its measurement: TOML validated with pydantic.

``config/simulated.toml`` is the default; ``config/lab.toml`` documents the real rig. Unknown or
invalid keys are errors that name the key (:class:`ConfigError`).
"""

from __future__ import annotations

import enum
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim_hardware.params import OpticsParams, SampleParams

__all__ = [
    "Backend",
    "CameraConfig",
    "ChannelsConfig",
    "Config",
    "ConfigError",
    "CryostatConfig",
    "LaserConfig",
    "MeasurementConfig",
    "PlanConfig",
    "RigConfig",
    "SimulationConfig",
    "SpectrographConfig",
    "StageConfig",
    "StorageConfig",
    "TaggerConfig",
    "TrackConfig",
    "default_config_path",
    "load_config",
]


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid. ``str()`` is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(enum.StrEnum):
    SIMULATED = "simulated"
    HARDWARE = "hardware"


class RigConfig(_Section):
    backend: Backend = Backend.SIMULATED
    name: str = "cryoscope"


class SimulationConfig(_Section):
    speed: Literal["max"] | Annotated[float, Field(gt=0)] = "max"
    seed: int = 0

    @property
    def speed_factor(self) -> float | None:
        """Virtual seconds per wall second, or None for as fast as possible."""
        return None if self.speed == "max" else float(self.speed)


ChannelNumber = Annotated[int, Field(ge=1, le=18)]


class ChannelsConfig(_Section):
    apd: ChannelNumber = 1
    laser_sync: ChannelNumber = 2
    camera_fire: ChannelNumber = 3
    stage_motion: ChannelNumber = 4
    apd2: ChannelNumber | None = None
    conditional_filter: bool = True

    @model_validator(mode="after")
    def _distinct(self) -> ChannelsConfig:
        used = [c for c in (self.apd, self.laser_sync, self.camera_fire, self.stage_motion,
                            self.apd2) if c is not None]
        if len(set(used)) != len(used):
            raise ValueError(f"channels must be distinct inputs, got {used}")
        return self

    def as_dict(self) -> dict[str, int]:
        named = {"apd": self.apd, "laser_sync": self.laser_sync,
                 "camera_fire": self.camera_fire, "stage_motion": self.stage_motion}
        if self.apd2 is not None:
            named["apd2"] = self.apd2
        return named


class TaggerConfig(_Section):
    trigger_level_v: Annotated[float, Field(ge=0, le=2.5)] = 0.5
    apd_deadtime_ps: Annotated[int, Field(ge=0)] = 6000
    serial: str = ""
    buffer_tags: Annotated[int, Field(gt=0)] = 4_000_000
    self_test_s: Annotated[float, Field(gt=0, le=10)] = 0.2


class LaserConfig(_Section):
    model: Literal["simulated", "epl", "pilas"] = "simulated"
    port: str = ""
    repetition_rate_hz: Annotated[float, Field(gt=0, le=100e6)] = 1e6
    power_nw: Annotated[float, Field(ge=0)] = 300.0
    wavelength_nm: Annotated[float, Field(gt=0)] = 475.0
    pulse_width_ps: Annotated[float, Field(gt=0)] = 50.0
    emission_off_after_run: bool = False
    full_power_nw: Annotated[float, Field(gt=0)] = 1000.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0


class CryostatConfig(_Section):
    connection: Literal["simulated", "network", "dll"] = "simulated"
    host: str = ""
    port: Annotated[int, Field(gt=0, lt=65536)] = 9090
    password: str = ""
    com_port: str = ""
    dll_path: str = ""
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    target_temperature_k: Annotated[float, Field(gt=0, le=320)] = 4.0
    control_temperature: bool = True


class StageConfig(_Section):
    serial: str = ""
    waveplate_zero_deg: float = 0.0
    max_velocity_deg_s: Annotated[float, Field(gt=0, le=25)] = 10.0
    acceleration_deg_s2: Annotated[float, Field(gt=0, le=25)] = 10.0
    home_on_connect: bool = True
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0


class SpectrographConfig(_Section):
    index: Annotated[int, Field(ge=0)] = 0
    grating_lines_per_mm: Annotated[float, Field(gt=0)] = 600.0
    center_wavelength_nm: Annotated[float, Field(gt=0)] = 580.0
    focal_length_mm: Annotated[float, Field(gt=0)] = 328.0
    inclusion_angle_deg: Annotated[float, Field(ge=0, lt=90)] = 30.0
    gratings_lines_per_mm: tuple[Annotated[float, Field(gt=0)], ...] = (150.0, 600.0, 1200.0)


class TrackConfig(_Section):
    name: str
    row_start: Annotated[int, Field(ge=0)]
    row_stop: Annotated[int, Field(gt=0)]

    @model_validator(mode="after")
    def _ordered(self) -> TrackConfig:
        if self.row_stop <= self.row_start:
            raise ValueError(
                f"track {self.name!r}: row_stop {self.row_stop} must exceed row_start "
                f"{self.row_start}"
            )
        return self


class CameraConfig(_Section):
    index: Annotated[int, Field(ge=0)] = 0
    em_gain: Annotated[int, Field(ge=0, le=1000)] = 100
    advanced_em_gain: bool = False
    temperature_c: Annotated[float, Field(ge=-100, le=30)] = -80.0
    wait_for_cooling: bool = False
    readout: Literal["tracks", "image"] = "tracks"
    tracks: tuple[TrackConfig, ...] = (
        TrackConfig(name="V", row_start=470, row_stop=490),
        TrackConfig(name="H", row_start=530, row_stop=550),
    )
    sensor_rows: Annotated[int, Field(gt=0)] = 1024
    sensor_columns: Annotated[int, Field(gt=0)] = 1024
    pixel_width_um: Annotated[float, Field(gt=0)] = 13.0
    readout_rate_mhz: Annotated[float, Field(gt=0)] = 30.0
    frame_transfer: bool = True

    @model_validator(mode="after")
    def _tracks_fit(self) -> CameraConfig:
        if self.readout == "tracks" and not self.tracks:
            raise ValueError("readout = 'tracks' needs at least one [[camera.tracks]] table")
        for track in self.tracks:
            if track.row_stop > self.sensor_rows:
                raise ValueError(
                    f"track {track.name!r} ends at row {track.row_stop}, beyond the "
                    f"{self.sensor_rows}-row sensor"
                )
        if self.em_gain > 300 and not self.advanced_em_gain:
            raise ValueError(
                f"em_gain = {self.em_gain} exceeds 300 and needs advanced_em_gain = true"
            )
        return self


class PlanConfig(_Section):
    frames: Annotated[int, Field(gt=0)] = 400
    exposure_s: Annotated[float, Field(gt=0, le=3600)] = 0.5
    waveplate_step_deg: float = 5.0
    waveplate_dwell_s: Annotated[float, Field(gt=0)] = 10.0
    waveplate_start_deg: float = 0.0
    poll_interval_s: Annotated[float, Field(gt=0, le=1)] = 0.05
    cryostat_log_interval_s: Annotated[float, Field(gt=0)] = 1.0


class MeasurementConfig(_Section):
    """What is measured and by whom (``/measurement`` of the file; ``docs/population.md``)."""

    sample: str = ""
    sample_type: Literal["monomer", "molecule", "unknown"] = "unknown"
    particle: str = ""
    position: str = ""
    operator: str = ""
    notes: str = ""


class StorageConfig(_Section):
    """How the measurement file stores its bulk datasets (tags and camera frames)."""

    compression: Literal["none", "gzip", "lzf"] = "none"
    compression_level: Annotated[int, Field(ge=0, le=9)] = 4


class Config(BaseModel):
    """A whole configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rig: RigConfig = RigConfig()
    simulation: SimulationConfig = SimulationConfig()
    channels: ChannelsConfig = ChannelsConfig()
    tagger: TaggerConfig = TaggerConfig()
    laser: LaserConfig = LaserConfig()
    cryostat: CryostatConfig = CryostatConfig()
    stage: StageConfig = StageConfig()
    spectrograph: SpectrographConfig = SpectrographConfig()
    camera: CameraConfig = CameraConfig()
    plan: PlanConfig = PlanConfig()
    measurement: MeasurementConfig = MeasurementConfig()
    storage: StorageConfig = StorageConfig()
    sample: SampleParams = SampleParams()
    optics: OpticsParams = OpticsParams()

    @field_validator("sample", "optics", mode="before")
    @classmethod
    def _lists_to_tuples(cls, value: Any) -> Any:
        return _tuples(value)

    def to_toml(self) -> str:
        """The full configuration (defaults included) as TOML text."""
        return tomli_w.dumps(_toml_safe(self.model_dump(mode="json")))

    def with_overrides(self, section: str, **values: Any) -> Config:
        """A copy with some keys of one section replaced, validated again."""
        data = self.model_dump(mode="json")
        data[section] = {**data[section], **values}
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None


def _tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _toml_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_toml_safe(v) for v in value]
    return value


def default_config_path() -> Path:
    """``config/simulated.toml`` of the source tree, or the copy installed with the package."""
    here = Path(__file__).resolve().parent.parent / "config" / "simulated.toml"
    if here.is_file():
        return here
    return Path(str(resources.files("cryoscope").joinpath("data/simulated.toml")))


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"unknown key '{where}'"
    value = first.get("input")
    shown = "" if isinstance(value, dict | list | tuple) else f" (got {value!r})"
    msg = first["msg"].removeprefix("Value error, ")
    return f"invalid value for '{where}': {msg}{shown}" if where else msg


def parse_config(text: str, source: str = "<text>") -> Config:
    """Validate TOML text. Raises :class:`ConfigError` naming the file and the bad key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a configuration file (the default simulated one if ``path`` is None)."""
    file = Path(path) if path is not None else default_config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    return parse_config(text, str(file))
