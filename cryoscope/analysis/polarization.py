"""Linear polarization from V and H counts per waveplate angle.

Convention (``PHYSICS.md``): I_V ∝ g_V(1 + m)/2, I_H ∝ g_H(1 − m)/2 with
m(θ) = p·cos(4θ − 2φ), θ the waveplate angle, φ the dipole angle (mod 180°), p the degree of
polarization and g_V/g_H the channel transmission ratio, all fitted jointly.

Likelihood: V given V+H is binomial with success probability
f(θ) = g_V(1+m) / (g_V(1+m) + g_H(1−m)); brightness changes (blinking) cancel. EMCCD counts have
twice the Poisson variance, so the binomial covariance is scaled by the excess-noise factor
(counts in photons) or by the dispersion measured from the residuals (counts in any unit, e.g. ADU).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from cryoscope.analysis.lifetime import numerical_hessian

__all__ = ["PolarizationFit", "fit_polarization", "polarization_model"]

log = logging.getLogger(__name__)


#: A fit with p above this ends on the physical boundary p = 1.
BOUNDARY_P = 0.995
#: The V fraction is modulated as cos 4θ (a 90° period of the waveplate): p, φ and g_V/g_H are
#: told apart only when the angles cover at least half of the cycle (45° of the waveplate).
MIN_COVERAGE_DEG = 180.0


@dataclass(frozen=True)
class PolarizationFit:
    """Degree p, dipole angle φ (deg, in [0, 180)), g_V/g_H and their 1σ uncertainties.

    When p and φ are not determined — the fit ends on the boundary p = 1, or the likelihood has
    no positive curvature there (degenerate data: a channel without signal, no modulation to
    place φ by) — their uncertainties are NaN and :attr:`problem` says why.
    """

    p: float
    p_err: float
    phi_deg: float
    phi_err_deg: float
    gain_ratio: float  #: g_V / g_H
    gain_ratio_err: float
    dispersion: float  #: variance relative to binomial used for the uncertainties
    n_points: int
    problem: str = ""  #: why p and φ are not determined; empty when they are

    @property
    def determined(self) -> bool:
        """Whether p and φ are determined (finite, positive uncertainties)."""
        return not self.problem


def polarization_model(theta_deg: np.ndarray, p: float, phi_deg: float, gain_ratio: float
                       ) -> np.ndarray:
    """Expected V / (V + H) at waveplate angles ``theta_deg``."""
    m = p * np.cos(np.radians(4 * np.asarray(theta_deg, float) - 2 * phi_deg))
    v = gain_ratio * (1 + m)
    return v / (v + (1 - m))


def fit_polarization(v: np.ndarray, h: np.ndarray, theta_deg: np.ndarray, *,
                     counts_in_photons: bool = False, excess_noise: float = 2.0
                     ) -> PolarizationFit:
    """Fit p, φ and g_V/g_H to V and H counts measured at waveplate angles ``theta_deg`` (deg).

    ``counts_in_photons``: V and H are in detected photons, so the binomial variance is scaled by
    at least ``excess_noise`` (2 for an EMCCD in gain), or by the Pearson dispersion of the
    residuals if that is larger. Otherwise (ADU, arbitrary units) the scale is the Pearson
    dispersion alone. Raises :class:`ValueError` for fewer than 4 points with signal, or no
    signal at all in V or in H.
    """
    v = np.asarray(v, float)
    h = np.asarray(h, float)
    th = np.radians(np.asarray(theta_deg, float))
    n = v + h
    ok = np.isfinite(v) & np.isfinite(h) & np.isfinite(th) & (n > 0)
    v, h, th, n = v[ok], h[ok], th[ok], n[ok]
    if v.shape[0] < 4:
        raise ValueError(f"need at least 4 (V, H) points with signal, got {v.shape[0]}")
    for name, counts in (("V", v), ("H", h)):
        if not np.any(counts > 0):  # g_V/g_H would run off to 0 or ∞, taking p and φ along
            raise ValueError(f"no signal in the {name} channel")
    c4, s4 = np.cos(4 * th), np.sin(4 * th)

    def frac(x: np.ndarray) -> np.ndarray:
        m = x[1] * c4 + x[2] * s4
        gv = math.exp(x[0])
        f = gv * (1 + m) / (gv * (1 + m) + (1 - m))
        return np.clip(f, 1e-12, 1 - 1e-12)

    def nll(x: np.ndarray) -> float:
        if x[1] ** 2 + x[2] ** 2 >= 0.9999:
            return 1e300
        f = frac(x)
        return float(-np.sum(v * np.log(f) + h * np.log1p(-f)))

    def nll_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        """nll and its gradient: with f = u / (u + w), u = g_V/g_H (1 + m), w = 1 − m,
        ∂f/∂r = f (1 − f) and ∂f/∂m = 2 g_V/g_H / (u + w)²."""
        if x[1] ** 2 + x[2] ** 2 >= 0.9999:
            return 1e300, np.zeros(3)
        m = x[1] * c4 + x[2] * s4
        gv = math.exp(x[0])
        u, w = gv * (1 + m), 1 - m
        f = np.clip(u / (u + w), 1e-12, 1 - 1e-12)
        dnll_df = h / (1 - f) - v / f
        df_dm = dnll_df * 2 * gv / (u + w) ** 2
        gradient = np.array([np.sum(dnll_df * f * (1 - f)), np.sum(df_dm * c4),
                             np.sum(df_dm * s4)])
        return float(-np.sum(v * np.log(f) + h * np.log1p(-f))), gradient

    # Start: the V fraction's mean gives g_V/g_H, its cos 4θ / sin 4θ parts the (a, b) vector.
    f_obs = np.clip(np.sum(v) / np.sum(n), 0.01, 0.99)
    r0 = math.log(f_obs / (1 - f_obs))
    dev = v / n - f_obs
    a0 = 2 * float(np.average(dev * c4, weights=n)) / (2 * f_obs * (1 - f_obs))
    b0 = 2 * float(np.average(dev * s4, weights=n)) / (2 * f_obs * (1 - f_obs))
    scale = math.hypot(a0, b0)
    if scale > 0.95:
        a0, b0 = 0.95 * a0 / scale, 0.95 * b0 / scale
    # The wall at p = 1 (nll = 1e300) overflows inside the optimizers' arithmetic: harmless.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        start = np.array([r0, a0, b0])
        # fatol relative to the likelihood's size: an absolute 1e-10 is below the float
        # resolution of an nll of ~1e8 (large counts) and ran Nelder–Mead to maxiter
        res = optimize.minimize(nll_and_gradient, start, jac=True, method="BFGS",
                                options={"gtol": 1e-8})
        if not _converged(res):
            # near the wall p = 1 or from a poor start: the simplex first, as a fallback
            fatol = 1e-12 * max(1.0, abs(float(nll(start))))
            res = optimize.minimize(nll, start, method="Nelder-Mead",
                                    options={"xatol": 1e-8, "fatol": fatol, "maxiter": 4000})
            res = optimize.minimize(nll, res.x, method="BFGS", options={"gtol": 1e-8})
    x = res.x
    f = frac(x)
    dof = max(v.shape[0] - 3, 1)
    pearson = float(np.sum((v - n * f) ** 2 / (n * f * (1 - f))) / dof)
    dispersion = max(excess_noise, pearson) if counts_in_photons else pearson
    with np.errstate(over="ignore", invalid="ignore"):
        hess = numerical_hessian(nll, x, np.array([1e-5, 1e-5, 1e-5]))
    # A minimum has a finite, positive definite Hessian; anything else has no covariance (its
    # inverse would give negative or zero variances, shown as a fake ± 0).
    cov = np.full((3, 3), np.nan)
    if np.all(np.isfinite(hess)):
        with contextlib.suppress(np.linalg.LinAlgError):
            np.linalg.cholesky(hess)
            cov = np.linalg.inv(hess) * dispersion
    a, b = float(x[1]), float(x[2])
    p = math.hypot(a, b)
    phi = 0.5 * math.degrees(math.atan2(b, a)) % 180.0
    # Jacobians of p = |(a, b)| and φ = atan2(b, a)/2 (φ has none at p = 0).
    jp = np.array([0.0, a, b]) / p if p > 0 else np.array([0.0, 1.0, 0.0])
    jphi = 0.5 * np.array([0.0, -b, a]) / (p * p) if p > 0 else np.full(3, np.nan)
    p_err = _sigma(float(jp @ cov @ jp))
    phi_err = math.degrees(_sigma(float(jphi @ cov @ jphi)))
    problem = ""
    coverage = _modulation_coverage_deg(th)
    if coverage < MIN_COVERAGE_DEG:
        # a slice of the cos 4θ modulation fits any p with a matching g_V/g_H (a fit of the
        # first few angles of a run gave p = 0.96 and g_V/g_H = 0.32 for p = 0.7, g = 1.1)
        problem = (f"the angles cover {coverage / 4:.0f}° of the waveplate's 90° period "
                   f"({MIN_COVERAGE_DEG / 4:.0f}° needed to tell p and φ from g_V/g_H)")
    elif p > BOUNDARY_P:
        # On the physical boundary p = 1 the curvature says nothing: no uncertainties.
        problem = f"p = {p:.3f} at the boundary p = 1"
    elif not (math.isfinite(p_err) and math.isfinite(phi_err)):
        problem = "no finite uncertainty: the data do not constrain p and φ"
    if problem:
        log.debug("polarization fit not determined: %s", problem)
        p_err = phi_err = float("nan")
    g = math.exp(float(x[0]))
    return PolarizationFit(p=p, p_err=p_err, phi_deg=phi, phi_err_deg=phi_err, gain_ratio=g,
                           gain_ratio_err=g * _sigma(float(cov[0, 0])), dispersion=dispersion,
                           n_points=int(v.shape[0]), problem=problem)


def _converged(res: optimize.OptimizeResult) -> bool:
    """Whether a BFGS result is the minimum: converged, or stopped at the float resolution of
    nll (status 2: gtol is below it for large counts) with a Newton decrement gᵀ H⁻¹ g below
    1e-8 (nll within 1e-8 of the minimum, the parameters within 1e-4 σ). A line search that
    ran into the wall p = 1 stops with status 2 far from it."""
    x = np.asarray(res.x)
    if not np.all(np.isfinite(x)) or x[1] ** 2 + x[2] ** 2 >= 0.9999:
        return False
    if res.status == 0:
        return True
    g = np.asarray(res.jac)
    return bool(res.status == 2 and float(g @ np.asarray(res.hess_inv) @ g) < 1e-8)


def _modulation_coverage_deg(theta_rad: np.ndarray) -> float:
    """How much of the modulation's cycle (4θ, degrees of 360) the angles cover: the cycle
    minus its largest gap without an angle."""
    phase = np.sort(np.mod(4 * theta_rad, 2 * math.pi))
    gaps = np.diff(np.append(phase, phase[0] + 2 * math.pi))
    return math.degrees(2 * math.pi - float(gaps.max()))


def _sigma(variance: float) -> float:
    """The standard deviation of a variance from a covariance matrix; NaN unless positive."""
    return math.sqrt(variance) if math.isfinite(variance) and variance > 0 else float("nan")
