"""Emission-line model: zero-phonon lines with tied LO-phonon replicas, fitted to a spectrum.

Each ZPL is a Voigt profile (Lorentzian of FWHM γ, the line; Gaussian of σ shared by all lines,
the spectrograph's resolution) of area A at E0, plus replicas at E0 − 27 meV (CdSe LO) and
E0 − 37 meV (CdS LO) with free relative areas w27, w37 and a Lorentzian FWHM of b·γ (b shared).
Several ZPLs for a dimer.
Weighted least squares with EMCCD variances (2 × signal in photons, plus read noise).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, signal, special

from cryoscope.analysis.spectra import NoiseModel

__all__ = ["REPLICA_SHIFTS_MEV", "LineFit", "SpectrumFit", "find_zpls", "fit_lines", "line_model"]

log = logging.getLogger(__name__)

#: LO-phonon replica shifts below each ZPL (meV): CdSe, CdS.
REPLICA_SHIFTS_MEV = (27.0, 37.0)


@dataclass(frozen=True)
class LineFit:
    """One ZPL with its replicas (energies in eV, widths in meV, areas in ADU)."""

    zpl_ev: float
    zpl_err_ev: float
    fwhm_mev: float  #: Lorentzian FWHM of the line (resolution removed)
    fwhm_err_mev: float
    area: float
    replica_weights: tuple[float, float]  #: areas of the −27 / −37 meV replicas relative to ZPL
    replica_weights_err: tuple[float, float]


@dataclass(frozen=True)
class SpectrumFit:
    """All lines of a spectrum, the shared resolution σ (meV), baseline and reduced χ²."""

    lines: tuple[LineFit, ...]
    resolution_sigma_mev: float
    baseline: float
    replica_broadening: float  #: replica Lorentzian FWHM / ZPL FWHM (shared by all lines)
    reduced_chi2: float
    energy_ev: np.ndarray
    model: np.ndarray  #: fitted model on ``energy_ev`` (ADU)


def _profile(e_mev: np.ndarray, center_mev: float, gamma_mev: float, sigma_mev: float
             ) -> np.ndarray:
    return special.voigt_profile(e_mev - center_mev, max(sigma_mev, 1e-3), gamma_mev / 2.0)


def line_model(energy_ev: np.ndarray, zpl_ev: np.ndarray, areas: np.ndarray, gammas_mev: np.ndarray,
               replica_weights: np.ndarray, sigma_mev: float, baseline: float,
               replica_broadening: float = 1.0) -> np.ndarray:
    """Counts per pixel (ADU) of the line model; ``replica_weights`` ``[lines, 2]``.

    The replicas' Lorentzian FWHM is ``replica_broadening`` × the ZPL's (phonon lifetimes make
    them broader).
    """
    e = np.asarray(energy_ev, float) * 1000.0
    step = np.gradient(e)
    out = np.full(e.shape, baseline, float)
    for e0, a, g, w in zip(zpl_ev, areas, gammas_mev, replica_weights, strict=True):
        c = e0 * 1000.0
        shape = _profile(e, c, g, sigma_mev)
        for shift, wk in zip(REPLICA_SHIFTS_MEV, w, strict=True):
            shape = shape + wk * _profile(e, c - shift, g * replica_broadening, sigma_mev)
        out += a * shape * step
    return out


def find_zpls(energy_ev: np.ndarray, spectrum: np.ndarray, noise_sigma: np.ndarray | float,
              max_lines: int = 4, min_snr: float = 8.0, min_width_px: float = 1.5
              ) -> np.ndarray:
    """Candidate ZPL energies (eV, strongest first): peaks that are not phonon replicas.

    A peak needs a prominence of ``min_snr`` local noise σ and a FWHM of ``min_width_px`` pixels.
    """
    y = np.asarray(spectrum, float)
    sig = np.broadcast_to(np.asarray(noise_sigma, float), y.shape)
    smooth = np.convolve(y, np.array([0.25, 0.5, 0.25]), mode="same")
    peaks, props = signal.find_peaks(smooth, prominence=0.0)
    # Significant against the local noise (a bright line's shot noise makes wiggles on its flanks).
    strong = props["prominences"] >= min_snr * sig[peaks]
    # Light is at least as wide as the spectrograph's resolution; single-pixel spikes are not.
    near = np.clip(peaks, 1, y.size - 2)
    raw_peaks = near - 1 + np.argmax(np.stack([y[near - 1], y[near], y[near + 1]]), axis=0)
    with warnings.catch_warnings():
        # a raw maximum that is no peak of y has width 0: excluded below, as it should be
        warnings.filterwarnings("ignore", message="some peaks have a (prominence|width) of 0")
        widths = signal.peak_widths(y, raw_peaks, rel_height=0.5)[0]
    peaks = peaks[strong & (widths >= min_width_px)]
    if peaks.size == 0:
        return np.zeros(0)
    heights = smooth[peaks]
    order = np.argsort(heights)[::-1]
    peaks, heights = peaks[order], heights[order]
    e_mev = energy_ev[peaks] * 1000.0
    keep: list[int] = []
    for j in range(peaks.size):
        replica = False
        for i in keep:
            below = e_mev[i] - e_mev[j]
            near = any(abs(below - s) < 2.5 for s in REPLICA_SHIFTS_MEV)
            if near and heights[i] > 2 * heights[j]:
                replica = True
        if not replica:
            keep.append(j)
        if len(keep) == max_lines:
            break
    return energy_ev[peaks[keep]]


def fit_lines(energy_ev: np.ndarray, spectrum: np.ndarray, zpl_guess_ev: np.ndarray,
              noise: NoiseModel, frames: int = 1) -> SpectrumFit:
    """Fit ZPLs (started at ``zpl_guess_ev``) with tied replicas to a spectrum summed over
    ``frames`` frames (ADU); weights from the EMCCD noise model."""
    e = np.asarray(energy_ev, float)
    y = np.asarray(spectrum, float)
    guesses = np.sort(np.asarray(zpl_guess_ev, float))[::-1]
    k = guesses.size
    if k == 0:
        raise ValueError("no ZPL to fit")
    lo = guesses.min() - (max(REPLICA_SHIFTS_MEV) + 8.0) / 1000.0
    hi = guesses.max() + 8.0 / 1000.0
    sel = (e >= lo) & (e <= hi)
    e, y = e[sel], y[sel]
    step = float(np.mean(np.diff(e))) * 1000.0
    # Start: area from the peak height times ~2 pixels.
    idx = np.clip(np.searchsorted(e, guesses), 0, e.size - 1)
    areas0 = np.maximum(y[idx], 1.0) * 2.5 * step
    p0 = np.concatenate([guesses * 1000.0, np.log(areas0), np.full(k, np.log(0.4)),
                         np.full(2 * k, 0.1), [np.log(0.5 * step), 0.0, np.log(2.0)]])
    lower = np.concatenate([guesses * 1000.0 - 3.0, np.full(k, -np.inf), np.full(k, np.log(0.01)),
                            np.zeros(2 * k), [np.log(0.05 * step), -np.inf, 0.0]])
    upper = np.concatenate([guesses * 1000.0 + 3.0, np.full(k, np.inf), np.full(k, np.log(20.0)),
                            np.full(2 * k, 2.0), [np.log(5 * step), np.inf, np.log(10.0)]])
    p0 = np.clip(p0, lower + 1e-9, upper - 1e-9)

    def unpack(p: np.ndarray) -> tuple[np.ndarray, ...]:
        return (p[:k] / 1000.0, np.exp(p[k:2 * k]), np.exp(p[2 * k:3 * k]),
                p[3 * k:5 * k].reshape(k, 2), np.exp(p[5 * k]), p[5 * k + 1],
                np.exp(p[5 * k + 2]))

    weight = 1.0 / np.sqrt(noise.variance(np.maximum(y, 0.0), frames))
    res = None
    for _ in range(3):
        w = weight

        def resid(p: np.ndarray, w: np.ndarray = w) -> np.ndarray:
            z, a, g, rw, s, b, r = unpack(p)
            return (line_model(e, z, a, g, rw, s, b, r) - y) * w

        res = optimize.least_squares(resid, p0, bounds=(lower, upper), x_scale="jac")
        p0 = res.x
        z, a, g, rw, s, b, r = unpack(res.x)
        weight = 1.0 / np.sqrt(noise.variance(line_model(e, z, a, g, rw, s, b, r), frames))
    assert res is not None
    z, a, g, rw, s, b, r = unpack(res.x)
    dof = max(e.size - res.x.size, 1)
    chi2 = float(np.sum(res.fun ** 2) / dof)
    try:
        cov = np.linalg.pinv(res.jac.T @ res.jac) * max(chi2, 1.0)
        err = np.sqrt(np.abs(np.diag(cov)))
    except np.linalg.LinAlgError:
        err = np.full(res.x.size, np.nan)
    lines = tuple(
        LineFit(zpl_ev=float(z[i]), zpl_err_ev=float(err[i]) / 1000.0, fwhm_mev=float(g[i]),
                fwhm_err_mev=float(g[i] * err[2 * k + i]), area=float(a[i]),
                replica_weights=(float(rw[i, 0]), float(rw[i, 1])),
                replica_weights_err=(float(err[3 * k + 2 * i]), float(err[3 * k + 2 * i + 1])))
        for i in range(k))
    return SpectrumFit(lines=lines, resolution_sigma_mev=float(s), baseline=float(b),
                       replica_broadening=float(r), reduced_chi2=chi2, energy_ev=e,
                       model=line_model(e, z, a, g, rw, s, b, r))
