"""The full analysis of a run just taken, as the summary a window shows (Qt-free).

:func:`summarize_run` is what a GUI runs in a separate process after each run
(``cryoscope.analysis.analyze_file`` of the file, as ``summary.json`` has it), so the
analysis neither holds the GUI thread nor the rig's worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["import_analysis", "summarize_run"]


def import_analysis() -> None:
    """Import the analysis (a worker process' first job, started before it is needed: the
    imports take about two seconds of a core)."""
    import cryoscope.analysis.summary  # noqa: F401  (imports cryoscope.analysis with it)


def summarize_run(path: str | Path) -> dict[str, Any]:
    """:func:`~cryoscope.analysis.summary.summary_dict` of :func:`analyze_file` of ``path``
    (keys as in ``docs/summary-format.md``; ``centers`` and ``configurations`` where the
    analysis provides them)."""
    from cryoscope.analysis import analyze_file
    from cryoscope.analysis.summary import summary_dict

    return summary_dict(analyze_file(path))
