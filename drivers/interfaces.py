"""Abstract instrument interfaces of the cryoscope microscope.

One abstract base class per instrument kind. Real drivers (one module per instrument in this
package) and the simulated backends in ``sim_hardware`` implement them; the acquisition core in
``cryoscope`` only ever talks to these classes.

Conventions
-----------
* Units are part of the names: ``temperature_k``, ``exposure_s``, ``angle_deg``,
  ``wavelength_nm``, ``rate_hz``, ``power_nw``, timestamps in integer picoseconds (``_ps``).
* Every operation the acquisition loop needs is non-blocking: start a camera series and poll for
  frames, start a stage move and poll :meth:`RotationStage.is_moving`, read the time-tag stream in
  blocks. Waiting goes through a :class:`Clock`, so a simulated rig can run faster than real time.
* Every failure is an :class:`InstrumentError` (or a subclass) carrying the instrument's name;
  its ``str()`` is one line, fit to be shown to a user.
* Every instrument is a context manager: ``with SomeDriver(...) as dev:`` connects and closes.
"""

from __future__ import annotations

import dataclasses
import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

__all__ = [
    "Camera",
    "CameraStatus",
    "Clock",
    "CoolingStatus",
    "Cryostat",
    "CryostatStatus",
    "FrameBlock",
    "GratingInfo",
    "Identity",
    "Instrument",
    "InstrumentError",
    "InstrumentTimeoutError",
    "LaserStatus",
    "NotConnectedError",
    "NotSupportedError",
    "PulsedLaser",
    "ReadMode",
    "Readout",
    "RotationStage",
    "SdkMissingError",
    "SettingRejectedError",
    "Spectrograph",
    "SpectrographStatus",
    "StageStatus",
    "TagBlock",
    "TagEventType",
    "TaggerStatus",
    "TimeTagger",
    "Track",
]


# ---------------------------------------------------------------------------------------------
# Errors


class InstrumentError(Exception):
    """Any failure of an instrument. ``str(err)`` is ``"<instrument>: <message>"`` on one line."""

    def __init__(self, instrument: str, message: str) -> None:
        self.instrument = instrument
        self.message = " ".join(str(message).split())
        super().__init__(f"{instrument}: {self.message}")


class NotConnectedError(InstrumentError):
    """The instrument was used before :meth:`Instrument.connect` or after
    :meth:`Instrument.close`."""


class SdkMissingError(InstrumentError):
    """The vendor library needed by a real driver is not installed or cannot be loaded."""


class InstrumentTimeoutError(InstrumentError):
    """The instrument did not answer or finish within its timeout."""


class SettingRejectedError(InstrumentError):
    """A setting was refused (out of range, or unsafe in the present state)."""


class NotSupportedError(InstrumentError):
    """The instrument (or its remote interface) cannot do what was asked."""


# ---------------------------------------------------------------------------------------------
# Values that cross the boundary


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an instrument says it is."""

    vendor: str
    model: str
    serial: str
    firmware: str


class _Status:
    """Mixin: every status is a frozen dataclass that can be flattened for logs and files."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class CryostatStatus(_Status):
    """``pressure_mbar`` is the sample-space pressure; ``inlet_pressure_mbar`` the cryostat
    inlet's (attoDRYLib's only gauge). Either is None where the control path cannot read it."""

    sample_temperature_k: float
    setpoint_k: float
    controlling: bool
    pressure_mbar: float | None = None
    inlet_pressure_mbar: float | None = None


@dataclass(frozen=True, slots=True)
class LaserStatus(_Status):
    emission_on: bool
    repetition_rate_hz: float
    power_nw: float
    wavelength_nm: float


@dataclass(frozen=True, slots=True)
class StageStatus(_Status):
    angle_deg: float
    moving: bool
    homed: bool


