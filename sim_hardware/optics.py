"""Optical and detector models of the simulated bench: the grating and the EMCCD noise chain."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_hardware.params import OpticsParams


def grating_calibration_nm(lines_per_mm: float, center_wavelength_nm: float,
                           focal_length_mm: float, inclusion_angle_deg: float, pixels: int,
                           pixel_width_um: float) -> npt.NDArray[np.float64]:
    """Wavelength at each pixel center of a Czerny–Turner spectrograph (first order).

    Grating equation ``mλ/d = sin α + sin β`` with ``α = ψ − γ/2``, ``β = ψ + γ/2`` at the center
    column (ψ the grating rotation, γ the inclusion angle); a column ``x`` from the center sees
    ``β + atan(x/f)``.
    """
    d_nm = 1e6 / lines_per_mm
    half_gamma = math.radians(inclusion_angle_deg) / 2
    sin_psi = center_wavelength_nm / (2 * d_nm * math.cos(half_gamma))
    if not -1 < sin_psi < 1:
        raise ValueError(
            f"center wavelength {center_wavelength_nm} nm is out of reach of a "
            f"{lines_per_mm:g} l/mm grating"
        )
    psi = math.asin(sin_psi)
    alpha, beta_c = psi - half_gamma, psi + half_gamma
    x_mm = (np.arange(pixels) - (pixels - 1) / 2) * pixel_width_um * 1e-3
    beta = beta_c + np.arctan(x_mm / focal_length_mm)
    return d_nm * (math.sin(alpha) + np.sin(beta))


def dark_current_e_per_s(optics: OpticsParams, temperature_c: float) -> float:
    """Dark current per pixel at a sensor temperature (doubles every 7 °C above −80 °C)."""
    return optics.emccd_dark_e_per_s * 2.0 ** ((temperature_c + 80.0) / 7.0)


def emccd_readout(photons: npt.NDArray[np.int64], binned_rows: int | npt.NDArray[np.int64],
                  exposure_s: float,
                  em_gain: int, temperature_c: float, optics: OpticsParams,
                  rng: np.random.Generator) -> npt.NDArray[np.uint16]:
    """Turn photons per (binned) pixel into ADU through the EMCCD chain of PHYSICS.md.

    photons × QE + clock-induced charge + dark → EM register (Gamma(n, gain)) → read noise →
    e⁻/ADU → bias → 16-bit clip. ``binned_rows`` physical pixels are summed on chip into each
    output pixel (tracks), so CIC and dark scale with it while read noise is added once.
    """
    shape, n = photons.shape, photons.size
    flat = photons.reshape(-1)
    electrons = _sliced(lambda s: rng.binomial(flat[s], optics.emccd_quantum_efficiency), n)
    background_e = binned_rows * (optics.emccd_cic_per_pixel
                                  + dark_current_e_per_s(optics, temperature_c) * exposure_s)
    background = np.broadcast_to(background_e, shape).reshape(-1)
    electrons = electrons + _sliced(lambda s: rng.poisson(background[s]), n)
    if em_gain > 1:
        amplified = np.zeros(n, dtype=np.float64)
        lit = electrons > 0
        counts = electrons[lit]
        amplified[lit] = _sliced(lambda s: rng.gamma(counts[s], float(em_gain)), counts.size)
    else:
        amplified = electrons.astype(np.float64)
    amplified += _sliced(lambda s: rng.normal(0.0, optics.emccd_read_noise_e,
                                              size=s.stop - s.start), n)
    image = amplified.reshape(shape)
    adu = np.rint(image / optics.emccd_electrons_per_adu + optics.emccd_bias_adu)
    return np.clip(adu, 0, 65535).astype(np.uint16)


#: Pixels per random-number call. A full frame is drawn in slices (the same numbers, in the same
#: order, as in one call) so that the bench, running on an acquisition thread, lets other threads
#: (a GUI's event loop) take the GIL between slices instead of waiting tens of ms per call.
_SLICE = 1 << 16


def _sliced(draw: Callable[[slice], npt.NDArray[Any]], n: int) -> npt.NDArray[Any]:
    """``draw`` over ``[0, n)`` in slices of at most :data:`_SLICE`, concatenated."""
    if n <= _SLICE:
        return np.asarray(draw(slice(0, n)))
    return np.concatenate([draw(slice(i, min(i + _SLICE, n))) for i in range(0, n, _SLICE)])
