"""Optical and detector models of the simulated bench: the grating and the EMCCD noise chain."""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor

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


def emccd_readout(holding: npt.NDArray[np.int64], photons: npt.NDArray[np.int64],
                  shape: tuple[int, ...], binned_rows: int | npt.NDArray[np.int64],
                  exposure_s: float, em_gain: int, temperature_c: float, optics: OpticsParams,
                  rng: np.random.Generator,
                  read_noise: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.uint16]:
    """Turn photons per (binned) pixel into ADU through the EMCCD chain of PHYSICS.md.

    photons × QE + clock-induced charge + dark → EM register (Gamma(n, gain)) → read noise →
    e⁻/ADU → bias → 16-bit clip. The photons come sparse, as a frame of ``shape`` holds them:
    ``photons[i]`` (> 0) in the pixel of flat index ``holding[i]`` (ascending, unique).
    ``binned_rows`` physical pixels are summed on chip into each output pixel of a row (tracks:
    an array ``(rows, 1)``), so CIC and dark scale with it while read noise is added once.

    QE, EM register and background are drawn for the pixels that hold charge only (the
    background as a Poisson count per row spread uniformly over the row, which is the same
    distribution as a Poisson draw per pixel), in ascending pixel order; read noise is drawn for
    every pixel, from ``rng`` or given (``read_noise``: standard normal, one value a pixel, used
    up). Nothing of the frame's size is made but the ADU themselves: a full frame's dense
    electron counts (8 MiB, scanned twice) held the GIL for ~10 ms.
    """
    n = math.prod(shape)
    detected = rng.binomial(photons, optics.emccd_quantum_efficiency)
    background_e = np.asarray(binned_rows) * (optics.emccd_cic_per_pixel
                                              + dark_current_e_per_s(optics, temperature_c)
                                              * exposure_s)
    columns = shape[-1]
    per_row = rng.poisson(np.broadcast_to(background_e, (*shape[:-1], 1)).reshape(-1) * columns)
    where = (np.repeat(np.arange(per_row.size) * columns, per_row)
             + rng.integers(0, columns, int(per_row.sum())))
    pixels, inverse = np.unique(np.concatenate([holding, where]), return_inverse=True)
    electrons = np.bincount(inverse, weights=np.concatenate(
        [detected, np.ones(where.shape[0], np.int64)])).astype(np.int64)
    charged = electrons > 0
    pixels, counts = pixels[charged], electrons[charged]
    signal = rng.gamma(counts, float(em_gain)) if em_gain > 1 else counts.astype(np.float64)
    adu = rng.standard_normal(n, dtype=np.float32) if read_noise is None else read_noise
    adu *= optics.emccd_read_noise_e / optics.emccd_electrons_per_adu
    adu += optics.emccd_bias_adu
    adu[pixels] += signal / optics.emccd_electrons_per_adu
    np.rint(adu, out=adu)
    np.clip(adu, 0, 65535, out=adu)
    return adu.astype(np.uint16).reshape(shape)


class ReadNoise:
    """Standard normal read noise for whole frames, drawn one frame ahead on a helper thread:
    numpy draws without the GIL, so the acquisition thread finds a frame's noise ready instead
    of spending ~15 ms a full frame drawing it. Its own random stream, taken in order, keeps a
    seeded run reproducible."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[int, Future[npt.NDArray[np.float32]]] | None = None

    def take(self, n: int) -> npt.NDArray[np.float32]:
        """Noise for ``n`` pixels; the next ``n`` are drawn meanwhile."""
        ahead, self._ahead = self._ahead, None
        drawn = ahead[1].result() if ahead is not None else None  # in order, always
        noise = drawn if drawn is not None and drawn.size == n else self._draw(n)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="sim-read-noise")
        self._ahead = (n, self._pool.submit(self._draw, n))
        return noise

    def _draw(self, n: int) -> npt.NDArray[np.float32]:
        return self._rng.standard_normal(n, dtype=np.float32)

    def close(self) -> None:
        """Stop the helper thread (a later :meth:`take` starts it again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._ahead = None, None
