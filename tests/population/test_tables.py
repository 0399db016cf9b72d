"""The population tables are built generically from summary.json: new keys flow in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cryoscope.analysis.population import folded_dphi_deg, from_tables
from cryoscope.analysis.tables import build_tables, write_tables


def _summary(file: str, lines: list[dict[str, Any]], states: list[dict[str, Any]],
             **extra: Any) -> dict[str, Any]:
    return {"format": "cryoscope.summary", "version": 1, "file": file, "photons": 1000,
            "intensity_levels_cps": [10.0, 20.0], "image_rows": None,
            "measurement": {"sample_type": "molecule", "particle": "P1"},
            "provenance": {"software_version": "9.9", "parameters": {"bin_s": 0.01}},
            "lines": lines, "states": states, **extra}


LINE = {"zpl_ev": 2.15, "dipole_angle_deg": 10.0, "states": [0]}
STATE = {"id": 0, "zpl_ev": [2.15, 2.17], "zpl_photons": [300.0, 100.0],
         "lifetimes_ns": [1.5, 90.0], "lifetime_weights": [0.4, 0.6]}


def test_columns_follow_the_summary_keys(tmp_path: Path) -> None:
    today = _summary("a.h5", [LINE, {**LINE, "zpl_ev": 2.17, "dipole_angle_deg": 170.0}],
                     [STATE])
    # The mapping of lines to centers adds centers[], lines[].center/charge and
    # states[].configuration: they become columns and n_centers, with no change here.
    mapped = _summary(
        "b.h5", [{**LINE, "center": 0, "charge": "X"}, {**LINE, "zpl_ev": 2.135,
                                                       "center": 0, "charge": "X*"}],
        [{**STATE, "configuration": "X*/X"}], centers=[{"id": 0, "zpl_ev": 2.15}])
    tables = build_tables([today, mapped])
    particles, lines, states = tables["particles"], tables["lines"], tables["states"]
    assert particles["n_centers"].tolist() == [2, 1]
    assert particles["n_lines"].tolist() == [2, 2]
    assert particles["measurement.sample_type"].tolist() == ["molecule", "molecule"]
    assert particles["provenance.parameters.bin_s"].tolist() == [0.01, 0.01]
    assert particles["intensity_levels_cps"].iloc[0] == [10.0, 20.0]
    assert "lines" not in particles and "centers" not in particles
    assert lines["file"].tolist() == ["a.h5", "a.h5", "b.h5", "b.h5"]
    assert lines["index"].tolist() == [0, 1, 0, 1]
    assert lines["charge"].tolist()[2:] == ["X", "X*"] and pd.isna(lines["center"].iloc[0])
    assert states["configuration"].tolist()[1] == "X*/X"
    assert (states["provenance.software_version"] == "9.9").all()

    paths = write_tables(tables, tmp_path)
    back = pd.read_parquet(paths["lines"])
    assert back["charge"].tolist()[2:] == ["X", "X*"]
    assert list(back.columns) == list(lines.columns)

    q = from_tables(lines, states)["molecule"]
    # Cluster a.h5/0: ZPLs 2.15 (brightest, 3/4 of the ZPL photons) and 2.17.
    assert q.zpl_weight[:2] == [0.75, 0.25]
    assert round(q.spacing_mev[0], 6) == 20.0
    assert q.dphi_deg[0] == 20.0  # 10° and 170° are 20° apart
    assert q.long_lifetime_ns == [90.0, 90.0] and q.long_amplitude == [0.6, 0.6]


def test_dipole_angle_differences_fold_into_0_to_90() -> None:
    assert folded_dphi_deg(10.0, 170.0) == 20.0
    assert folded_dphi_deg(0.0, 90.0) == 90.0
    assert folded_dphi_deg(30.0, 300.0) == 90.0
    assert folded_dphi_deg(45.0, 45.0) == 0.0
