"""What a run tells the world, and how the world tells it to stop, pause or resume.

The run engine publishes frozen events to listeners (plain callables: the CLI's progress bar,
the GUI's thread-safe queue, a script's function). A listener must return quickly; an exception
in one is logged and does not disturb the run. A :class:`RunControl` carries stop, pause and
resume requests across threads; the engine acts on them once per loop iteration.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from drivers.interfaces import FrameBlock, TagBlock

log = logging.getLogger(__name__)


class RunState(enum.StrEnum):
    """Life cycle of a run. The last three are final and name the file's ``status``."""

    PREPARING = "preparing"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    COMPLETE = "complete"
    ABORTED = "aborted"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: RunState
    message: str = ""


@dataclass(frozen=True, slots=True)
class Progress:
    """Published with every new frame and at least every 0.2 s of rig time (also while paused).
    Times are rig-clock seconds of acquisition (pauses left out); ``remaining_s`` is estimated
    from the measured frame period; ``count_rate_cps`` counts the photons outside the pauses
    (and the clicks missed in overflows) over ``elapsed_s``, as :attr:`RunResult.count_rate_cps`.
    ``photons`` are all recorded so far."""

    frames_done: int
    frames_total: int
    elapsed_s: float
    remaining_s: float
    photons: int
    count_rate_cps: float
    waveplate_deg: float
    stage_moving: bool


@dataclass(frozen=True, slots=True)
class FramesAcquired:
    """New camera frames, with the spectrograph calibration to put them on an axis.

    ``block.first_index`` is the index of the first frame in the file (not in the camera's
    series, which starts again after a pause)."""

    block: FrameBlock
    wavelength_nm: npt.NDArray[np.float64]
    track_names: tuple[str, ...]
    #: Per frame: waveplate angle θ (deg, relative to the waveplate zero) during its exposure.
    waveplate_deg: npt.NDArray[np.float64]
    #: Per frame: whether the stage moved during its exposure.
    stage_moving: npt.NDArray[np.bool_]
    #: Per frame: exposure start (tagger time, ps; −1 while its edge has not arrived).
    start_ps: npt.NDArray[np.int64] | None = None
    #: Per frame: the camera exposure it came from (``/camera/exposure_index``: exposures cut
    #: short by a pause or lost have no frame; None: frame ``k`` is exposure ``k``).
    exposure_index: npt.NDArray[np.int64] | None = None


@dataclass(frozen=True, slots=True)
class TagsAcquired:
    """A block of the time-tag stream as written to the file."""

    block: TagBlock
    channels: dict[str, int]
    laser_period_ps: int
    conditional_filter: bool


@dataclass(frozen=True, slots=True)
class InstrumentReading:
    """A logged instrument value (cryostat temperature, laser power, ...)."""

    instrument: str
    values: dict[str, float | bool | str | None]


RunEvent = StateChanged | Progress | FramesAcquired | TagsAcquired | InstrumentReading
Listener = Callable[[RunEvent], None]


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended."""

    path: Path
    state: RunState
    frames: int
    photons: int
    duration_s: float
    error: str = ""
    #: APD clicks the time tagger missed in its overflows (not in ``photons``)
    missed_photons: int = 0
    #: of ``photons``: those recorded while the run was paused (kept in the file)
    paused_photons: int = 0

    @property
    def count_rate_cps(self) -> float:
        """The APD count rate over the run's time with the pauses left out (``duration_s``):
        the photons recorded outside the pauses plus the clicks missed in tagger overflows —
        as :meth:`cryoscope.datafile.Measurement.count_rate_cps` counts the file."""
        total = self.photons - self.paused_photons + self.missed_photons
        return total / self.duration_s if self.duration_s > 0 else 0.0


class RunControl:
    """Thread-safe stop, pause and resume requests for a run."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._reason = ""

    def request_stop(self, reason: str = "stop requested") -> None:
        self._reason = reason
        self._stop.set()

    def request_pause(self) -> None:
        """Pause the acquisition (camera stopped, waveplate still, the stream kept) until
        :meth:`request_resume`."""
        self._pause.set()

    def request_resume(self) -> None:
        self._pause.clear()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def pause_requested(self) -> bool:
        return self._pause.is_set()

    @property
    def reason(self) -> str:
        return self._reason


class Publisher:
    """Delivers events to listeners, isolating the run from their failures."""

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self._listeners = list(listeners)

    def __call__(self, event: RunEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a run listener failed on %s", type(event).__name__)
