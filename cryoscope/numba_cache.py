"""A writable cache folder for numba's compiled functions, chosen before numba is imported.

The analysis' ``@numba.njit(cache=True)`` functions are cached next to their source
(``__pycache__``) or, where that is not writable, in the user's cache folder
(``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``). Where neither is writable (a system-wide
install run by a user without a writable home) numba refuses to import them. Then, and only
then, :func:`ensure_writable_cache` points ``NUMBA_CACHE_DIR`` to a folder of the temporary
directory. A ``NUMBA_CACHE_DIR`` the user set is always left alone.

Importing this module runs the check: :mod:`cryoscope.analysis` imports it first, before any of
its modules imports numba.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

__all__ = ["ensure_writable_cache"]

log = logging.getLogger(__name__)

#: The package folder whose ``__pycache__`` numba uses first (the cached functions live there).
_ANALYSIS_DIR = Path(__file__).resolve().parent / "analysis"


def _writable(folder: Path) -> bool:
    """Whether ``folder`` can be created and written to, as numba checks it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numba"


def ensure_writable_cache() -> None:
    """Set ``NUMBA_CACHE_DIR`` to a temporary folder if numba's own locations are not writable.

    Must run before numba is imported (numba reads the variable once, at import).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    if _writable(_ANALYSIS_DIR / "__pycache__") or _writable(_user_cache_dir()):
        return
    user = str(os.getuid()) if hasattr(os, "getuid") else "user"  # Windows: TEMP is per user
    fallback = Path(tempfile.gettempdir()) / f"cryoscope-numba-{user}"
    os.environ["NUMBA_CACHE_DIR"] = str(fallback)
    log.info("numba cache: neither the package nor the home folder is writable; using %s",
             fallback)


ensure_writable_cache()
