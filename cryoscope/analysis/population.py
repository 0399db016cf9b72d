"""The paper's Fig. 3 quantities over a population of particles, from the tables or from truth.

A *cluster* is a spectral state of a particle (a row of ``states.parquet``). Per sample type
(``monomer``, ``molecule``, ``unknown``):

- ``zpl_ev`` / ``zpl_weight`` — the ZPLs of every cluster, each weighted by its share of the
  cluster's ZPL intensity (Fig. 3a);
- ``spacing_mev`` — each other ZPL of a cluster relative to the cluster's brightest (Fig. 3b);
- ``zpls_per_cluster`` — ZPLs in each cluster with at least one (Fig. 3c, d);
- ``long_lifetime_ns`` / ``long_amplitude`` — the long component of each cluster's
  two-exponential decay and its share of the decay's photons (Fig. 3e–h);
- ``dphi_deg`` — dipole-angle differences between the lines of a cluster, folded into
  [0°, 90°] (Fig. 3i, j).

:func:`from_tables` computes them from the analysis tables, :func:`from_truth` from the truth
table of a simulated night (``cryoscope.night``): the cluster of all centers neutral.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

__all__ = ["BINS", "GROUPS", "PANELS", "Quantities", "folded_dphi_deg", "from_tables",
           "from_truth", "histograms"]

#: Sample types, in the order the figure shows them.
GROUPS = ("monomer", "molecule", "unknown")
#: The quantities, in the order of the figure's rows.
PANELS = ("zpl_ev", "spacing_mev", "zpls_per_cluster", "long_lifetime_ns", "long_amplitude",
          "dphi_deg")
#: Histogram bin edges of each quantity.
BINS: dict[str, np.ndarray] = {
    "zpl_ev": np.arange(2.0, 2.3001, 0.01),
    "spacing_mev": np.arange(-80.0, 80.001, 10.0),
    "zpls_per_cluster": np.arange(0.5, 6.51, 1.0),
    "long_lifetime_ns": np.arange(0.0, 200.001, 10.0),
    "long_amplitude": np.arange(0.0, 1.0001, 0.05),
    "dphi_deg": np.arange(0.0, 90.001, 10.0),
}


@dataclass
class Quantities:
    """The Fig. 3 values of one sample type (see the module's docstring)."""

    zpl_ev: list[float] = field(default_factory=list)
    zpl_weight: list[float] = field(default_factory=list)
    spacing_mev: list[float] = field(default_factory=list)
    zpls_per_cluster: list[int] = field(default_factory=list)
    long_lifetime_ns: list[float] = field(default_factory=list)
    long_amplitude: list[float] = field(default_factory=list)
    dphi_deg: list[float] = field(default_factory=list)

    def add_cluster(self, zpl_ev: list[float], intensity: list[float],
                    angles_deg: list[float], lifetimes_ns: list[float],
                    weights: list[float]) -> None:
        """One cluster: its ZPLs with their intensities, its lines' dipole angles (unknown
        ones left out) and its decay components."""
        zpl = np.asarray(zpl_ev, float)
        if zpl.size:
            share = np.asarray(intensity, float)
            share = share / share.sum() if share.sum() > 0 else np.full(zpl.size, 1 / zpl.size)
            self.zpl_ev += zpl.tolist()
            self.zpl_weight += share.tolist()
            brightest = int(np.argmax(share))
            self.spacing_mev += [(z - zpl[brightest]) * 1000 for i, z in enumerate(zpl)
                                 if i != brightest]
            self.zpls_per_cluster.append(int(zpl.size))
        if len(lifetimes_ns) >= 2:
            k = int(np.argmax(lifetimes_ns))
            self.long_lifetime_ns.append(float(lifetimes_ns[k]))
            self.long_amplitude.append(float(weights[k]) / float(np.sum(weights)))
        self.dphi_deg += [folded_dphi_deg(a, b) for a, b in combinations(angles_deg, 2)]


def folded_dphi_deg(a: float, b: float) -> float:
    """Difference of two dipole angles (mod 180°), folded into [0°, 90°]."""
    d = abs(a - b) % 180.0
    return float(min(d, 180.0 - d))


def _group(value: object) -> str:
    return str(value) if value in GROUPS else "unknown"


def _values(value: object) -> list[float]:
    if value is None or (np.isscalar(value) and pd.isna(value)):  # type: ignore[arg-type]
        return []
    return [float(v) for v in value]  # type: ignore[attr-defined]


def from_tables(lines: pd.DataFrame, states: pd.DataFrame) -> dict[str, Quantities]:
    """The Fig. 3 quantities of the analysis tables, per sample type present."""
    out: dict[str, Quantities] = {}
    angles: dict[tuple[str, int], list[float]] = {}
    for row in lines.to_dict("records"):
        phi = row.get("dipole_angle_deg")
        if phi is None or pd.isna(phi):
            continue
        for sid in _values(row.get("states")):
            angles.setdefault((row["file"], int(sid)), []).append(float(phi))
    for row in states.to_dict("records"):
        group = _group(row.get("measurement.sample_type"))
        q = out.setdefault(group, Quantities())
        zpl = _values(row.get("zpl_ev"))
        photons = _values(row.get("zpl_photons")) or [1.0] * len(zpl)
        q.add_cluster(zpl, photons, angles.get((row["file"], int(row["id"])), []),
                      _values(row.get("lifetimes_ns")), _values(row.get("lifetime_weights")))
    return out


def from_truth(truth: pd.DataFrame) -> dict[str, Quantities]:
    """The Fig. 3 quantities of a simulated night's truth table (``docs/population.md``): per
    particle the cluster of all centers neutral, ZPL intensities in the ratio of the centers'
    branching."""
    out: dict[str, Quantities] = {}
    for row in truth.to_dict("records"):
        q = out.setdefault(_group(row["sample_type"]), Quantities())
        q.add_cluster(_values(row["zpl_ev"]), _values(row["branching"]),
                      _values(row["dipole_angle_deg"]), _values(row["lifetimes_ns"]),
                      _values(row["lifetime_weights"]))
    return out


def histograms(quantities: Mapping[str, Quantities]) -> dict[str, dict[str, np.ndarray]]:
    """``{group: {panel: counts}}`` on :data:`BINS` (``zpl_ev`` weighted by ``zpl_weight``)."""
    result: dict[str, dict[str, np.ndarray]] = {}
    for group, q in quantities.items():
        result[group] = {}
        for panel in PANELS:
            weights = q.zpl_weight if panel == "zpl_ev" else None
            counts, _ = np.histogram(getattr(q, panel), BINS[panel], weights=weights)
            result[group][panel] = counts
    return result
