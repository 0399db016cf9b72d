"""``cryoscope repair FILE``: make the file of a writer that died open in plain HDF5.

A writer killed while its file is open (``kill -9``, a power cut, a crash) leaves HDF5's "open
for writing" mark in the superblock: such a file opens only in SWMR read mode, and plain h5py
refuses it ("already open for write"). :func:`repair_file` clears the mark as ``h5clear -s``
does, and where the file still says ``status = running`` records ``status = failed`` with an
error saying that the writer died.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import h5py

from cryoscope.datafile.reader import MeasurementError, check_complete
from cryoscope.datafile.superblock import clear_write_mark
from cryoscope.datafile.writer import now_iso

__all__ = ["WRITER_DIED", "Repair", "repair_file"]

log = logging.getLogger(__name__)

#: The error recorded in a file whose writer died while it was running.
WRITER_DIED = "the writer died before the run ended (killed or crashed); data up to its last " \
    "flush is kept"


@dataclass(frozen=True, slots=True)
class Repair:
    """What :func:`repair_file` did."""

    path: Path
    cleared_mark: bool  #: the "open for writing" mark was cleared
    status_before: str
    status: str  #: the status now recorded


def repair_file(path: str | Path) -> Repair:
    """Clear a dead writer's mark and record its end. Raises :class:`MeasurementError` for a
    file that cannot be repaired (missing, truncated, not HDF5)."""
    file = Path(path)
    if not file.is_file():
        raise MeasurementError(f"file not found: {file}")
    check_complete(file)
    lock = file.with_name(file.name + ".lock")
    if lock.exists():
        from cryoscope.datafile.writer import lock_holder

        pid = lock_holder(lock)
        if pid is not None:
            raise MeasurementError(f"{file} is being written by a live run (process {pid})")
    try:
        cleared = clear_write_mark(file)
        with h5py.File(file, "r+", locking=False) as f:
            before = f.attrs.get("status", "unknown")
            before = before.decode() if isinstance(before, bytes) else str(before)
            status = before
            if before == "running":
                status = "failed"
                f.attrs["status"] = status
                f.attrs["error"] = WRITER_DIED
                f.attrs["repaired"] = now_iso()
    except OSError as exc:
        raise MeasurementError(f"cannot repair {file}: {' '.join(str(exc).split())[:200]}"
                               ) from None
    if lock.exists():
        lock.unlink(missing_ok=True)
    log.info("repaired %s: mark %s, status %s -> %s", file,
             "cleared" if cleared else "absent", before, status)
    return Repair(file, cleared, before, status)
