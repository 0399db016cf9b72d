"""The shipped blinking CQDM (config/dimer.toml) through the plan: per frame, each center's line
on the EMCCD follows its true ZPL, whatever the charging and spectral diffusion did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from simtools import spectrum_peak_ev

from cryoscope.config import load_config

DIMER = Path(__file__).resolve().parents[2] / "config" / "dimer.toml"


def test_lines_follow_the_true_zpls_frame_by_frame(measure) -> None:
    cfg = load_config(DIMER)
    assert len(cfg.sample.emitters) == 2
    m = measure(cfg, frames=120, exposure_s=0.5)
    truth = m.truth
    states = truth["frame_state"]
    zpl = truth["frame_zpl_ev"]
    # the blinking dimer visits several joint states in a minute
    assert len({tuple(s) for s in states}) >= 3
    spectra = m.signal().sum(axis=1)
    # a frame whose true ZPL did not move during the exposure: the line sits on it
    starts, ends = m.exposures_ps()
    t = truth["truth_time_s"]
    still = (np.searchsorted(t, ends / 1e12) - np.searchsorted(t, starts / 1e12, side="right")) == 0
    errors = []
    for k in np.flatnonzero(still):
        for c in range(2):
            others = np.delete(zpl[k], c)
            if states[k, c] == 2 or np.min(np.abs(others - zpl[k, c])) < 3e-3:
                continue  # dark, or another line too close to tell apart
            window = (zpl[k, c] - 1.5e-3, zpl[k, c] + 1.5e-3)
            errors.append(spectrum_peak_ev(m.energy_ev, spectra[k], window) - zpl[k, c])
    errors_mev = np.abs(np.array(errors)) * 1e3
    assert errors_mev.shape[0] > 60
    assert np.median(errors_mev) < 0.15
    assert np.mean(errors_mev < 0.5) > 0.9
