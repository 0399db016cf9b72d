"""The plans, registered once: the CLI (``cryoscope run --plan NAME``), the API and the GUI
reach every plan through :data:`PLANS`."""

from __future__ import annotations

from typing import Any

from cryoscope.config import Config, ConfigError, PlanParameters
from cryoscope.plans.base import Plan, PlanContext
from cryoscope.plans.polarization_series import PolarizationSeries
from cryoscope.plans.time_series import TimeSeries

__all__ = ["PLANS", "Plan", "PlanContext", "PlanParameters", "make_plan", "plan_class"]

#: Every plan by name.
PLANS: dict[str, type[Plan]] = {cls.name: cls for cls in (PolarizationSeries, TimeSeries)}


def plan_class(name: str) -> type[Plan]:
    try:
        return PLANS[name]
    except KeyError:
        raise ConfigError(f"unknown plan {name!r} (known: {', '.join(PLANS)})") from None


def make_plan(name: str, config: Config, **values: Any) -> Plan:
    """The plan ``name`` with the configuration's parameters, ``values`` replaced (validated;
    :class:`ConfigError` names the bad parameter)."""
    from pydantic import ValidationError

    cls = plan_class(name)
    base = cls.defaults(config).model_dump()
    try:
        params = cls.Parameters.model_validate({**base, **values})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        shown = "" if isinstance(err.get("input"), dict) else f" (got {err.get('input')!r})"
        raise ConfigError(f"invalid value for 'plan.{where}': {err['msg']}{shown}") from None
    return cls(params)
