"""``cryoscope --help`` and ``cryoscope config check`` start without the analysis stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cryoscope.config import default_config_path

HEAVY = ("scipy", "numba", "matplotlib", "h5py", "dask", "pandas", "pyarrow", "PyQt6")

PROBE = """
import sys
from cryoscope.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("loaded:" + ",".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


@pytest.mark.parametrize("argv", [["--help"], ["config", "check", str(default_config_path())],
                                  ["run", "--help"], ["analyze", "--help"]])
def test_starts_without_the_analysis_stack(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "loaded:", f"cryoscope {' '.join(argv)} imported {loaded}"
