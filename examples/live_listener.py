"""Watch a run live from a script: a listener gets every event while the plan runs.

Prints the brightest pixel of each new V/H frame pair and stops the run early once enough
photons were counted, the way a GUI or an automatic "particle bleached" check would.

    python examples/live_listener.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from cryoscope import api
from cryoscope.acquisition import FramesAcquired, Progress, RunEvent

HC_EV_NM = 1239.84193


def main() -> None:
    control = api.RunControl()

    def on_event(event: RunEvent) -> None:
        if isinstance(event, FramesAcquired):
            for i, frame in enumerate(event.block.frames):
                total = frame.astype(float).sum(axis=0)
                peak_nm = event.wavelength_nm[int(np.argmax(total))]
                moving = " (moving)" if event.stage_moving[i] else ""
                print(f"frame {event.block.first_index + i:3d}  waveplate "
                      f"{event.waveplate_deg[i]:5.1f} deg{moving}  "
                      f"peak {peak_nm:.2f} nm = {HC_EV_NM / peak_nm:.4f} eV")
        elif isinstance(event, Progress) and event.photons > 200_000:
            control.request_stop("enough photons")

    with tempfile.TemporaryDirectory() as tmp:
        result = api.measure(Path(tmp) / "live.h5", frames=40, control=control,
                             listeners=[on_event])
    print(f"{result.state}: {result.frames} frames, {result.photons} photons ({result.error})")


if __name__ == "__main__":
    main()