class CoolingStatus(enum.StrEnum):
    """EMCCD sensor cooling state, named as pylablib's ``get_temperature_status`` names it."""

    OFF = "off"
    NOT_REACHED = "not_reached"
    NOT_STABILIZED = "not_stabilized"
    STABILIZED = "stabilized"
    DRIFTED = "drifted"


@dataclass(frozen=True, slots=True)
class CameraStatus(_Status):
    temperature_c: float
    cooling: CoolingStatus
    em_gain: int
    exposure_s: float
    acquiring: bool
    frames_acquired: int


@dataclass(frozen=True, slots=True)
class SpectrographStatus(_Status):
    grating: int
    lines_per_mm: float
    center_wavelength_nm: float


@dataclass(frozen=True, slots=True)
class TaggerStatus(_Status):
    streaming: bool
    conditional_filter: bool
    overflows: int


@dataclass(frozen=True, slots=True)
class GratingInfo:
    """One grating of a spectrograph turret (1-based ``index``)."""

    index: int
    lines_per_mm: float
    blaze: str


class ReadMode(enum.StrEnum):
    """Camera readout: binned tracks (one spectrum per track) or the full image."""

    TRACKS = "tracks"
    IMAGE = "image"


@dataclass(frozen=True, slots=True)
class Track:
    """A band of sensor rows ``[row_start, row_stop)`` binned into one spectrum."""

    name: str
    row_start: int
    row_stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.row_start < self.row_stop:
            raise ValueError(
                f"track {self.name!r}: rows [{self.row_start}, {self.row_stop}) are not a "
                "non-empty range of non-negative rows"
            )


@dataclass(frozen=True, slots=True)
class Readout:
    """How the camera reads its sensor. ``tracks`` is used in ``TRACKS`` mode only."""

    mode: ReadMode = ReadMode.TRACKS
    tracks: tuple[Track, ...] = field(default_factory=tuple)

    def frame_shape(self, sensor_shape: tuple[int, int]) -> tuple[int, int]:
        """Shape of one frame: ``(tracks, columns)`` or ``(rows, columns)``."""
        rows, columns = sensor_shape
        if self.mode is ReadMode.IMAGE:
            return rows, columns
        return len(self.tracks), columns


@dataclass(frozen=True, slots=True)
class FrameBlock:
    """Frames read from a running series.

    ``frames`` has shape ``[n, *frame_shape]`` (uint16 counts); ``first_index`` is the 0-based
    index of ``frames[0]`` within the series, and the frames are consecutive. ``lost`` are the
    series indices of frames the camera lost (buffer overrun) since the previous block: they
    were exposed, but their data is gone.
    """

    first_index: int
    frames: npt.NDArray[np.uint16]
    lost: tuple[int, ...] = ()

    def __len__(self) -> int:
        return int(self.frames.shape[0])


class TagEventType(enum.IntEnum):
    """Event types of a time-tag stream, numbered as Swabian's ``TagType``."""

    TIME_TAG = 0
    ERROR = 1
    OVERFLOW_BEGIN = 2
    OVERFLOW_END = 3
    MISSED_EVENTS = 4


@dataclass(frozen=True, slots=True)
class TagBlock:
    """A block of the time-tag stream, as the Swabian SDK delivers it.

    ``timestamps_ps`` int64, ``channels`` int32 (``+n`` rising edge of input n, ``-n`` falling),
    ``event_types`` uint8 (:class:`TagEventType`), ``missed_events`` int32 (non-zero on
    ``MISSED_EVENTS`` entries: how many tags of that channel were lost).
    """

    timestamps_ps: npt.NDArray[np.int64]
    channels: npt.NDArray[np.int32]
    event_types: npt.NDArray[np.uint8]
    missed_events: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.timestamps_ps.shape[0])

    @classmethod
    def empty(cls) -> TagBlock:
        return cls(
            np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.uint8),
            np.empty(0, np.int32),
        )

    @property
    def has_overflow(self) -> bool:
        return bool(np.any(self.event_types != TagEventType.TIME_TAG))


# ---------------------------------------------------------------------------------------------
# Time


