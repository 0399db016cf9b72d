"""SystemClock, and that every driver module imports without its vendor SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from drivers.clock import SystemClock
from drivers.interfaces import Clock

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ["attodry", "epl", "pilas", "kinesis", "andor", "swabian", "clock"]
VENDOR = ["pylablib", "pymeasure", "Swabian", "serial", "ft232"]


def test_system_clock_is_monotonic_seconds():
    clock = SystemClock()
    assert isinstance(clock, Clock)
    readings = [clock.now() for _ in range(100)]
    assert readings == sorted(readings)
    clock.sleep(0.0)
    clock.sleep(-1.0)
    assert clock.now() >= readings[-1]


def test_driver_modules_import_no_vendor_library():
    code = (
        "import sys\n"
        + "".join(f"import drivers.{name}\n" for name in DRIVERS)
        + f"print(sorted(m for m in {VENDOR!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_drivers_do_not_import_the_application():
    for path in (ROOT / "drivers").glob("*.py"):
        text = path.read_text()
        for layer in ("cryoscope", "sim_hardware", "gui"):
            assert f"import {layer}" not in text and f"from {layer}" not in text, path.name
