"""A simulated night: particles drawn from a population, each measured into its own file.

:class:`Population` is the population description (``config/population.toml``, validated with
pydantic; unknown keys are errors). :func:`draw_particles` draws the particles' parameters;
:func:`simulate_night` measures each through the real plan on the simulated rig
(:func:`cryoscope.api.measure`) into ``DIR/particle-NNN.h5`` and writes the drawn parameters to
``DIR/truth.parquet`` (one row per particle; columns in ``docs/population.md``).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cryoscope.config import Config, ConfigError, PlanConfig, load_config
from sim_hardware.params import EmitterParams

__all__ = ["Population", "default_population_path", "draw_particles", "load_population",
           "simulate_night"]

log = logging.getLogger(__name__)

Range = tuple[float, float]


def _ordered(value: Range, name: str) -> None:
    if value[0] > value[1]:
        raise ValueError(f"{name} must be [low, high] with low <= high, got {list(value)}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _ranges(self) -> _Section:
        for name, value in self:
            if isinstance(value, tuple):
                _ordered(value, name)
        return self


class ZplDistribution(_Section):
    mean_ev: Annotated[float, Field(gt=1.0, lt=4.0)] = 2.15
    sd_ev: Annotated[float, Field(ge=0)] = 0.02
    min_ev: Annotated[float, Field(gt=1.0, lt=4.0)] = 2.10
    max_ev: Annotated[float, Field(gt=1.0, lt=4.0)] = 2.20

    @model_validator(mode="after")
    def _window(self) -> ZplDistribution:
        if not self.min_ev <= self.mean_ev <= self.max_ev:
            raise ValueError(f"zpl: need min_ev <= mean_ev <= max_ev, got {self.min_ev}, "
                             f"{self.mean_ev}, {self.max_ev}")
        return self


class SpacingDistribution(_Section):
    min_mev: Annotated[float, Field(ge=0)] = 8.0
    max_mev: Annotated[float, Field(ge=0)] = 70.0

    @model_validator(mode="after")
    def _window(self) -> SpacingDistribution:
        _ordered((self.min_mev, self.max_mev), "spacing [min_mev, max_mev]")
        return self


class BrightnessDistribution(_Section):
    ratio: tuple[Annotated[float, Field(gt=0, le=1)], Annotated[float, Field(gt=0, le=1)]] = (
        0.3, 0.8)


class LifetimeDistribution(_Section):
    short_ns: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = (1.0, 2.0)
    long_monomer_ns: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = (
        40.0, 160.0)
    long_molecule_ns: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = (
        40.0, 120.0)
    long_weight: tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]
                       ] = (0.5, 0.8)


class AngleDistribution(_Section):
    polarization_degree: tuple[Annotated[float, Field(ge=0, le=1)],
                               Annotated[float, Field(ge=0, le=1)]] = (0.5, 0.9)


class ChargingDistribution(_Section):
    charging_rate_hz: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]] = (
        0.0, 0.05)
    discharging_rate_hz: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]] = (
        0.05, 0.2)


class Population(BaseModel):
    """A population description (``config/population.toml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction_molecules: Annotated[float, Field(ge=0, le=1)] = 0.5
    sample: str = "simulated CdSe/CdS"
    zpl: ZplDistribution = ZplDistribution()
    spacing: SpacingDistribution = SpacingDistribution()
    brightness: BrightnessDistribution = BrightnessDistribution()
    lifetimes: LifetimeDistribution = LifetimeDistribution()
    angles: AngleDistribution = AngleDistribution()
    charging: ChargingDistribution = ChargingDistribution()
    plan: PlanConfig = PlanConfig(frames=60, waveplate_dwell_s=2.5)


def default_population_path() -> Path:
    """``config/population.toml`` of the source tree, or the copy installed with the package."""
    here = Path(__file__).resolve().parent.parent / "config" / "population.toml"
    if here.is_file():
        return here
    return Path(str(resources.files("cryoscope").joinpath("data/population.toml")))


def load_population(path: str | Path | None = None) -> Population:
    """Load and validate a population file; :class:`ConfigError` names the bad key."""
    from cryoscope.config import _describe

    file = Path(path) if path is not None else default_population_path()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
        return Population.model_validate(data)
    except FileNotFoundError:
        raise ConfigError(f"population file not found: {file}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{file}: {_describe(exc)}") from None


def _uniform(rng: np.random.Generator, value: Range) -> float:
    return float(rng.uniform(value[0], value[1])) if value[1] > value[0] else float(value[0])


def draw_particles(population: Population, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """The truth of ``n`` particles: one dict per particle (the truth table's columns, without
    ``file``). A molecule's first center is its brightest (branching 1)."""
    rng = np.random.default_rng(seed)
    z = population.zpl
    particles = []
    for i in range(n):
        molecule = bool(rng.random() < population.fraction_molecules)
        zpl = [float(np.clip(rng.normal(z.mean_ev, z.sd_ev), z.min_ev, z.max_ev))]
        branching = [1.0]
        if molecule:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            spacing = sign * _uniform(rng, (population.spacing.min_mev,
                                            population.spacing.max_mev)) / 1000.0
            zpl.append(zpl[0] + spacing)
            branching.append(_uniform(rng, population.brightness.ratio))
        centers = len(zpl)
        lt = population.lifetimes
        short = _uniform(rng, lt.short_ns)
        long = _uniform(rng, lt.long_molecule_ns if molecule else lt.long_monomer_ns)
        weight = _uniform(rng, lt.long_weight)
        particles.append({
            "particle": f"P{i + 1:03d}",
            "sample_type": "molecule" if molecule else "monomer",
            "n_centers": centers,
            "zpl_ev": zpl,
            "branching": branching,
            "dipole_angle_deg": [float(rng.uniform(0.0, 180.0)) for _ in range(centers)],
            "polarization_degree": [_uniform(rng, population.angles.polarization_degree)
                                    for _ in range(centers)],
            "lifetimes_ns": [short, long],
            "lifetime_weights": [1.0 - weight, weight],
            "charging_rate_hz": [_uniform(rng, population.charging.charging_rate_hz)
                                 for _ in range(centers)],
            "discharging_rate_hz": [_uniform(rng, population.charging.discharging_rate_hz)
                                    for _ in range(centers)],
            "seed": int(rng.integers(0, 2**31 - 1)),
        })
    return particles


def _emitters(base: EmitterParams, particle: dict[str, Any]) -> list[dict[str, Any]]:
    data = {f.name: getattr(base, f.name) for f in fields(base)}
    return [{**data, "zpl_ev": particle["zpl_ev"][k],
             "dipole_angle_deg": particle["dipole_angle_deg"][k],
             "polarization_degree": particle["polarization_degree"][k],
             "branching": particle["branching"][k],
             "lifetimes_ns": list(particle["lifetimes_ns"]),
             "lifetime_weights": list(particle["lifetime_weights"]),
             "charging_rate_hz": particle["charging_rate_hz"][k],
             "discharging_rate_hz": particle["discharging_rate_hz"][k]}
            for k in range(particle["n_centers"])]


def particle_config(base: Config, population: Population, particle: dict[str, Any],
                    position: str) -> Config:
    """The configuration that measures one drawn particle on the simulated rig."""
    cfg = base.with_overrides("simulation", seed=particle["seed"])
    cfg = cfg.with_overrides("sample", emitters=_emitters(base.sample.emitters[0], particle))
    cfg = cfg.with_overrides("plan", **population.plan.model_dump())
    return cfg.with_overrides("measurement", sample=population.sample,
                              sample_type=particle["sample_type"], particle=particle["particle"],
                              position=position, operator="cryoscope simulate-night",
                              notes="drawn by cryoscope simulate-night; truth in truth.parquet")


def simulate_night(directory: str | Path, n: int, population: Population | None = None, *,
                   seed: int = 0, config: Config | None = None, overwrite: bool = False,
                   progress: Callable[[int, int, Path], None] | None = None) -> pd.DataFrame:
    """Measure ``n`` particles drawn from ``population`` into ``directory`` and write
    ``truth.parquet`` beside them; returns the truth table.

    ``config``: the simulated rig (default ``config/simulated.toml``); its sample's emitters are
    replaced per particle. Raises ``FileExistsError`` before measuring anything if a file exists
    and ``overwrite`` is false.
    """
    from cryoscope.api import measure
    from cryoscope.datafile import OutputExistsError

    pop = population if population is not None else load_population()
    base = config if config is not None else load_config()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    particles = draw_particles(pop, n, seed)
    paths = [out / f"particle-{i + 1:03d}.h5" for i in range(n)]
    truth_path = out / "truth.parquet"
    if not overwrite:
        for path in [*paths, truth_path]:
            if path.exists():
                raise OutputExistsError(path)
    for i, (particle, path) in enumerate(zip(particles, paths, strict=True)):
        cfg = particle_config(base, pop, particle, position=f"simulated grid {i + 1}")
        result = measure(path, cfg, overwrite=overwrite)
        log.info("%s: %s %s, %s, %d photons", path.name, particle["sample_type"],
                 particle["particle"], result.state, result.photons)
        if progress is not None:
            progress(i + 1, n, path)
    truth = pd.DataFrame([{"file": p.name, **particle}
                          for p, particle in zip(paths, particles, strict=True)])
    truth.to_parquet(truth_path, index=False)
    return truth
