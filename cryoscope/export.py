"""Export a measurement file to Photon-HDF5 (``docs/population.md``), the open photon format
read by FRETBursts, tttrlib, Full_SMS and others; written and validated with phconvert.

- ``/photon_data/timestamps`` (ps), ``detectors`` and ``nanotimes``: every APD photon (detector
  0, the second APD 1) with its delay after its own laser pulse, and the timing edges as
  non-photon *markers* in the same arrays (listed in ``detectors_specs/non_photon_id1``):
  camera exposure start 10 and end 11, waveplate move start 12 and end 13.
- ``nanotimes_specs``: 16-bit TCSPC bins of ``ceil(period / 65535)`` ps over one laser period;
  a photon whose delay is unknown (no laser pulse around it) and every marker have nanotime
  ``65535``, outside the ``tcspc_num_bins`` range.
- ``/user/cryoscope``: the spectra (``spectra_adu`` [frames, 2, pixels]: V and H), wavelength
  axis, exposure edges, the waveplate angle of each frame and of each move, the file's
  ``/measurement`` metadata.
- ``/sample``, ``/identity``, ``/provenance``: sample name and type, particle, operator,
  source file and software.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from cryoscope import __version__
from cryoscope.analysis.image import read_image_spectra
from cryoscope.analysis.photons import collect_photons
from cryoscope.datafile import (
    OPEN_PS,
    MeasurementError,
    OutputExistsError,
    open_h5,
    open_measurement,
    read_frames,
)

__all__ = ["MARKERS", "NANOTIME_UNKNOWN", "export_photon_hdf5"]

log = logging.getLogger(__name__)

#: Detector ids of the non-photon markers.
MARKERS = {"exposure_start": 10, "exposure_end": 11, "move_start": 12, "move_end": 13}
#: Nanotime of markers and of photons without a known delay.
NANOTIME_UNKNOWN = 65535


def _spectra(path: Path, meas: Any) -> np.ndarray:
    if meas.readout == "image":
        return read_image_spectra(path, meas)[0]
    frames = read_frames(path)
    names = [n.upper() for n in meas.track_names]
    v = names.index("V") if "V" in names else 0
    h = names.index("H") if "H" in names else 1
    return frames[:, [v, h], :]


def export_photon_hdf5(path: str | Path, out: str | Path | None = None, *,
                       overwrite: bool = False) -> Path:
    """Write the Photon-HDF5 file of measurement ``path`` (default: ``path`` with suffix
    ``.photon.h5``) and validate it with phconvert; returns its path."""
    import phconvert

    source = Path(path)
    target = Path(out) if out is not None else source.with_suffix(".photon.h5")
    if target.exists() and not overwrite:
        raise OutputExistsError(target)
    if target.resolve() == source.resolve():
        raise MeasurementError(f"the export would replace its source: {target}")
    meas = open_measurement(source)
    with open_h5(source) as h5:
        attrs = dict(h5.attrs)
    photons = collect_photons(source, measurement=meas)
    period = int(photons.laser_period_ps)
    unit_ps = max(1, math.ceil(period / (NANOTIME_UNKNOWN - 1)))
    n_bins = math.ceil(period / unit_ps)

    photon_det = photons.detector.astype(np.uint8)
    photon_nano = np.where(photons.delay_ps >= 0, photons.delay_ps // unit_ps,
                           NANOTIME_UNKNOWN).astype(np.uint16)
    moves = photons.stage.moves
    move_end = moves.stop_ps[moves.stop_ps != OPEN_PS]
    edges = {"exposure_start": photons.frames.start_ps, "exposure_end": photons.frames.stop_ps,
             "move_start": moves.start_ps, "move_end": move_end}
    times = [photons.time_ps, *edges.values()]
    dets = [photon_det, *(np.full(e.size, MARKERS[k], np.uint8) for k, e in edges.items())]
    order = np.argsort(np.concatenate(times), kind="stable")
    timestamps = np.concatenate(times)[order].astype(np.int64)
    detectors = np.concatenate(dets)[order]
    nanotimes = np.concatenate([photon_nano, np.full(timestamps.size - photons.n,
                                                     NANOTIME_UNKNOWN, np.uint16)])[order]

    apds = [0] if meas.apd2_channel is None else [0, 1]
    info = dict(meas.metadata)
    laser = _group_attrs(source, "laser")
    rate = 1e12 / period
    wavelength = float(laser.get("wavelength_nm", 475.0)) * 1e-9
    n_frames = photons.frames.n
    spectra = _spectra(source, meas)[:n_frames]
    sample_name = " ".join(x for x in (info.get("sample", ""), info.get("particle", "")) if x)
    data: dict[str, Any] = {
        "description": (f"cryoscope polarization series of particle "
                        f"{info.get('particle') or '?'} ({info.get('sample_type', 'unknown')}); "
                        f"{info.get('notes', '')}").strip("; "),
        "acquisition_duration": float(meas.duration_s) if math.isfinite(meas.duration_s)
        else float((photons.time_ps[-1] - photons.time_ps[0]) * 1e-12) if photons.n else 0.0,
        "photon_data": {
            "timestamps": timestamps,
            "timestamps_specs": {"timestamps_unit": 1e-12},
            "detectors": detectors,
            "nanotimes": nanotimes,
            "nanotimes_specs": {"tcspc_unit": unit_ps * 1e-12, "tcspc_num_bins": n_bins,
                                "tcspc_range": n_bins * unit_ps * 1e-12},
            "measurement_specs": {
                "measurement_type": "generic",
                "laser_repetition_rate": rate,
                "detectors_specs": {"non_photon_id1": np.array(sorted(MARKERS.values()),
                                                               np.uint8)},
            },
        },
        "setup": {
            "num_pixels": len(apds), "num_spots": 1, "num_spectral_ch": 1,
            "num_polarization_ch": 1, "num_split_ch": 1, "modulated_excitation": False,
            "excitation_alternated": [False], "lifetime": True,
            "excitation_wavelengths": [wavelength], "excitation_cw": [False],
            "detection_wavelengths": [float(np.mean(meas.wavelength_nm)) * 1e-9],
            "laser_repetition_rates": [rate],
            "detectors": _detectors(meas, detectors),
        },
        "sample": {"num_dyes": 1, "dye_names": info.get("sample_type", "unknown"),
                   "buffer_name": "vacuum, cryostat", "sample_name": sample_name or "unknown"},
        "identity": {"author": info.get("operator", "") or "unknown",
                     "software": "cryoscope", "software_version": __version__},
        "provenance": {"filename": str(source.resolve()), "software": "cryoscope",
                       "software_version": str(attrs.get("software_version", ""))},
        "user": {"cryoscope": {
            "spectra_adu": spectra,
            "wavelength_nm": meas.wavelength_nm,
            "exposure_start_ps": photons.frames.start_ps[:n_frames],
            "exposure_end_ps": photons.frames.stop_ps[:n_frames],
            "frame_waveplate_deg": photons.frames.theta_deg,
            "move_start_ps": moves.start_ps,
            "move_end_ps": move_end,
            "waveplate_rest_deg": photons.stage.rest_deg,
            "markers": json.dumps(MARKERS),
            "measurement": json.dumps(info),
            "source_status": meas.status,
        }},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    with contextlib.redirect_stdout(io.StringIO()):  # phconvert prints "Saving: ..."
        phconvert.hdf5.save_photon_hdf5(data, h5_fname=str(target), overwrite=True,
                                        close=True, validate=True, warnings=False)
    log.info("%s: %d photons, %d markers -> %s", source, photons.n, timestamps.size - photons.n,
             target)
    return target


def _detectors(meas: Any, detectors: np.ndarray) -> dict[str, Any]:
    """``/setup/detectors``: every id in ``photon_data/detectors`` (APDs and markers) with the
    time-tagger input it comes from (``id_hardware``; a falling edge is negative)."""
    rows = [(0, meas.apd_channel, "APD")]
    if meas.apd2_channel is not None:
        rows.append((1, meas.apd2_channel, "APD2"))
    hardware = {"exposure_start": meas.camera_channel, "exposure_end": -meas.camera_channel,
                "move_start": meas.stage_channel, "move_end": -meas.stage_channel}
    rows += [(MARKERS[name], hardware[name], name) for name in MARKERS]
    counts = np.bincount(detectors, minlength=256)
    return {"id": np.array([r[0] for r in rows], np.uint8),
            "id_hardware": np.array([r[1] for r in rows], np.int16),
            "label": [r[2] for r in rows],
            "counts": np.array([counts[r[0]] for r in rows], np.int64)}


def _group_attrs(path: Path, group: str) -> dict[str, Any]:

    with open_h5(path) as f:
        return dict(f[group].attrs) if group in f else {}