class Clock(ABC):
    """The acquisition's sense of time. The core never calls :func:`time.sleep` directly."""

    @abstractmethod
    def now(self) -> float:
        """Seconds since an arbitrary, fixed origin (monotonic)."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (on a simulated rig, advance virtual time)."""


# ---------------------------------------------------------------------------------------------
# Instruments


class Instrument(ABC):
    """Common life cycle of every instrument."""

    #: Human-readable instrument name used in errors and logs (e.g. ``"camera"``).
    name: str = "instrument"

    @abstractmethod
    def connect(self) -> None:
        """Open the connection. Raises :class:`InstrumentError` (``SdkMissingError`` if the
        vendor library is missing)."""

    @abstractmethod
    def close(self) -> None:
        """Leave the instrument safe and release it. Idempotent; never raises for a closed one."""

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    def identity(self) -> Identity: ...

    @abstractmethod
    def status(self) -> _Status:
        """A frozen snapshot of the instrument's state."""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Cryostat(Instrument):
    """A closed-cycle cryostat with sample temperature control."""

    name = "cryostat"

    @abstractmethod
    def sample_temperature_k(self) -> float: ...

    @abstractmethod
    def setpoint_k(self) -> float: ...

    @abstractmethod
    def set_setpoint_k(self, temperature_k: float) -> None: ...

    @abstractmethod
    def is_controlling(self) -> bool:
        """Whether the sample temperature control loop is running."""

    @abstractmethod
    def set_temperature_control(self, on: bool) -> None:
        """Switch sample temperature control on or off (no-op if already so)."""

    @abstractmethod
    def go_to_base_temperature(self) -> None:
        """Start the cool-down to base temperature (non-blocking)."""

    @abstractmethod
    def pressure_mbar(self) -> float | None:
        """Sample-space pressure (mbar), or ``None`` where the cryostat (or its control path)
        has no such gauge."""

    @abstractmethod
    def status(self) -> CryostatStatus: ...


class PulsedLaser(Instrument):
    """A pulsed excitation laser. Its sync output feeds the time tagger."""

    name = "laser"

    #: Whether emission, rate and power can be set remotely (False: front-panel only).
    remote_control: bool = False

    @abstractmethod
    def repetition_rate_hz(self) -> float: ...

    @abstractmethod
    def set_repetition_rate_hz(self, rate_hz: float) -> None:
        """Raises :class:`NotSupportedError` where the laser has no remote control."""

    @abstractmethod
    def power_nw(self) -> float:
        """Average power at the sample (nW)."""

    @abstractmethod
    def set_power_nw(self, power_nw: float) -> None:
        """Raises :class:`NotSupportedError` where the laser has no remote control."""

    @abstractmethod
    def wavelength_nm(self) -> float: ...

    @abstractmethod
    def emission_on(self) -> bool: ...

    @abstractmethod
    def set_emission(self, on: bool) -> None:
        """Raises :class:`NotSupportedError` where the laser has no remote control."""

    @abstractmethod
    def status(self) -> LaserStatus: ...


class RotationStage(Instrument):
    """A motorized rotation mount (holding the half-wave plate). Angles in stage degrees."""

    name = "stage"

    @abstractmethod
    def angle_deg(self) -> float: ...

    @abstractmethod
    def start_move_to(self, angle_deg: float) -> None:
        """Start an absolute move and return at once; poll :meth:`is_moving`."""

    @abstractmethod
    def is_moving(self) -> bool: ...

    @abstractmethod
    def stop(self) -> None:
        """Stop any motion (returns once the stage has been told to stop)."""

    @abstractmethod
    def start_home(self) -> None:
        """Start homing and return at once; poll :meth:`is_moving`."""

    @abstractmethod
    def is_homed(self) -> bool: ...

    @abstractmethod
    def set_velocity(self, max_velocity_deg_s: float, acceleration_deg_s2: float) -> None: ...

    @abstractmethod
    def status(self) -> StageStatus: ...


