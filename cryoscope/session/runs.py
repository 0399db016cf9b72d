"""A plan run on the session's worker thread: the measurement's metadata applied for the run,
the run engine, stop / pause / resume from any thread, count rates from the run's own stream."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryoscope.acquisition import (
    Listener,
    RunControl,
    RunEvent,
    RunResult,
    TagsAcquired,
)
from cryoscope.config import Config
from cryoscope.datafile import OutputClaim
from cryoscope.engine import measurement_for, run_plan
from cryoscope.plans import Plan, make_plan
from cryoscope.rig import Rig
from cryoscope.session.monitors import RateMeter

log = logging.getLogger(__name__)

__all__ = ["PlanRun", "RunRequest"]


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """A run asked for: the plan (parameters validated), the output file (claimed), and the
    ``[measurement]`` values of this run (particle, sample, notes, ...; written to the file's
    ``/measurement``)."""

    plan: Plan
    claim: OutputClaim
    measurement: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    listeners: tuple[Listener, ...] = ()

    @property
    def out(self) -> Path:
        return self.claim.path

    def cancel(self) -> None:
        """Give the output back if the run never began (idempotent: the engine settles the
        claim of a run that ran)."""
        self.claim.settle(began=False, succeeded=False)

    @classmethod
    def build(cls, config: Config, plan: str, out: str | Path, *, overwrite: bool = False,
              measurement: Mapping[str, Any] | None = None, listeners: tuple[Listener, ...] = (),
              **values: Any) -> RunRequest:
        """Validate now (:class:`~cryoscope.config.ConfigError` names the bad value) and claim
        the output (:class:`~cryoscope.datafile.OutputExistsError` when it exists and
        ``overwrite`` is not given; :class:`~cryoscope.datafile.OutputError` otherwise)."""
        chosen = make_plan(plan, config, **values)
        measurement_for(config, measurement)  # validates the values now
        return cls(chosen, OutputClaim(out, overwrite), dict(measurement or {}), listeners)


class PlanRun:
    """Runs one :class:`RunRequest` on the worker thread; :meth:`control` is reachable from any
    thread while it goes."""

    def __init__(self, request: RunRequest, publish: Callable[[RunEvent], None],
                 between_steps: Callable[[], None]) -> None:
        """``publish`` gets every run event; ``between_steps`` is called after each (the
        session polls statuses there when one is due)."""
        self.request = request
        self.control = RunControl()
        self.rates = RateMeter()
        self._publish = publish
        self._between_steps = between_steps

    def run(self, rig: Rig) -> RunResult:
        """The run, with its measurement values (the engine writes them to ``/measurement``)."""
        req = self.request

        def relay(event: RunEvent) -> None:
            if isinstance(event, TagsAcquired):
                self.rates.feed(event.block, rig.clock.now())
            self._publish(event)
            self._between_steps()

        return run_plan(rig, req.plan, req.claim, control=self.control,
                        listeners=[*req.listeners, relay], measurement=req.measurement)
