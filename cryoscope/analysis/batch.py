"""Many measurement files at once, in parallel on Dask (``docs/population.md``).

:func:`find_measurement_files` turns files, folders and globs into a list of files;
:func:`analyze_batch` analyses each into ``OUT/<name>/`` (summary.json and figures) on a local
Dask cluster or an existing one, skips files already analysed with the same parameters, records
why a file failed and lets the others finish, then writes the population tables
(:mod:`.tables`) and ``population.png`` (:mod:`.population_figure`).
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["BatchInputError", "BatchResult", "FileOutcome", "analyze_batch", "analyze_one",
           "find_measurement_files", "output_names", "write_population"]

log = logging.getLogger(__name__)

#: Suffixes of measurement files picked up in folders.
SUFFIXES = (".h5", ".hdf5")


class BatchInputError(ValueError):
    """A path matches no measurement file, or two files would share an output folder."""


@dataclass(frozen=True)
class FileOutcome:
    """What became of one file: ``done``, ``skipped`` (analysed before) or ``failed``."""

    path: Path
    name: str
    status: Literal["done", "skipped", "failed"]
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class BatchResult:
    """The outcome of every file and the population outputs written."""

    outcomes: tuple[FileOutcome, ...]
    outputs: dict[str, Path]

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")


def find_measurement_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders' ``*.h5`` / ``*.hdf5`` files, and glob matches, in order and
    without repeats. Raises :class:`BatchInputError` for a path that matches nothing."""
    found: list[Path] = []
    seen: set[Path] = set()
    for item in paths:
        text = str(item)
        path = Path(text)
        if path.is_file():
            matches = [path]
        elif path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES
                             and p.is_file())
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True)
                             if Path(p).is_file())
        else:
            raise BatchInputError(f"file not found: {text}")
        if not matches:
            raise BatchInputError(f"no measurement file in {text}")
        for match in matches:
            if match.resolve() not in seen:
                seen.add(match.resolve())
                found.append(match)
    return found


def output_names(files: Sequence[Path]) -> list[str]:
    """The output folder name of each file (its stem); two files with one stem are an error."""
    names = [f.stem for f in files]
    seen: dict[str, Path] = {}
    for name, f in zip(names, files, strict=True):
        if name in seen:
            raise BatchInputError(f"two files would write OUT/{name}/: {seen[name]} and {f}")
        seen[name] = f
    return names


def _up_to_date(summary_path: Path, source: Path, parameters: Mapping[str, Any]) -> bool:
    """Whether a summary of ``source`` with these parameters exists and is newer than it."""
    from cryoscope.analysis.tables import read_summary

    try:
        summary = read_summary(summary_path)
    except (OSError, ValueError):
        return False
    recorded = (summary.get("provenance") or {}).get("parameters") or {}
    same = all(recorded.get(k) == v for k, v in parameters.items())
    return (same and summary.get("file") == str(source)
            and summary_path.stat().st_mtime >= source.stat().st_mtime)


def analyze_one(path: str | Path, directory: str | Path, parameters: Mapping[str, Any],
                force: bool = False, figures: bool = True) -> FileOutcome:
    """Analyse one file into ``directory`` (figures first, ``summary.json`` last, so a summary
    means the file is done). Never raises: a failure is an outcome naming its reason.

    ``parameters``: keyword arguments of :func:`~cryoscope.analysis.report.analyze_file`.
    """
    from cryoscope.analysis.report import analyze_file
    from cryoscope.analysis.summary import write_summary

    source, out = Path(path), Path(directory)
    name = out.name
    summary_path = out / "summary.json"
    if not force and _up_to_date(summary_path, source, parameters):
        log.info("%s: analysed before, skipped", source)
        return FileOutcome(source, name, "skipped")
    start = time.perf_counter()
    try:
        summary_path.unlink(missing_ok=True)
        result = analyze_file(source, **parameters)
        if figures:
            from cryoscope.analysis.figures import write_figures

            write_figures(result, out)
        write_summary(result, out)
    except Exception as exc:  # a broken file must not stop the night: report its reason
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.warning("%s: failed: %s", source, reason)
        return FileOutcome(source, name, "failed", reason, time.perf_counter() - start)
    log.info("%s: analysed in %.1f s", source, time.perf_counter() - start)
    return FileOutcome(source, name, "done", "", time.perf_counter() - start)


def write_population(summary_paths: Iterable[Path], directory: str | Path) -> dict[str, Path]:
    """The tables (``particles``/``lines``/``states.parquet``) and ``population.png`` of the
    given summaries, into ``directory``."""
    import pandas as pd

    from cryoscope.analysis.population import from_tables
    from cryoscope.analysis.population_figure import write_population_figure
    from cryoscope.analysis.tables import build_tables, read_summary, write_tables

    tables = build_tables(read_summary(p) for p in summary_paths)
    paths = write_tables(tables, directory)
    particles = tables["particles"]
    types = particles.get("measurement.sample_type",
                          pd.Series(["unknown"] * len(particles), dtype=object))
    counts: dict[str, int] = {}
    for value in types.fillna("unknown"):
        group = str(value) if value in ("monomer", "molecule") else "unknown"
        counts[group] = counts.get(group, 0) + 1
    quantities = from_tables(tables["lines"], tables["states"])
    paths["population"] = write_population_figure(quantities, Path(directory) / "population.png",
                                                  counts)
    return paths


def analyze_batch(files: Sequence[str | Path], directory: str | Path, *,
                  workers: int | None = None, scheduler: str | None = None,
                  force: bool = False, figures: bool = True,
                  progress: Callable[[int, int, FileOutcome], None] | None = None,
                  **parameters: Any) -> BatchResult:
    """Analyse ``files`` in parallel into ``directory/<name>/`` and write the population outputs.

    ``scheduler``: address of a running Dask scheduler (``tcp://host:port``); otherwise a local
    cluster of ``workers`` processes (default: one per core, at most one per file) is started and
    closed. ``progress(done, total, outcome)`` is called as each file finishes. ``parameters``
    go to :func:`~cryoscope.analysis.report.analyze_file`.
    """
    from distributed import Client, LocalCluster, as_completed

    paths = [Path(f).resolve() for f in files]
    names = output_names(paths)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    cluster = None
    if scheduler is None:
        import os

        n = max(1, min(workers or os.cpu_count() or 1, len(paths)))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.WARNING)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    log.info("analysing %d files on %s", len(paths), client.scheduler.address)
    outcomes: list[FileOutcome] = []
    try:
        futures = {client.submit(analyze_one, p, out / name, dict(parameters), force, figures,
                                 key=f"analyze-{name}-{time.time_ns()}", pure=False): (p, name)
                   for p, name in zip(paths, names, strict=True)}
        for future in as_completed(futures):
            p, name = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died (e.g. out of memory)
                outcome = FileOutcome(p, name, "failed", f"worker failed: {exc}")
            outcomes.append(outcome)
            log.info("%d/%d %s: %s", len(outcomes), len(paths), name, outcome.status)
            if progress is not None:
                progress(len(outcomes), len(paths), outcome)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    order = {p: i for i, p in enumerate(paths)}
    outcomes.sort(key=lambda o: order[o.path])
    good = [out / o.name / "summary.json" for o in outcomes if o.status != "failed"]
    outputs = write_population(good, out) if good else {}
    return BatchResult(tuple(outcomes), outputs)
