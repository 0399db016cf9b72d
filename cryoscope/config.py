"""The configuration of a cryoscope rig and its measurement: TOML validated with pydantic.

``config/simulated.toml`` is the default; ``config/lab.toml`` documents the real rig. Unknown or
invalid keys are errors that name the key and the value (:class:`ConfigError`), and so is
everything the run would die on or the instruments would refuse: NaN and infinity, values beyond
sensible ceilings, empty lists, and values outside the instruments' ranges, which are read from
their one declaration in :mod:`drivers.limits` (``docs/limits.md``).
"""

from __future__ import annotations

import enum
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from drivers.limits import (
    ATTODRY800,
    IXON_ULTRA_888,
    KYMERA_328I,
    LASERS,
    PRM1_Z8,
    TIME_TAGGER_20,
    SettingRange,
    track_layout_problem,
)
from sim_hardware.faults import FAULT_KINDS
from sim_hardware.params import OpticsParams, SampleParams

__all__ = [
    "Backend",
    "CameraConfig",
    "ChannelsConfig",
    "Config",
    "ConfigError",
    "CryostatConfig",
    "FaultConfig",
    "InterlocksConfig",
    "LaserConfig",
    "MeasurementConfig",
    "PlanConfig",
    "PlanParameters",
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


class _BadValue(ValueError):
    """A refused value whose key is known where it is found (cross-field and whole-file
    checks); :func:`_describe` names ``key`` and ``value``."""

    def __init__(self, key: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.key, self.value, self.message = key, value, message


def _within(limit: SettingRange) -> AfterValidator:
    """A field validator refusing what the instrument declaration ``limit`` refuses."""

    def check(value: float) -> float:
        problem = limit.problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _first_non_finite(data: Any, key: str = "") -> tuple[str, float] | None:
    """The dotted key and value of the first NaN or infinite number in parsed TOML."""
    if isinstance(data, float) and not math.isfinite(data):
        return key, data
    items: Any = ()
    if isinstance(data, dict):
        items = ((f"{key}.{k}" if key else str(k), v) for k, v in data.items())
    elif isinstance(data, list | tuple):
        items = ((f"{key}[{i}]", v) for i, v in enumerate(data))
    for sub_key, value in items:
        found = _first_non_finite(value, sub_key)
        if found is not None:
            return found
    return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(enum.StrEnum):
    SIMULATED = "simulated"
    HARDWARE = "hardware"


class RigConfig(_Section):
    backend: Backend = Backend.SIMULATED
    name: str = "cryoscope"


class FaultConfig(_Section):
    """``[[simulation.faults]]``: a fault the simulated rig injects (``sim_hardware.faults``)."""

    instrument: Literal["camera", "stage", "tagger", "laser", "cryostat"]
    kind: str
    #: seconds of (virtual) time after the camera's first exposure
    at_s: Annotated[float, Field(ge=0, le=1e7)] = 0.0

    @model_validator(mode="after")
    def _known_kind(self) -> FaultConfig:
        kinds = FAULT_KINDS[self.instrument]
        if self.kind not in kinds:
            raise _BadValue("simulation.faults.kind", self.kind,
                            f"no {self.instrument} fault {self.kind!r} (kinds: "
                            f"{', '.join(kinds)})")
        return self


class SimulationConfig(_Section):
    speed: Literal["max"] | Annotated[float, Field(gt=0, le=1e6)] = "max"
    #: Stored as an int64 in every file, and numpy seeds are non-negative.
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    faults: tuple[FaultConfig, ...] = ()

    @property
    def speed_factor(self) -> float | None:
        """Virtual seconds per wall second, or None for as fast as possible."""
        return None if self.speed == "max" else float(self.speed)


#: An input of the Time Tagger 20 (both the real and the simulated tagger are one).
ChannelNumber = Annotated[int, _within(TIME_TAGGER_20.inputs)]


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
    trigger_level_v: Annotated[float, _within(TIME_TAGGER_20.trigger_level_v)] = 0.5
    apd_deadtime_ps: Annotated[int, Field(ge=0, le=1_000_000_000)] = 6000
    serial: str = ""
    #: Events of the stream buffer (~17 bytes each in the SDK and the simulator).
    buffer_tags: Annotated[int, Field(gt=0, le=100_000_000)] = 4_000_000
    self_test_s: Annotated[float, Field(gt=0, le=10)] = 0.2


class LaserConfig(_Section):
    model: Literal["simulated", "epl", "pilas"] = "simulated"
    port: str = ""
    #: Within the model's range (``drivers.limits.LASERS``), checked below.
    repetition_rate_hz: float = 1e6
    power_nw: float = 300.0
    wavelength_nm: Annotated[float, Field(ge=200, le=2000)] = 475.0
    pulse_width_ps: Annotated[float, Field(gt=0, le=1e6)] = 50.0
    emission_off_after_run: bool = False
    full_power_nw: Annotated[float, Field(gt=0, le=1e9)] = 1000.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    #: Whether emission, rate and power are set remotely. Absent: the model's own (the EPL-475
    #: is front-panel only, the PiLas remote); ``false`` makes the simulated laser front-panel
    #: only, like the lab's EPL-475.
    remote_control: bool | None = None

    @property
    def takes_remote_settings(self) -> bool:
        """``remote_control``, or the model's own where it is absent."""
        return self.model != "epl" if self.remote_control is None else self.remote_control

    @model_validator(mode="after")
    def _model_limits(self) -> LaserConfig:
        limits = LASERS[self.model]
        for key in ("repetition_rate_hz", "power_nw"):
            value = getattr(self, key)
            problem = getattr(limits, key).problem(value)
            if problem is not None:
                raise _BadValue(f"laser.{key}", value, f"{problem} ({limits.model})")
        if self.model == "pilas" and self.power_nw > self.full_power_nw:
            raise _BadValue("laser.power_nw", self.power_nw,
                            f"power {self.power_nw:g} nW exceeds full_power_nw "
                            f"({self.full_power_nw:g} nW), the PiLas's power at full tuning")
        if self.model == "epl" and self.remote_control:
            raise _BadValue("laser.remote_control", self.remote_control,
                            "the EPL-475 has no remote control (front panel only)")
        if self.model == "pilas" and self.remote_control is False:
            raise _BadValue("laser.remote_control", self.remote_control,
                            "the PiLas is always remote-controlled")
        return self


class CryostatConfig(_Section):
    connection: Literal["simulated", "network", "dll"] = "simulated"
    host: str = ""
    port: Annotated[int, Field(gt=0, lt=65536)] = 9090
    password: str = ""
    com_port: str = ""
    dll_path: str = ""
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    target_temperature_k: Annotated[float, _within(ATTODRY800.setpoint_k)] = 4.0
    control_temperature: bool = True


Angle = Annotated[float, Field(ge=-360, le=360)]


class StageConfig(_Section):
    serial: str = ""
    waveplate_zero_deg: Angle = 0.0
    max_velocity_deg_s: Annotated[float, _within(PRM1_Z8.max_velocity_deg_s)] = 10.0
    acceleration_deg_s2: Annotated[float, _within(PRM1_Z8.acceleration_deg_s2)] = 10.0
    home_on_connect: bool = True
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0


LinesPerMm = Annotated[float, Field(gt=0, le=10_000)]


class SpectrographConfig(_Section):
    index: Annotated[int, Field(ge=0)] = 0
    grating_lines_per_mm: LinesPerMm = 600.0
    center_wavelength_nm: Annotated[float, _within(KYMERA_328I.center_wavelength_nm)] = 580.0
    focal_length_mm: Annotated[float, Field(gt=0, le=10_000)] = 328.0
    inclusion_angle_deg: Annotated[float, Field(ge=0, lt=90)] = 30.0
    gratings_lines_per_mm: Annotated[tuple[LinesPerMm, ...], Field(min_length=1)] = (
        150.0, 600.0, 1200.0)


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
    em_gain: Annotated[int, _within(IXON_ULTRA_888.em_gain)] = 100
    advanced_em_gain: bool = False
    temperature_c: Annotated[float, _within(IXON_ULTRA_888.cooling_setpoint_c)] = -80.0
    wait_for_cooling: bool = False
    readout: Literal["tracks", "image"] = "tracks"
    tracks: tuple[TrackConfig, ...] = (
        TrackConfig(name="V", row_start=470, row_stop=490),
        TrackConfig(name="H", row_start=530, row_stop=550),
    )
    sensor_rows: Annotated[int, Field(gt=0, le=8192)] = 1024
    sensor_columns: Annotated[int, Field(gt=0, le=8192)] = 1024
    pixel_width_um: Annotated[float, Field(gt=0, le=100)] = 13.0
    readout_rate_mhz: Annotated[float, Field(gt=0, le=1000)] = 30.0
    frame_transfer: bool = True

    @model_validator(mode="after")
    def _tracks_fit(self) -> CameraConfig:
        if self.readout == "tracks" or self.tracks:
            spans = [(t.row_start, t.row_stop) for t in self.tracks]
            problem = track_layout_problem(spans, self.sensor_rows)
            if problem is not None:
                raise _BadValue("camera.tracks", spans, f"{problem} (Andor random-track "
                                "readout)")
        names = [t.name for t in self.tracks]
        if len(set(names)) != len(names):
            raise _BadValue("camera.tracks", names, "track names must be distinct")
        problem = IXON_ULTRA_888.em_gain_problem(self.em_gain, self.advanced_em_gain)
        if problem is not None:
            raise _BadValue("camera.em_gain", self.em_gain, f"em_gain = {self.em_gain}: {problem}")
        return self


class PlanParameters(_Section):
    """Parameters every plan has (``cryoscope.plans``): a camera series of ``frames`` ×
    ``exposure_s``, the engine's poll interval and the instrument-log interval."""

    frames: Annotated[int, _within(IXON_ULTRA_888.series_frames)] = 400
    exposure_s: Annotated[float, _within(IXON_ULTRA_888.exposure_s)] = 0.5
    poll_interval_s: Annotated[float, Field(gt=0, le=1)] = 0.05
    cryostat_log_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0


class PlanConfig(PlanParameters):
    """``[plan]``: the polarization series' parameters (the paper's measurement); other plans
    take what they share with it from here."""

    waveplate_step_deg: Angle = 5.0
    waveplate_dwell_s: Annotated[float, Field(gt=0, le=86_400)] = 10.0
    waveplate_start_deg: Angle = 0.0


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
    #: APD count rate the free-space check before a run assumes (counts/s per APD)
    expected_apd_rate_cps: Annotated[float, Field(ge=0, le=1e8)] = 50_000.0


class InterlocksConfig(_Section):
    """``[interlocks]``: what stops or pauses a run to protect the sample and the camera."""

    #: sample temperature above which the run pauses (K; 0 = no temperature interlock)
    sample_temperature_max_k: Annotated[float, Field(ge=0, le=400)] = 10.0
    #: time the temperature must stay at or below the limit before the run resumes (s)
    temperature_settle_s: Annotated[float, Field(ge=0, le=86_400)] = 30.0
    #: longest pause for the temperature before the run ends (s)
    temperature_max_wait_s: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    #: a frame pixel at or above this is near saturation (ADU; the ADC's top is 65535)
    saturation_adu: Annotated[int, Field(gt=0, le=65_535)] = 60_000
    #: EM gain from which a frame near saturation triggers the interlock (0 = any gain)
    saturation_em_gain: Annotated[int, _within(IXON_ULTRA_888.em_gain)] = 50
    #: "lower_gain" (halve the EM gain and go on) or "stop" (end the series)
    saturation_action: Literal["lower_gain", "stop"] = "lower_gain"
    #: no laser sync pulse for this long ends the run, naming the laser (s)
    laser_sync_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 2.0


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
    interlocks: InterlocksConfig = InterlocksConfig()
    sample: SampleParams = SampleParams()
    optics: OpticsParams = OpticsParams()

    @model_validator(mode="before")
    @classmethod
    def _finite_numbers(cls, data: Any) -> Any:
        found = _first_non_finite(data)
        if found is not None:
            raise _BadValue(found[0], found[1], "NaN and infinity are not allowed")
        return data

    @field_validator("sample", "optics", mode="before")
    @classmethod
    def _lists_to_tuples(cls, value: Any) -> Any:
        return _tuples(value)

    @model_validator(mode="after")
    def _has_an_emitter(self) -> Config:
        if not self.sample.emitters:
            raise _BadValue("sample.emitters", [], "at least one emitter is needed")
        return self

    @model_validator(mode="after")
    def _interlock_above_setpoint(self) -> Config:
        limit = self.interlocks.sample_temperature_max_k
        if 0 < limit <= self.cryostat.target_temperature_k:
            raise _BadValue("interlocks.sample_temperature_max_k", limit,
                            f"the temperature interlock at {limit:g} K would hold every run: "
                            f"it must be above cryostat.target_temperature_k "
                            f"({self.cryostat.target_temperature_k:g} K), or 0 (off)")
        return self

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
    bad = first.get("ctx", {}).get("error")
    if isinstance(bad, _BadValue):
        return f"invalid value for '{bad.key}': {bad.message} (got {bad.value!r})"
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
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{file}: not UTF-8 text: byte 0x{raw[exc.start]:02x} on line "
                          f"{line}") from None
    return parse_config(text, str(file))
