"""A night of particles, headless: one polarization series per particle, one file each.

At the microscope the physicist centers each particle before leaving; on the simulated rig each
"particle" is a different random seed of the configured sample. A failed particle is logged and
the queue goes on; the instruments are left safe after each run.

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

    base = api.load_config(args.config).with_overrides("plan", frames=args.frames)
    args.out.mkdir(parents=True, exist_ok=True)
    for particle in range(1, args.particles + 1):
        config = base.with_overrides("simulation", seed=particle)
        path = args.out / f"particle-{particle:02d}.h5"
        try:
            with api.open_rig(config) as rig:
                result = api.run_polarization_series(rig, path)
        except (InstrumentError, FileExistsError) as exc:
            logging.error("particle %d skipped: %s", particle, exc)
            continue
        print(f"{path}: {result.state}, {result.frames} frames, "
              f"{result.count_rate_cps / 1e3:.1f} kcps")


if __name__ == "__main__":
    main()
