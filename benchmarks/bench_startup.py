"""Start-up time of the command line: ``cryoscope --help`` and ``cryoscope config check``.

Run: ``python benchmarks/bench_startup.py [--repeat 5]``. Prints the median and the fastest
wall time of each command in a fresh interpreter (the machine may be shared: both are shown).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from cryoscope.config import default_config_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for argv in (["--help"], ["config", "check", str(default_config_path())]):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cryoscope.cli", *argv], check=True,
                           capture_output=True)
            times.append(time.perf_counter() - start)
        print(f"cryoscope {argv[0]:<7}: median {statistics.median(times):.2f} s, "
              f"fastest {min(times):.2f} s over {args.repeat} runs")


if __name__ == "__main__":
    main()
