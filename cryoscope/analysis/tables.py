"""The population tables: one row per particle, per line and per state, built from summary.json.

The tables are built generically from the summaries (``docs/summary-format.md``), so keys added
to the summary flow into them: a scalar or list value keeps its key as column name, a nested
object is flattened with dots (``measurement.sample_type``, ``provenance.parameters.bin_s``), a
list of objects (``lines``, ``states``, ``centers``, ...) becomes rows of its own table. Every
row of every table carries the particle's ``file``, ``measurement.*`` and ``provenance.*``
columns, so each table can be used on its own. Format in ``docs/population.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["TABLE_NAMES", "build_tables", "flatten", "read_summary", "write_tables"]

#: The tables and the summary list each one's rows come from (None: one row per summary).
TABLE_NAMES = {"particles": None, "lines": "lines", "states": "states"}
#: Prefixes of the particle columns copied into every line and state row.
CONTEXT_PREFIXES = ("measurement.", "provenance.")


def read_summary(path: str | Path) -> dict[str, Any]:
    """A ``summary.json`` as a dict (ValueError if it is not a cryoscope summary)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != "cryoscope.summary":
        raise ValueError(f"not a cryoscope summary: {path}")
    return data


def _is_object_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars and lists keep their key; nested objects become ``parent.key`` columns; lists of
    objects are left out (they are tables of their own)."""
    row: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if value:
                row.update(flatten(value, f"{name}."))
            else:
                row[name] = None
        elif not _is_object_list(value):
            row[name] = value
    return row


def _particle_row(summary: Mapping[str, Any]) -> dict[str, Any]:
    row = flatten(summary)
    for key, value in summary.items():
        if _is_object_list(value) or key in ("lines", "states", "centers"):
            row[f"n_{key}"] = len(value or [])
    # A center per line until the summary maps lines to centers (docs/population.md).
    row["n_centers"] = row.get("n_centers", row["n_lines"])
    return row


def build_tables(summaries: Iterable[Mapping[str, Any]]) -> dict[str, pd.DataFrame]:
    """``{"particles", "lines", "states"}`` data frames from the summaries (one per file)."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLE_NAMES}
    for summary in summaries:
        particle = _particle_row(summary)
        rows["particles"].append(particle)
        context = {k: v for k, v in particle.items()
                   if k == "file" or k.startswith(CONTEXT_PREFIXES)}
        for table, key in TABLE_NAMES.items():
            if key is None:
                continue
            for index, item in enumerate(summary.get(key) or []):
                rows[table].append({"file": particle["file"], "index": index, **flatten(item),
                                    **context})
    return {name: pd.DataFrame(items) for name, items in rows.items()}


def write_tables(tables: Mapping[str, pd.DataFrame], directory: str | Path) -> dict[str, Path]:
    """Write each table as ``directory/<name>.parquet``; returns the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in tables.items():
        path = out / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths[name] = path
    return paths