class Spectrograph(Instrument):
    """An imaging spectrograph in front of the camera."""

    name = "spectrograph"

    @abstractmethod
    def gratings(self) -> Sequence[GratingInfo]: ...

    @abstractmethod
    def grating(self) -> int:
        """The 1-based index of the grating in use."""

    @abstractmethod
    def set_grating(self, index: int) -> None:
        """Select a grating (1-based). Blocks while the turret turns (real: 10–20 s)."""

    @abstractmethod
    def center_wavelength_nm(self) -> float: ...

    @abstractmethod
    def set_center_wavelength_nm(self, wavelength_nm: float) -> None: ...

    @abstractmethod
    def wavelength_calibration_nm(
        self, pixels: int, pixel_width_um: float
    ) -> npt.NDArray[np.float64]:
        """Wavelength (nm) at the center of each of ``pixels`` columns of the camera."""

    @abstractmethod
    def status(self) -> SpectrographStatus: ...


class Camera(Instrument):
    """A (EM)CCD camera behind the spectrograph, run as a kinetic series."""

    name = "camera"

    @abstractmethod
    def sensor_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the sensor."""

    @abstractmethod
    def pixel_width_um(self) -> float: ...

    @abstractmethod
    def temperature_c(self) -> float: ...

    @abstractmethod
    def cooling_status(self) -> CoolingStatus: ...

    @abstractmethod
    def set_cooling(self, on: bool, setpoint_c: float | None = None) -> None: ...

    @abstractmethod
    def em_gain(self) -> int: ...

    @abstractmethod
    def set_em_gain(self, gain: int, advanced: bool = False) -> None:
        """Set the EM gain. Gains above 300 are refused unless ``advanced`` is True."""

    @abstractmethod
    def exposure_s(self) -> float: ...

    @abstractmethod
    def set_exposure_s(self, exposure_s: float) -> None: ...

    @abstractmethod
    def readout(self) -> Readout: ...

    @abstractmethod
    def set_readout(self, readout: Readout) -> None: ...

    @abstractmethod
    def readout_settings(self) -> dict[str, float | str]:
        """Amplifier, readout rate, preamp, vertical shift: whatever the file should record."""

    @abstractmethod
    def start_series(self, frames: int) -> None:
        """Start a kinetic series of ``frames`` exposures (internal trigger) and return."""

    @abstractmethod
    def read_new_frames(self) -> FrameBlock:
        """Frames completed since the last read (possibly none). Never blocks."""

    @abstractmethod
    def is_acquiring(self) -> bool: ...

    @abstractmethod
    def stop_series(self) -> None:
        """Abort a running series (no-op if none runs)."""

    @abstractmethod
    def status(self) -> CameraStatus: ...


class TimeTagger(Instrument):
    """A multi-channel time tagger streaming int64 picosecond timestamps."""

    name = "tagger"

    @abstractmethod
    def input_channels(self) -> Sequence[int]:
        """The physical input numbers (e.g. 1–8)."""

    @abstractmethod
    def set_trigger_level_v(self, channel: int, level_v: float) -> None: ...

    @abstractmethod
    def set_deadtime_ps(self, channel: int, deadtime_ps: int) -> None: ...

    @abstractmethod
    def set_conditional_filter(self, trigger: Sequence[int], filtered: Sequence[int]) -> None:
        """Let through one ``filtered`` tag after each ``trigger`` tag (Swabian semantics)."""

    @abstractmethod
    def clear_conditional_filter(self) -> None: ...

    @abstractmethod
    def start_stream(self, channels: Sequence[int]) -> None:
        """Start streaming the given (signed) channels into an internal buffer."""

    @abstractmethod
    def read_block(self) -> TagBlock:
        """Everything streamed since the last read, in time order. Never blocks."""

    @abstractmethod
    def stop_stream(self) -> None:
        """Stop streaming (no-op if not streaming)."""

    @abstractmethod
    def status(self) -> TaggerStatus: ...
