"""numba's cache falls back to a writable folder for a user without a writable home.

The test may run as root, for whom permission bits change nothing, so "not writable" is made the
way that holds for every user: the home folder and the package's ``__pycache__`` sit where a
regular file is in the way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cryoscope

SCRIPT = """
import os
import numpy as np
import cryoscope.analysis
from cryoscope.analysis.changepoint import find_change_points
print(os.environ["NUMBA_CACHE_DIR"])
print(cryoscope.analysis.__file__)
t = np.cumsum(np.r_[np.full(400, 1_000_000), np.full(400, 100_000)]).astype(np.int64)
print(*find_change_points(t).index)
"""


def _unwritable_environment(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "site"
    shutil.copytree(Path(cryoscope.__file__).parent, site / "cryoscope",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder in (site / "cryoscope", site / "cryoscope" / "analysis"):
        (folder / "__pycache__").write_text("a file where numba wants its cache folder")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the home folder's parent should be")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME=str(blocker / "home"), TMPDIR=str(temp), PYTHONPATH=str(site),
               PYTHONDONTWRITEBYTECODE="1")
    return env, site


def test_analysis_imports_and_caches_without_a_writable_home_or_package(tmp_path: Path) -> None:
    env, site = _unwritable_environment(tmp_path)
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cache_dir, module, change_points = result.stdout.splitlines()
    (found,) = (int(i) for i in change_points.split())  # the compiled code ran, and right:
    assert abs(found - 400) <= 1  # the rate steps up tenfold after photon 400
    assert Path(module).is_relative_to(site)  # the read-only copy, not the source tree
    assert Path(cache_dir).parent == tmp_path / "tmp"
    cached = list(Path(cache_dir).rglob("*.nbi"))
    assert any("changepoint" in p.name for p in cached), cached


def test_a_users_numba_cache_dir_is_left_alone(tmp_path: Path) -> None:
    env, _ = _unwritable_environment(tmp_path)
    chosen = tmp_path / "mine"
    env["NUMBA_CACHE_DIR"] = str(chosen)
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == str(chosen)
    assert list(chosen.rglob("*.nbi"))
