"""``population.png``: the paper's Fig. 3 over the analysed particles (``docs/population.md``).

One column per sample type present (monomers and molecules side by side, particles of unknown
type in a column of their own), one row per quantity of :mod:`cryoscope.analysis.population`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from matplotlib.figure import Figure

from cryoscope.analysis.population import BINS, GROUPS, PANELS, Quantities

__all__ = ["write_population_figure"]

_TITLES = {"monomer": "monomers (QDs)", "molecule": "molecules (CQDMs)",
           "unknown": "sample type unknown"}
_LABELS = {
    "zpl_ev": ("ZPL energy (eV)", "occurrence × intensity"),
    "spacing_mev": ("ZPL − brightest ZPL of the cluster (meV)", "occurrence"),
    "zpls_per_cluster": ("ZPLs per cluster", "clusters"),
    "long_lifetime_ns": ("long lifetime component (ns)", "clusters"),
    "long_amplitude": ("amplitude of the long component", "clusters"),
    "dphi_deg": ("Δφ between peaks of a cluster (deg)", "pairs"),
}


def write_population_figure(quantities: Mapping[str, Quantities], path: str | Path,
                            n_particles: Mapping[str, int] | None = None) -> Path:
    """Draw the Fig. 3 histograms of ``quantities`` (per sample type) into ``path``."""
    groups = [g for g in GROUPS if g in quantities] or ["unknown"]
    fig = Figure(figsize=(4.2 * len(groups), 15))
    axes = fig.subplots(len(PANELS), len(groups), squeeze=False)
    for col, group in enumerate(groups):
        q = quantities.get(group, Quantities())
        count = f", {n_particles[group]} particles" if n_particles and group in n_particles else ""
        for row, panel in enumerate(PANELS):
            ax = axes[row][col]
            values = getattr(q, panel)
            weights = q.zpl_weight if panel == "zpl_ev" else None
            ax.hist(values, BINS[panel], weights=weights,
                    color="tab:blue" if group == "monomer" else "tab:red", alpha=0.8)
            xlabel, ylabel = _LABELS[panel]
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            letter = chr(ord("a") + row * len(groups) + col)
            ax.set_title(f"({letter}) {_TITLES[group]}{count}" if row == 0 else f"({letter})",
                         fontsize=9, loc="left")
            if not values:
                ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", color="gray")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=90)
    return out
