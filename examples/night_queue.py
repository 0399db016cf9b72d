"""A night of particles, headless: one polarization series per particle, one file each, on one
rig kept open all night (as at the microscope: every run starts from wherever the last one left
the waveplate). Each file is named and records its particle in ``/measurement``. A failed
particle is logged and the queue goes on; the instruments are left safe after each run.

    python examples/night_queue.py [--config PATH] [--particles N] [--frames N] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cryoscope import api
from drivers.interfaces import InstrumentError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="configuration (default: config/simulated.toml)")
    parser.add_argument("--particles", type=int, default=3)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("night"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    config = api.load_config(args.config).with_overrides("plan", frames=args.frames)
    args.out.mkdir(parents=True, exist_ok=True)
    with api.open_rig(config) as rig:
        for particle in range(1, args.particles + 1):
            name = f"particle-{particle:02d}"
            path = args.out / f"{name}.h5"
            try:
                result = api.run_polarization_series(rig, path, measurement={"particle": name})
            except (InstrumentError, FileExistsError) as exc:
                logging.error("%s skipped: %s", name, exc)
                continue
            print(f"{path}: {result.state}, {result.frames} frames, "
                  f"{result.count_rate_cps / 1e3:.1f} kcps")


if __name__ == "__main__":
    main()
