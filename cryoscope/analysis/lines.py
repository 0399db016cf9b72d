"""Emission-line model: zero-phonon lines with tied LO-phonon replicas, fitted to a spectrum.

Each ZPL is a Voigt profile (Lorentzian of FWHM γ, the line; Gaussian of σ shared by all lines,
the spectrograph's resolution) of area A at E0, plus two LO-phonon replicas at E0 − Δ1 (CdSe LO,
started at 27 meV) and E0 − Δ2 (CdS LO, started at 37 meV) with free relative areas w1, w2 and a
Lorentzian FWHM of b·γ (b, Δ1 and Δ2 shared by the lines of a fit, Δ1, Δ2 fitted with errors).
Several ZPLs for a dimer.
Weighted least squares with EMCCD variances (2 × signal in photons, plus read noise).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special

from cryoscope.analysis.spectra import NoiseModel

__all__ = ["REPLICA_RANGE_MEV", "REPLICA_RATIO", "REPLICA_SHIFTS_MEV", "LineFit", "SpectrumFit",
           "find_zpls", "fit_lines", "line_model"]

log = logging.getLogger(__name__)

#: Start values of the LO-phonon replica shifts below each ZPL (meV): CdSe, CdS (fitted).
REPLICA_SHIFTS_MEV = (27.0, 37.0)
#: How far each fitted replica shift may move from its start value (meV).
REPLICA_SHIFT_FREEDOM_MEV = 6.0
#: A peak this far below a much taller peak is taken for its LO replica (meV) ...
REPLICA_RANGE_MEV = (21.0, 45.0)
#: ... when the taller peak is at least this many times its height.
REPLICA_RATIO = 4.0


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
    replica_shifts_mev: tuple[float, float]  #: fitted replica shifts below the ZPLs (meV)
    replica_shifts_err_mev: tuple[float, float]  #: their 1σ errors (meV)
    reduced_chi2: float
    energy_ev: np.ndarray
    model: np.ndarray  #: fitted model on ``energy_ev`` (ADU)


_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _voigt(x: np.ndarray, sigma: float, hwhm: float, derivatives: bool = False
           ) -> tuple[np.ndarray, ...]:
    """Voigt profile V(x; σ, γ) (unit area; γ the Lorentzian HWHM) from the Faddeeva function,
    and with ``derivatives`` also ∂V/∂x, ∂V/∂γ, ∂V/∂σ."""
    sigma = max(sigma, 1e-3)
    z = (x + 1j * hwhm) / (sigma * math.sqrt(2.0))
    w = special.wofz(z)
    norm = 1.0 / (sigma * _SQRT_2PI)
    v = w.real * norm
    if not derivatives:
        return (v,)
    dw = -2.0 * z * w + 2j / math.sqrt(math.pi)
    dz = norm / (sigma * math.sqrt(2.0))
    return v, dw.real * dz, -dw.imag * dz, (dw * (-z)).real * norm / sigma - v / sigma


def _profile(e_mev: np.ndarray, center_mev: float, gamma_mev: float, sigma_mev: float
             ) -> np.ndarray:
    return _voigt(e_mev - center_mev, sigma_mev, gamma_mev / 2.0)[0]


def line_model(energy_ev: np.ndarray, zpl_ev: np.ndarray, areas: np.ndarray, gammas_mev: np.ndarray,
               replica_weights: np.ndarray, sigma_mev: float, baseline: float,
               replica_broadening: float = 1.0,
               replica_shifts_mev: tuple[float, float] | np.ndarray = REPLICA_SHIFTS_MEV
               ) -> np.ndarray:
    """Counts per pixel (ADU) of the line model; ``replica_weights`` ``[lines, 2]``.

    The replicas lie ``replica_shifts_mev`` below each ZPL; their Lorentzian FWHM is
    ``replica_broadening`` × the ZPL's (phonon lifetimes make them broader).
    """
    e = np.asarray(energy_ev, float) * 1000.0
    step = np.gradient(e)
    out = np.full(e.shape, baseline, float)
    for e0, a, g, w in zip(zpl_ev, areas, gammas_mev, replica_weights, strict=True):
        c = e0 * 1000.0
        shape = _profile(e, c, g, sigma_mev)
        for shift, wk in zip(replica_shifts_mev, w, strict=True):
            shape = shape + wk * _profile(e, c - shift, g * replica_broadening, sigma_mev)
        out += a * shape * step
    return out


def find_zpls(energy_ev: np.ndarray, spectrum: np.ndarray, noise_sigma: np.ndarray | float,
              max_lines: int = 4, min_snr: float = 8.0, min_width_px: float = 1.5
              ) -> np.ndarray:
    """Candidate ZPL energies (eV, strongest first): peaks that are not phonon replicas.

    A peak needs a prominence of ``min_snr`` local noise σ and a FWHM of ``min_width_px`` pixels;
    one lying REPLICA_RANGE_MEV below a peak REPLICA_RATIO times taller is its replica.
    """
    # imported here: scipy.signal (with the scipy.stats it imports) takes ~0.6 s to load, and
    # the file analysis does not come here
    from scipy import signal

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
            near = REPLICA_RANGE_MEV[0] < below < REPLICA_RANGE_MEV[1]
            if near and heights[i] > REPLICA_RATIO * heights[j]:
                replica = True
        if not replica:
            keep.append(j)
        if len(keep) == max_lines:
            break
    return energy_ev[peaks[keep]]


def fit_lines(energy_ev: np.ndarray, spectrum: np.ndarray, zpl_guess_ev: np.ndarray,
              noise: NoiseModel, frames: int = 1, *,
              replica_shifts_mev: tuple[float, float] | None = None,
              resolution_sigma_mev: float | None = None) -> SpectrumFit:
    """Fit ZPLs (started at ``zpl_guess_ev``) with tied replicas to a spectrum summed over
    ``frames`` frames (ADU); weights from the EMCCD noise model.

    ``replica_shifts_mev``: fixed replica shifts (errors 0); None fits them, started at
    REPLICA_SHIFTS_MEV. ``resolution_sigma_mev``: fixed spectrograph resolution (Gaussian σ);
    None fits it.
    """
    e = np.asarray(energy_ev, float)
    y = np.asarray(spectrum, float)
    guesses = np.sort(np.asarray(zpl_guess_ev, float))[::-1]
    k = guesses.size
    if k == 0:
        raise ValueError("no ZPL to fit")
    fixed = replica_shifts_mev is not None
    shifts0 = np.array(replica_shifts_mev if fixed else REPLICA_SHIFTS_MEV, float)
    freedom = 0.0 if fixed else REPLICA_SHIFT_FREEDOM_MEV
    lo = guesses.min() - (float(shifts0.max()) + freedom + 8.0) / 1000.0
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
    if not fixed:  # the replica shifts are the last two parameters
        p0 = np.concatenate([p0, shifts0])
        lower = np.concatenate([lower, shifts0 - REPLICA_SHIFT_FREEDOM_MEV])
        upper = np.concatenate([upper, shifts0 + REPLICA_SHIFT_FREEDOM_MEV])
    pinned = resolution_sigma_mev is not None
    sigma_fixed = max(resolution_sigma_mev, 1e-3) if resolution_sigma_mev is not None else 0.0
    if pinned:  # the resolution is no parameter: drop log σ from the vector
        p0, lower, upper = (np.delete(x, 5 * k) for x in (p0, lower, upper))
    # Parameter layout after the 5k per-line ones: [log σ], baseline, log b, [Δ1, Δ2].
    i_b = 5 * k + (0 if pinned else 1)
    i_r, i_d = i_b + 1, i_b + 2
    p0 = np.clip(p0, lower + 1e-9, upper - 1e-9)

    def unpack(p: np.ndarray) -> tuple[Any, ...]:
        return (p[:k] / 1000.0, np.exp(p[k:2 * k]), np.exp(p[2 * k:3 * k]),
                p[3 * k:5 * k].reshape(k, 2), sigma_fixed if pinned else np.exp(p[5 * k]),
                p[i_b], np.exp(p[i_r]), shifts0 if fixed else p[i_d:i_d + 2])

    e_mev = e * 1000.0
    step_px = np.gradient(e_mev)

    def model_jac(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model (as :func:`line_model`) and ∂ model / ∂ parameters (analytic),
        [pixels, parameters], from one evaluation of each profile."""
        z, a, g, rw, s, b, r, d = unpack(p)
        model = np.full(e.size, b, float)
        jac = np.zeros((e.size, p.size))
        d_sigma = np.zeros(e.size)
        jac[:, i_b] = 1.0
        for i in range(k):
            scale = a[i] * step_px
            v0, vx, vg, vs = _voigt(e_mev - z[i] * 1000.0, s, g[i] / 2.0, True)
            model += v0 * scale
            jac[:, i] = -vx * scale
            jac[:, k + i] = v0 * scale
            jac[:, 2 * k + i] = g[i] / 2.0 * vg * scale
            d_sigma += s * vs * scale
            for j in range(2):
                rv, rx, rg, rs = _voigt(e_mev - z[i] * 1000.0 + d[j], s, r * g[i] / 2.0, True)
                model += rw[i, j] * rv * scale
                jac[:, i] -= rw[i, j] * rx * scale
                jac[:, k + i] += rw[i, j] * rv * scale
                jac[:, 2 * k + i] += rw[i, j] * r * g[i] / 2.0 * rg * scale
                jac[:, 3 * k + 2 * i + j] = rv * scale
                d_sigma += rw[i, j] * s * rs * scale
                jac[:, i_r] += rw[i, j] * r * g[i] / 2.0 * rg * scale
                if not fixed:
                    jac[:, i_d + j] += rw[i, j] * rx * scale
        if not pinned:
            jac[:, 5 * k] = d_sigma
        return model, jac

    # least_squares asks for the Jacobian at the point whose residuals it has just taken
    last: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def evaluate(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = p.tobytes()
        if key not in last:
            last.clear()
            last[key] = model_jac(p)
        return last[key]

    weight = 1.0 / np.sqrt(noise.variance(np.maximum(y, 0.0), frames))
    res = None
    for _ in range(3):
        w = weight

        def resid(p: np.ndarray, w: np.ndarray = w) -> np.ndarray:
            return (evaluate(p)[0] - y) * w

        def jac(p: np.ndarray, w: np.ndarray = w) -> np.ndarray:
            return evaluate(p)[1] * w[:, None]

        with np.errstate(over="ignore", invalid="ignore"):  # trial steps may overflow exp()
            res = optimize.least_squares(resid, p0, jac=jac, bounds=(lower, upper),
                                         x_scale="jac")
        p0 = res.x
        z, a, g, rw, s, b, r, d = unpack(res.x)
        weight = 1.0 / np.sqrt(noise.variance(line_model(e, z, a, g, rw, s, b, r, d), frames))
    assert res is not None
    z, a, g, rw, s, b, r, d = unpack(res.x)
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
                       replica_broadening=float(r),
                       replica_shifts_mev=(float(d[0]), float(d[1])),
                       replica_shifts_err_mev=((0.0, 0.0) if fixed else
                                               (float(err[i_d]), float(err[i_d + 1]))),
                       reduced_chi2=chi2, energy_ev=e, model=line_model(e, z, a, g, rw, s, b, r, d))
