"""``summary.json``: the analysis result as JSON (contract in ``docs/summary-format.md``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from cryoscope import __version__
from cryoscope.analysis.report import AnalysisResult

__all__ = ["SUMMARY_FORMAT", "SUMMARY_VERSION", "summary_dict", "write_summary"]

SUMMARY_FORMAT = "cryoscope.summary"
SUMMARY_VERSION = 1


def _num(value: float) -> float | None:
    """JSON has no NaN: non-finite numbers become null."""
    return float(value) if math.isfinite(value) else None


def summary_dict(result: AnalysisResult) -> dict[str, Any]:
    """The summary as plain JSON-ready data."""
    lines = []
    for ln in result.lines:
        pol = ln.polarization
        lines.append({
            "zpl_ev": _num(ln.zpl_ev),
            "zpl_err_ev": _num(ln.zpl_err_ev),
            "fwhm_mev": _num(ln.fwhm_mev),
            "replica_weights": [_num(w) for w in ln.replica_weights],
            "states": list(ln.states),
            "polarization_degree": _num(pol.p) if pol else None,
            "polarization_degree_err": _num(pol.p_err) if pol else None,
            "dipole_angle_deg": _num(pol.phi_deg) if pol else None,
            "dipole_angle_err_deg": _num(pol.phi_err_deg) if pol else None,
            "gain_ratio_vh": _num(pol.gain_ratio) if pol else None,
            "window_ev": [_num(w) for w in ln.window_ev],
            "center": ln.center,
            "charge": ln.charge,
            "uncertain": list(ln.uncertain),
        })
    states = []
    for st in result.state_results:
        decay = st.decay
        states.append({
            "id": st.id,
            "frames": st.n_frames,
            "fraction": _num(st.fraction),
            "photons": st.photons,
            "count_rate_cps": _num(st.count_rate_cps),
            "lifetimes_ns": [_num(t) for t in decay.taus_ns] if decay else [],
            "lifetimes_err_ns": [_num(t) for t in decay.taus_err_ns] if decay else [],
            "lifetime_weights": [_num(w) for w in decay.weights] if decay else [],
            "zpl_ev": [_num(z) for z in st.zpl_ev],
            "zpl_photons": ([_num(ln.area / result.spectra.noise.adu_per_photon)
                             for ln in st.fit.lines] if st.fit else []),
            "configuration": list(result.states.names(st.id)),
        })
    meas = result.measurement
    bands = result.image_bands
    g2 = result.g2
    two_apds = meas.apd2_channel is not None
    return {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "file": str(meas.path),
        "status": meas.status,
        "duration_s": _num(result.duration_s),
        "frames": int(result.spectra.v.shape[0]),
        "photons": result.photons.n,
        "photons_apd2": result.photons.n_apd2 if two_apds else None,
        "photons_in_pauses": result.photons.n_paused,
        "count_rate_cps": _num(result.count_rate_cps),
        "apd2_delay_offset_ps": (_num(result.apd2_delay_offset_ps)
                                 if result.apd2_delay_offset_ps is not None else None),
        "g2_zero": _num(g2.g2_zero) if g2 else None,
        "g2_zero_err": _num(g2.g2_zero_err) if g2 else None,
        "g2_peak_areas": [int(a) for a in g2.histogram.peak_areas] if g2 else None,
        "readout": meas.readout,
        "image_rows": {
            "v": [bands.v.row_start, bands.v.row_stop],
            "h": [bands.h.row_start, bands.h.row_stop],
            "source": bands.source,
            "light_captured": _num(bands.captured),
        } if bands else None,
        "adu_per_photon": _num(result.spectra.noise.adu_per_photon),
        "cosmic_rays_removed": result.spectra.cosmic_rays,
        "intensity_levels_cps": ([_num(r) for r in result.levels.rate_cps]
                                 if result.levels is not None else []),
        "simultaneous_jump_frames": list(result.tracks.simultaneous),
        "lines": lines,
        "states": states,
        "frame_state": [int(s) for s in result.states.labels],
        "measurement": dict(meas.metadata),
        "tagger_overflows": {
            "intervals_ps": [[int(a), int(b)] for a, b in meas.overflows_ps.tolist()],
            "missed_events": int(sum(meas.missed_events.values())),
            "missed_apd": int(meas.missed_apd),
        },
        "provenance": {"software_version": __version__, "parameters": dict(result.parameters)},
        "centers": _centers(result),
        "jumps": [{
            "frame": j.frame,
            "time_s": _num(j.time_s),
            "centers": list(j.centers),
            "shifts_mev": [_num(x) for x in j.shifts_mev],
            "kind": j.kind,
        } for j in result.jumps],
    }


def _centers(result: AnalysisResult) -> list[dict[str, Any]]:
    cmap = result.centers
    if cmap is None:
        return []
    out = []
    for c in cmap.centers:
        pol = c.polarization
        out.append({
            "id": c.id,
            "zpl_ev": _num(c.zpl_ev),
            "zpl_spread_mev": _num(c.zpl_spread_mev),
            "dipole_angle_deg": _num(pol.phi_deg) if pol else None,
            "dipole_angle_err_deg": _num(pol.phi_err_deg) if pol else None,
            "polarization_degree": _num(pol.p) if pol else None,
            "charged_zpl_ev": _num(c.charged_zpl_ev),
            "trion_shift_mev": _num(c.trion_shift_mev),
            "lines": list(c.lines),
            "replica_shifts_mev": [_num(x) for x in c.replica_shifts_mev],
            "replica_shifts_err_mev": [_num(x) for x in c.replica_shifts_err_mev],
            "region_ev": [_num(x) for x in c.region_ev],
        })
    return out


def write_summary(result: AnalysisResult, directory: str | Path) -> Path:
    """Write ``directory/summary.json`` (directory created if needed); returns its path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    path.write_text(json.dumps(summary_dict(result), indent=2) + "\n", encoding="utf-8")
    return path
