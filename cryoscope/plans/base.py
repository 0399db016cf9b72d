"""What a plan is: a small object that says what to do; the run engine does the rest.

The engine (:mod:`cryoscope.engine`) owns the output file, the time-tag stream, the camera
series, pause and resume, the instrument log, safety and the final status. A plan declares its
parameters (a pydantic model), the waveplate angle to start at, the frames it wants, and what to
do on each turn of the engine's loop (:meth:`Plan.step`, e.g. turn the waveplate); its
plan-specific payload goes into the file's ``plan`` attribute.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, ClassVar, Protocol

from cryoscope.config import Config, PlanParameters

__all__ = ["Plan", "PlanContext", "PlanParameters"]


class PlanContext(Protocol):
    """What the engine offers a plan on each step."""

    @property
    def active_s(self) -> float:
        """Acquisition time since the series started, pauses left out (rig clock, s)."""

    @property
    def stage_moving(self) -> bool:
        """Whether a waveplate move the plan started is still under way."""

    def move_waveplate(self, theta_deg: float) -> None:
        """Start a waveplate move to θ (relative to the waveplate zero); logged in the file."""

    def warn_once(self, key: str, message: str) -> None:
        """Log a warning once per run."""


class Plan(ABC):
    """A measurement plan. Subclasses set :attr:`name`, :attr:`title`, :attr:`Parameters` and
    override :meth:`defaults`, :meth:`start_theta_deg` and :meth:`step` as they need."""

    name: ClassVar[str]
    title: ClassVar[str]
    Parameters: ClassVar[type[PlanParameters]]

    def __init__(self, params: PlanParameters) -> None:
        if not isinstance(params, self.Parameters):
            raise TypeError(f"{self.name} needs {self.Parameters.__name__}, got "
                            f"{type(params).__name__}")
        self.params = params

    @classmethod
    def defaults(cls, config: Config) -> PlanParameters:
        """The plan's parameters as the configuration sets them."""
        return cls.Parameters()

    @property
    def frames(self) -> int:
        return self.params.frames

    @property
    def exposure_s(self) -> float:
        return self.params.exposure_s

    def start_theta_deg(self) -> float | None:
        """Waveplate angle θ the stage reaches before the stream starts (None: as it is)."""
        return None

    def step(self, ctx: PlanContext) -> None:  # noqa: B027 - a plan without steps is valid
        """Called on every turn of the loop while acquiring (not while paused)."""

    def payload(self) -> dict[str, Any]:
        """The plan's name and parameters, written to the file's ``plan`` attribute."""
        return {"name": self.name, **self.params.model_dump()}
