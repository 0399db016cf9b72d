"""How fast the readers refuse a damaged file: ``cryoscope info`` and ``cryoscope analyze`` on
copies of a measurement truncated at several sizes, with and without the open-for-write mark a
killed writer leaves (before the fix, ``info`` and ``analyze`` retried for over 30 minutes).

Run: ``python benchmarks/bench_damaged_files.py [--repeat 3]``. Prints each command's median and
fastest wall time in a fresh interpreter, and the same for ``cryoscope --version`` (the start-up
cost every command pays), so the time spent on the file itself can be told apart.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryoscope.cli import main as cryoscope
from cryoscope.datafile import read_superblock
from cryoscope.datafile.superblock import lookup3

CLI = [sys.executable, "-c", "import sys; from cryoscope.cli import main; sys.exit(main())"]


def _mark(path: Path) -> None:
    block = read_superblock(path)
    n = 12 + 4 * block.size_of_offsets
    with open(path, "r+b") as f:
        head = bytearray(f.read(n))
        head[11] = 5
        f.seek(0)
        f.write(bytes(head) + struct.pack("<I", lookup3(bytes(head))))


def _time(argv: list[str], repeat: int) -> tuple[float, float, int]:
    times, code = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        code = subprocess.run([*CLI, *argv], capture_output=True, timeout=600).returncode
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        good = Path(tmp) / "good.h5"
        cryoscope(["run", "--frames", "20", "--out", str(good)])
        median, fastest, _ = _time(["--version"], args.repeat)
        print(f"cryoscope --version                  : median {median:.2f} s, fastest "
              f"{fastest:.2f} s")
        for share in (0.01, 0.5, 0.99):
            for marked in (False, True):
                bad = Path(tmp) / "bad.h5"
                shutil.copy(good, bad)
                if marked:
                    _mark(bad)
                os.truncate(bad, int(bad.stat().st_size * share))
                for command in ("info", "analyze"):
                    median, fastest, code = _time([command, str(bad)], args.repeat)
                    print(f"{command:<7} truncated to {share:4.0%}{' marked' if marked else '':7}"
                          f": exit {code}, median {median:.2f} s, fastest {fastest:.2f} s")


if __name__ == "__main__":
    main()
