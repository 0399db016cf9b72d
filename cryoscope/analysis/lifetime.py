"""Fluorescence decays: delay histograms and binned Poisson maximum-likelihood fits.

Model of the expected counts in a delay bin ``[a, b)`` of a laser period ``T``::

    μ = B·(b − a)/w + Σ_i A_i · ∫_a^b (IRF ⊛ D_i)(t) dt

with ``D_i`` the *periodic* (pile-over) decay of component ``i`` — the sum of ``exp(−t/τ_i)/τ_i``
over every earlier pulse — normalized to one photon per period, ``A_i`` its photons, ``B`` the flat
background per bin of width ``w`` and the IRF either a Gaussian (centre ``t0``, width ``σ``, both
fitted; closed-form exponentially modified Gaussian) or a measured array convolved numerically and
shifted by a fitted ``t0``. Fitting minimises the Poisson negative log-likelihood by
Levenberg–Marquardt with its analytic gradient (the Gaussian model and its derivatives are one
compiled pass over the bins); uncertainties come from the inverse Hessian of it. Times are in ns
inside this module unless a name says ps.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
from scipy import ndimage

from cryoscope.analysis.photons import collect_photons
from cryoscope.datafile import MeasurementError

__all__ = [
    "DecayFit",
    "DecayHistogram",
    "FrameDelaySums",
    "decay_histogram",
    "delay_counts",
    "detector_offset_ps",
    "fit_decay",
    "frame_mean_delay_ns",
    "load_irf",
    "model_counts",
    "numerical_hessian",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecayHistogram:
    """Counts per delay bin over one laser period."""

    counts: np.ndarray  #: int64 [bins]
    edges_ns: np.ndarray  #: float64 [bins + 1], bin edges (ns), 0 … period
    period_ns: float

    @property
    def centers_ns(self) -> np.ndarray:
        """Bin centres (ns)."""
        return 0.5 * (self.edges_ns[1:] + self.edges_ns[:-1])


def decay_histogram(delay_ps: np.ndarray, period_ps: int, bin_ps: float = 64.0
                    ) -> DecayHistogram:
    """Histogram of photon delays (ps, ``-1`` = unknown, ignored) over one laser period."""
    n_bins = max(round(period_ps / bin_ps), 1)
    edges = np.linspace(0.0, period_ps / 1000.0, n_bins + 1)
    return DecayHistogram(counts=delay_counts(delay_ps, period_ps, n_bins), edges_ns=edges,
                          period_ns=period_ps / 1000.0)


def delay_counts(delay_ps: np.ndarray, period_ps: int, n_bins: int) -> np.ndarray:
    """The counts of :func:`decay_histogram` (``n_bins`` equal bins over the period), without
    its bin edges: for sums kept block by block."""
    d = np.asarray(delay_ps)
    d = d[d >= 0]
    idx = (d.astype(np.int64) * n_bins) // int(period_ps)
    return np.bincount(idx[idx < n_bins], minlength=n_bins).astype(np.int64)


def frame_mean_delay_ns(frame: np.ndarray, delay_ps: np.ndarray, n_frames: int, t0_ps: float,
                        period_ps: int, min_photons: int = 20) -> np.ndarray:
    """Mean delay (ns) after ``t0_ps`` (the decay's rise) of each frame's photons within half a
    laser period: a lifetime per frame (paper Fig. 4b). NaN for frames with fewer than
    ``min_photons`` such photons; photons of frame −1 or delay −1 are ignored."""
    sums = FrameDelaySums(n_frames, t0_ps, period_ps)
    sums.add(frame, delay_ps)
    return sums.mean_ns(min_photons)


class FrameDelaySums:
    """:func:`frame_mean_delay_ns` accumulated chunk by chunk: per frame, the photons within
    half a period after ``t0_ps`` and the sum of their delays after it."""

    def __init__(self, n_frames: int, t0_ps: float, period_ps: int) -> None:
        self.n_frames, self.t0_ps, self.period_ps = n_frames, t0_ps, period_ps
        self.counts = np.zeros(n_frames, np.int64)
        self.total = np.zeros(n_frames)

    def add(self, frame: np.ndarray, delay_ps: np.ndarray) -> None:
        rel = np.mod(np.asarray(delay_ps, float) - self.t0_ps, self.period_ps)
        use = ((frame >= 0) & (frame < self.n_frames) & (delay_ps >= 0)
               & (rel < 0.5 * self.period_ps))
        self.counts += np.bincount(frame[use], minlength=self.n_frames)[:self.n_frames]
        self.total += np.bincount(frame[use], weights=rel[use],
                                  minlength=self.n_frames)[:self.n_frames]

    def mean_ns(self, min_photons: int = 20) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts >= min_photons,
                            self.total / np.maximum(self.counts, 1) / 1000.0, np.nan)


def detector_offset_ps(delay_a_ps: np.ndarray, delay_b_ps: np.ndarray, period_ps: int,
                       bin_ps: float = 16.0, smooth_ps: float = 128.0) -> float:
    """How much later (ps) detector b records the same decay than detector a.

    The rising edge carries the timing: the circular cross-correlation of the derivatives of the
    two delay histograms (``bin_ps`` bins over one period, Gaussian-smoothed by ``smooth_ps``)
    peaks at the shift, refined below a bin by parabolic interpolation (≈ 20 ps rms at 1e4
    photons per detector, 5 ps at 1e5). Two APDs differ by their cables and electronics:
    subtract this from b's delays before merging the decays. Delays of ``-1`` are ignored.
    """
    return detector_offset_from_histograms(
        decay_histogram(delay_a_ps, period_ps, bin_ps).counts,
        decay_histogram(delay_b_ps, period_ps, bin_ps).counts, period_ps, smooth_ps)


def detector_offset_from_histograms(counts_a: np.ndarray, counts_b: np.ndarray, period_ps: int,
                                    smooth_ps: float = 128.0) -> float:
    """:func:`detector_offset_ps` from the two detectors' delay histograms (equal bins over one
    period), so that it can be measured while streaming through a file."""
    def edge(counts: np.ndarray) -> np.ndarray:
        width = period_ps / counts.shape[0]
        smooth = ndimage.gaussian_filter1d(np.asarray(counts, float), smooth_ps / width,
                                           mode="wrap")
        return np.roll(smooth, -1) - smooth

    a, b = edge(counts_a), edge(counts_b)
    n = a.shape[0]
    corr = np.fft.irfft(np.conj(np.fft.rfft(a)) * np.fft.rfft(b), n)
    k = int(np.argmax(corr))
    y0, y1, y2 = corr[k - 1], corr[k], corr[(k + 1) % n]
    denom = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    shift = (k + float(np.clip(frac, -0.5, 0.5))) * period_ps / n
    return shift - period_ps if shift >= period_ps / 2 else shift


def load_irf(path: str | Path, hist: DecayHistogram) -> np.ndarray:
    """A measured IRF resampled onto ``hist``'s bins, for :func:`fit_decay`'s ``irf``.

    ``path``: a cryoscope measurement file (the delays of its APD photons, e.g. laser scatter),
    a ``.npy`` array, or a text file — one column of counts on the same bins, or two columns
    ``delay_ns, counts`` interpolated onto the bin centres.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"IRF file not found: {file}")
    if file.suffix in (".h5", ".hdf5"):
        try:
            photons = collect_photons(file)
        except MeasurementError as exc:
            raise ValueError(f"IRF file {file}: {exc}") from None
        width_ps = float(np.diff(hist.edges_ns).mean()) * 1000.0
        return decay_histogram(photons.delay_ps, photons.laser_period_ps, width_ps).counts.astype(
            float)
    data = np.load(file) if file.suffix == ".npy" else np.loadtxt(file, ndmin=2)
    data = np.asarray(data, float)
    if data.ndim == 1 or data.shape[1] == 1:
        counts = data.ravel()
        if counts.size != hist.counts.size:
            raise ValueError(f"IRF file {file}: {counts.size} values for {hist.counts.size} bins")
        return counts
    return np.interp(hist.centers_ns, data[:, 0], data[:, 1], left=0.0, right=0.0)


_SQRT2_INV = 1.0 / math.sqrt(2.0)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: Beyond this many σ from an IRF centre its Gaussian is exactly zero in double precision.
_GAUSS_ZERO_SIGMAS = 39.0
#: Lower bound of the fitted lifetimes and IRF width (log ns).
_LOG_TAU_MIN = math.log(1e-3)


@numba.njit(cache=True, nogil=True, inline="always")
def _erfcx(z):  # pragma: no cover - compiled
    """Scaled complementary error function exp(z²)·erfc(z) for z ≥ 0 (relative error < 1e-13):
    directly below 25, the asymptotic series above (its first neglected term < 1e-14 there)."""
    if z < 25.0:
        return math.erfc(z) * math.exp(z * z)
    h = 0.5 / (z * z)
    return (1.0 - h * (1.0 - 3.0 * h * (1.0 - 5.0 * h * (1.0 - 7.0 * h * (1.0 - 9.0 * h))))
            ) / (z * math.sqrt(math.pi))


@numba.njit(cache=True, nogil=True)
def _gauss_decay_bins(edges, t0, sigma, taus, period):  # pragma: no cover - compiled
    """Photons per bin of each unit periodic decay convolved with a Gaussian IRF, and their
    derivatives with respect to ``t0``, ``τ`` and ``σ``: four arrays [components, bins].

    Per edge, with ``x = edge − t0``, the antiderivative is
    ``F(x) = Σ_{y = x − T, x} [Φ(y/σ) − E(y)] − R(x)·Q``: the pulses at ``t0`` and ``t0 + T``
    convolved with the IRF (``E(y) = exp(σ²/2τ² − y/τ)·Φ(y/σ − σ/τ)``, the exponentially
    modified Gaussian's tail part, written with erfcx where it would overflow), the earlier
    pulses as fully risen exponentials (``R = exp(σ²/2τ² − x/τ)``, ``Q = 1/(exp(T/τ) − 1)``).
    """
    n_exp = taus.shape[0]
    n_edges = edges.shape[0]
    val = np.empty((n_exp, n_edges - 1))
    d_t0 = np.empty((n_exp, n_edges - 1))
    d_tau = np.empty((n_exp, n_edges - 1))
    d_sig = np.empty((n_exp, n_edges - 1))
    s2 = sigma * sigma
    inv_s_sqrt2 = _SQRT2_INV / sigma
    for i in range(n_exp):
        tau = taus[i]
        rate = 1.0 / tau
        half_var = 0.5 * s2 * rate * rate
        earlier = period * rate < 700.0
        q_ratio = 1.0 / math.expm1(period * rate) if earlier else 0.0
        f_prev = fx_prev = ft_prev = fs_prev = 0.0
        for k in range(n_edges):
            x = edges[k] - t0
            f = 0.0  # F(x) and its derivatives by x, τ and σ
            fx = 0.0
            ft = 0.0
            fs = 0.0
            for shift in range(2):
                y = x - period if shift == 0 else x
                u = y / sigma
                if u < -_GAUSS_ZERO_SIGMAS:
                    continue  # before this pulse: nothing yet, exactly
                phi = math.exp(-0.5 * u * u) * _INV_SQRT_2PI if u < _GAUSS_ZERO_SIGMAS else 0.0
                z = (s2 * rate - y) * inv_s_sqrt2
                if z > 0.0:
                    tail = _SQRT_HALF_PI * _erfcx(z) * phi
                else:
                    tail = 0.5 * math.exp(min(half_var - y * rate, 700.0)) * math.erfc(z)
                cdf = 0.5 * math.erfc(-u * _SQRT2_INV) if u < _GAUSS_ZERO_SIGMAS else 1.0
                f += cdf - tail
                fx += tail * rate
                ft -= (tail * (y - s2 * rate) + sigma * phi) * rate * rate
                fs += phi * rate - tail * sigma * rate * rate
            if earlier:
                rq = math.exp(min(half_var - x * rate, 700.0)) * q_ratio
                f -= rq
                fx += rq * rate
                ft -= rq * (x * rate - s2 * rate * rate + (1.0 + q_ratio) * period * rate) * rate
                fs -= rq * sigma * rate * rate
            if k > 0:
                val[i, k - 1] = f - f_prev
                d_t0[i, k - 1] = fx_prev - fx  # ∂/∂t0 = −∂/∂x
                d_tau[i, k - 1] = ft - ft_prev
                d_sig[i, k - 1] = fs - fs_prev
            f_prev, fx_prev, ft_prev, fs_prev = f, fx, ft, fs
    return val, d_t0, d_tau, d_sig


@numba.njit(cache=True, nogil=True)
def _gauss_model(edges, amps, taus, bg, t0, sigma, period, fit_sigma):  # pragma: no cover
    """Expected counts per bin with the Gaussian IRF and their derivatives [bins, parameters]
    by the fit parameters ``(log A_i…, log τ_i…, log B, t0[, log σ])``; ``bg`` per ns."""
    val, d_t0, d_tau, d_sig = _gauss_decay_bins(edges, t0, sigma, taus, period)
    n = taus.shape[0]
    n_bins = edges.shape[0] - 1
    mu = np.empty(n_bins)
    jac = np.empty((n_bins, 2 * n + 3 if fit_sigma else 2 * n + 2))
    for k in range(n_bins):
        back = bg * (edges[k + 1] - edges[k])
        total = back
        by_t0 = 0.0
        by_sigma = 0.0
        for i in range(n):
            part = amps[i] * val[i, k]
            jac[k, i] = part
            jac[k, n + i] = amps[i] * taus[i] * d_tau[i, k]
            total += part
            by_t0 += amps[i] * d_t0[i, k]
            by_sigma += amps[i] * d_sig[i, k]
        jac[k, 2 * n] = back
        jac[k, 2 * n + 1] = by_t0
        if fit_sigma:
            jac[k, 2 * n + 2] = sigma * by_sigma
        mu[k] = total
    return mu, jac


@numba.njit(cache=True, nogil=True)
def _poisson_terms(mu, jac, counts, log_counts):  # pragma: no cover - compiled
    """The Poisson NLL minus Σ c·log c − c (the deviance's half), its gradient and the Fisher
    information ``Jᵀ diag(1/μ) J``; an infinite NLL where the model is not finite and positive."""
    n_par = jac.shape[1]
    grad = np.zeros(n_par)
    fisher = np.zeros((n_par, n_par))
    dev = 0.0
    for k in range(mu.shape[0]):
        m = mu[k]
        if not (m > 0.0 and m < np.inf):
            return np.inf, grad, fisher
        c = counts[k]
        dev += m - c - c * (math.log(m) - log_counts[k])
        resid = 1.0 - c / m
        for a in range(n_par):
            ja = jac[k, a]
            grad[a] += resid * ja
            for b in range(a + 1):
                fisher[a, b] += ja * jac[k, b] / m
    for a in range(n_par):
        if not np.isfinite(grad[a]):
            return np.inf, grad, fisher
        for b in range(a):
            fisher[b, a] = fisher[a, b]
    return dev, grad, fisher


def _irf_decay_bins(edges_ns: np.ndarray, taus_ns: np.ndarray, t0_ns: float, irf: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photons per bin of each unit periodic decay convolved (circularly, by FFT) with a measured
    IRF whose peak is shifted to ``t0_ns``, and their derivatives with respect to ``t0`` and
    ``τ``: three arrays [components, bins]."""
    kernel = np.asarray(irf, float)
    kernel = kernel / kernel.sum()
    n = edges_ns.shape[0] - 1
    width = float(edges_ns[-1] - edges_ns[0]) / n
    period = float(edges_ns[-1] - edges_ns[0])
    peak = float(np.argmax(kernel)) * width
    freq = np.fft.rfftfreq(n, d=width)
    k_hat = np.fft.rfft(kernel) * np.exp(-2j * np.pi * freq * (t0_ns - peak))
    x = edges_ns - edges_ns[0]
    val = np.empty((taus_ns.shape[0], n))
    d_t0 = np.empty_like(val)
    d_tau = np.empty_like(val)
    for i, tau in enumerate(taus_ns):
        q = math.exp(-period / tau) if period / tau < 700 else 0.0
        # antiderivative −exp(−x/τ)/(1 − q) over [0, T] and its derivative by τ
        cdf = -np.exp(-x / tau) / (1 - q)
        cdf_tau = cdf * (x + q * period / (1 - q)) / (tau * tau)
        decay_hat = np.fft.rfft(np.diff(cdf)) * k_hat
        val[i] = np.fft.irfft(decay_hat, n)
        d_t0[i] = np.fft.irfft(decay_hat * (-2j * np.pi * freq), n)
        d_tau[i] = np.fft.irfft(np.fft.rfft(np.diff(cdf_tau)) * k_hat, n)
    return val, d_t0, d_tau


def model_counts(edges_ns: np.ndarray, amplitudes: np.ndarray, taus_ns: np.ndarray,
                 background: float, t0_ns: float, sigma_ns: float,
                 irf: np.ndarray | None = None) -> np.ndarray:
    """Expected counts per bin (see the module docstring); ``background`` in counts per ns.

    The bins may be of unequal width with the Gaussian IRF. ``irf``: a measured IRF sampled on
    the same (equal) bins, any normalization, its peak anywhere (it is shifted so that the peak
    sits at ``t0_ns``); or ``None`` for the Gaussian IRF of width ``sigma_ns``.
    """
    edges = np.asarray(edges_ns, float)
    taus = np.ascontiguousarray(taus_ns, float)
    amps = np.asarray(amplitudes, float)
    mu = background * np.diff(edges)
    if irf is None:
        return mu + amps @ _gauss_decay_bins(edges, float(t0_ns), float(sigma_ns), taus,
                                             float(edges[-1] - edges[0]))[0]
    return np.maximum(mu + amps @ _irf_decay_bins(edges, taus, float(t0_ns), irf)[0], 1e-300)


@dataclass(frozen=True)
class DecayFit:
    """Result of :func:`fit_decay`: lifetimes (ns), photon fractions and 1σ uncertainties."""

    taus_ns: tuple[float, ...]
    taus_err_ns: tuple[float, ...]
    weights: tuple[float, ...]  #: fraction of the decay's photons in each component
    weights_err: tuple[float, ...]
    photons: float  #: photons in the decay components (background excluded)
    background_per_bin: float
    t0_ns: float  #: fitted IRF position (ns)
    sigma_ns: float  #: Gaussian IRF σ (ns), NaN with a measured IRF
    nll: float  #: Poisson negative log-likelihood at the optimum (up to a constant)
    bic: float
    success: bool  #: the Hessian is positive definite (a minimum with usable uncertainties)


def numerical_hessian(f, x: np.ndarray, step: np.ndarray | float = 1e-4) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Central-difference Hessian of a scalar function ``f`` at ``x``."""
    x = np.asarray(x, float)
    n = x.shape[0]
    h = np.broadcast_to(np.asarray(step, float), (n,))
    hess = np.empty((n, n))
    f0 = f(x)
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = h[i]
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i + 1, n):
            ej = np.zeros(n)
            ej[j] = h[j]
            val = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej))
            hess[i, j] = hess[j, i] = val / (4 * h[i] * h[j])
    return hess


def _rise_and_background(hist: DecayHistogram) -> tuple[float, float]:
    """Rough IRF position (ns; the smoothed histogram's maximum) and background (counts per
    bin) of a decay histogram."""
    c = hist.counts.astype(float)
    smooth = np.convolve(c, np.ones(5) / 5, mode="same")
    t0 = float(hist.centers_ns[int(np.argmax(smooth))])
    # Background: half the lowest level of the smoothed decay (at high repetition rates the
    # lowest level still holds the previous pulses' tails).
    wide = np.convolve(c, np.ones(64) / 64, mode="valid") if c.size > 64 else c
    return t0, max(0.5 * float(wide.min()), 1e-3)


def _matched_rise(counts: np.ndarray, edges_ns: np.ndarray, background: float) -> float:
    """Start (ns) of the decay: where a periodic exponential on the background, for lifetimes
    from a few bins to the period, is most likely (Poisson), by circular cross-correlation on
    bins merged by the least divisor of their number that leaves at most 4096."""
    total = counts.shape[0]
    merge = next(d for d in range(1, total + 1) if total % d == 0 and total // d <= 4096)
    merge = merge if total // merge >= 512 else 1
    counts = counts.reshape(-1, merge).sum(axis=1).astype(float)
    n = counts.shape[0]
    period = float(edges_ns[-1] - edges_ns[0])
    width = period / n
    signal = max(float(counts.sum()) - background * merge * n, 1.0)
    k = np.arange(n + 1) * width
    c_hat = np.fft.rfft(counts)
    best, rise = -np.inf, 0
    for tau in np.geomspace(2 * width, period, 6):
        q = math.exp(-period / tau) if period / tau < 700 else 0.0
        unit = -np.diff(np.exp(-k / tau)) / (1 - q)
        score = np.fft.irfft(
            c_hat * np.conj(np.fft.rfft(np.log(background * merge + signal * unit))), n)
        top = int(np.argmax(score))
        if score[top] > best:
            best, rise = float(score[top]), top
    return float(edges_ns[0]) + rise * width


def _grid_start(lik: _Likelihood, t0: float, sigma: float
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """Starting amplitudes, lifetimes and background (per ns) of a fit: the best, by the
    Poisson likelihood, of every set of ``lik.n_exp`` lifetimes on a logarithmic grid from the bin
    width to ten periods, with the IRF held at ``t0``, ``sigma`` and each set's amplitudes and
    background from a linear least-squares fit (weights 1/counts)."""
    n_exp = lik.n_exp
    width = float(np.min(lik.widths))
    n_grid = 32
    while n_grid > n_exp and math.comb(n_grid, n_exp) > 600:
        n_grid -= 1
    grid = np.geomspace(max(0.5 * width, 2e-3), 10 * lik.period, n_grid)
    with np.errstate(over="ignore", invalid="ignore"):
        unit = _gauss_decay_bins(lik.edges, t0, sigma, grid, lik.period)[0][:, lik.mask]
    unit = np.nan_to_num(unit)
    columns = np.vstack([unit, lik.widths[lik.mask]])  # [grid + background, bins]
    weight = 1.0 / np.maximum(lik.counts, 1.0)
    gram = (columns * weight) @ columns.T
    rhs = (columns * weight) @ lik.counts
    sets = np.array(list(itertools.combinations(range(n_grid), n_exp)), dtype=np.int64)
    idx = np.hstack([sets, np.full((sets.shape[0], 1), n_grid)])
    a = gram[idx[:, :, None], idx[:, None, :]] + 1e-12 * np.eye(n_exp + 1)
    coef = np.linalg.solve(a, rhs[idx][:, :, None])[:, :, 0]
    total = max(float(lik.counts.sum()), 1.0)
    coef[:, :n_exp] = np.maximum(coef[:, :n_exp], 1e-3 * total / n_exp)
    coef[:, n_exp] = np.maximum(coef[:, n_exp], 1e-3 / lik.period)
    mu = np.einsum("sk,skb->sb", coef, columns[idx])
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.sum(mu - lik.counts * np.log(mu), axis=1)
    best = int(np.nanargmin(dev))
    return coef[best, :n_exp], grid[sets[best]], float(coef[best, n_exp])


def _coarse_bins(hist: DecayHistogram, t0: float) -> np.ndarray:
    """Start indices of merged bins: full resolution from 10 ns before the rise, ~3 % of the
    delay later."""
    width = float(np.diff(hist.edges_ns).mean())
    n = hist.counts.shape[0]
    after = np.mod(hist.edges_ns[:-1] - t0, hist.period_ns)
    before_rise = after > hist.period_ns - 10.0
    after[before_rise] = 0.0
    target = np.maximum(width, after / 30.0)
    # a merged bin starting at i spans the fewest bins whose summed width reaches target[i],
    # but never into the full-resolution stretch before the rise
    span = np.searchsorted(np.cumsum(np.full(n, width)), target - 1e-9) + 1
    window = np.where(before_rise, np.arange(n), n)
    next_window = np.append(np.minimum.accumulate(window[::-1])[::-1][1:], n)
    span = np.minimum(span, next_window - np.arange(n))
    starts = [0]
    while (nxt := starts[-1] + int(span[starts[-1]])) < target.shape[0]:
        starts.append(nxt)
    return np.asarray(starts)


class _Likelihood:
    """Binned Poisson likelihood of :func:`model_counts` in the fit parameters
    ``p = (log A_1 … log A_n, log τ_1 … log τ_n, log B, t0[, log σ])`` on the bins of ``edges``
    (counts ``counts``; only the bins of ``mask`` count)."""

    def __init__(self, edges: np.ndarray, counts: np.ndarray, mask: np.ndarray, n_exp: int,
                 irf: np.ndarray | None, sigma_ns: float | None) -> None:
        self.edges, self.mask, self.n_exp, self.irf = edges, mask, n_exp, irf
        self.counts = counts[mask]
        self.widths = np.diff(edges)
        self.period = float(edges[-1] - edges[0])
        self.fit_sigma = irf is None and sigma_ns is None
        self.sigma0 = sigma_ns if sigma_ns is not None else 0.15
        # Σ c·log c − c: subtracted from the NLL while minimising, to keep its rounding small
        seen = self.counts > 0
        self.log_counts = np.zeros_like(self.counts)
        self.log_counts[seen] = np.log(self.counts[seen])
        self.all_bins = bool(np.all(mask))

    def unpack(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, float]:
        n = self.n_exp
        sig = float(np.exp(p[2 * n + 2])) if self.fit_sigma else self.sigma0
        return np.exp(p[:n]), np.exp(p[n:2 * n]), float(np.exp(p[2 * n])), float(p[2 * n + 1]), sig

    def inside(self, p: np.ndarray) -> bool:
        """Whether ``p`` lies in the fit's bounds."""
        n = self.n_exp
        log_sig = float(p[2 * n + 2]) if self.fit_sigma else math.log(self.sigma0)
        return (all(_LOG_TAU_MIN <= v <= math.log(1e3 * self.period) for v in p[n:2 * n])
                and _LOG_TAU_MIN < log_sig < math.log(0.1 * self.period)
                and abs(float(p[2 * n + 1])) <= 2 * self.period)

    def model(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected counts in the bins of the mask and their derivatives by ``p`` [bins, p]."""
        n = self.n_exp
        with np.errstate(over="ignore", invalid="ignore"):
            amps, taus, bg, t0, sig = self.unpack(p)
            if self.irf is None:
                mu, jac = _gauss_model(self.edges, amps, taus, bg, t0, sig, self.period,
                                       self.fit_sigma)
            else:
                val, d_t0, d_tau = _irf_decay_bins(self.edges, taus, t0, self.irf)
                jac = np.empty((self.edges.shape[0] - 1, p.shape[0]))
                jac[:, :n] = (val * amps[:, None]).T
                jac[:, n:2 * n] = (d_tau * (amps * taus)[:, None]).T
                jac[:, 2 * n] = bg * self.widths
                jac[:, 2 * n + 1] = amps @ d_t0
                mu = jac[:, :n].sum(axis=1) + jac[:, 2 * n]
                # as model_counts: FFT ringing (or an IRF with negative values) clipped
                floor = mu < 1e-300
                mu[floor] = 1e-300
                jac[floor] = 0.0
        return (mu, jac) if self.all_bins else (mu[self.mask], jac[self.mask])

    def evaluate(self, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray] | None:
        """NLL minus Σ c·log c − c, gradient and Fisher information at ``p``; None where the
        model is not finite and positive."""
        dev, grad, fisher = _poisson_terms(*self.model(p), self.counts, self.log_counts)
        return (dev, grad, fisher) if math.isfinite(dev) else None

    def nll(self, p: np.ndarray) -> float:
        """Poisson negative log-likelihood (up to a constant)."""
        mu = self.model(p)[0]
        return float(np.sum(mu - self.counts * np.log(mu)))

    def hessian(self, p: np.ndarray, step: float = 1e-4) -> np.ndarray:
        """Hessian of the NLL: central differences of its analytic gradient (NaN where the
        model is not defined)."""
        n = p.shape[0]
        hess = np.empty((n, n))
        for j in range(n):
            ej = np.zeros(n)
            ej[j] = step
            plus, minus = self.evaluate(p + ej), self.evaluate(p - ej)
            if plus is None or minus is None:
                return np.full((n, n), np.nan)
            hess[:, j] = (plus[1] - minus[1]) / (2 * step)
        return 0.5 * (hess + hess.T)


def _pack(lik: _Likelihood, amps: np.ndarray, taus: np.ndarray, bg: float, t0: float,
          sigma: float) -> np.ndarray:
    """Fit parameters of ``lik`` from amplitudes, lifetimes, background (per ns), IRF position
    and width (ignored where σ is not fitted); lifetimes are clipped into the fit's bounds."""
    taus = np.clip(taus, 1.01e-3, 0.99e3 * lik.period)
    p = [*np.log(amps), *np.log(taus), math.log(bg), t0]
    if lik.fit_sigma:
        p.append(math.log(sigma))
    return np.array(p, float)


def _minimize(lik: _Likelihood, p: np.ndarray, tol: float = 1e-6, max_iter: int = 300
              ) -> tuple[np.ndarray, float]:
    """Levenberg–Marquardt minimisation of the NLL with the analytic gradient and the Poisson
    Fisher information ``Jᵀ diag(1/μ) J`` as the curvature (damping updated by the gain ratio,
    Nielsen's rule); stops when a step gains less than ``tol`` (a likelihood change far below
    the statistical one, 0.5 for 1σ). Returns the parameters and the NLL (minus a constant)."""
    first = lik.evaluate(p)
    if first is None:
        raise ValueError(f"decay fit: the initial parameters {p} give no valid model")
    dev, grad, curv = first
    lam, nu = 1e-3, 2.0
    for _ in range(max_iter):
        scale = np.maximum(np.diag(curv), 1e-12 * max(float(np.max(np.diag(curv))), 1e-300))
        while True:
            try:
                step = np.linalg.solve(curv + lam * np.diag(scale), -grad)
            except np.linalg.LinAlgError:
                step = None
            trial = p + step if step is not None else p
            found = lik.evaluate(trial) if step is not None and lik.inside(trial) else None
            if found is not None and found[0] <= dev:
                break
            lam *= nu
            nu *= 2.0
            if lam > 1e12:
                return p, dev
        slope = -float(grad @ step)
        gain = dev - found[0]
        predicted = slope - 0.5 * float(step @ curv @ step)
        rho = gain / predicted if predicted > 0 else 0.0
        lam = max(lam * max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), 1e-12)
        nu = 2.0
        p = trial
        dev, grad, curv = found
        if gain < tol and slope < 10 * tol:
            break
    return p, dev


def fit_decay(hist: DecayHistogram, n_exp: int = 2, *, irf: np.ndarray | None = None,
              sigma_ns: float | None = None, fit_range_ns: tuple[float, float] | None = None,
              ) -> DecayFit:
    """Binned Poisson ML fit of ``n_exp`` exponentials + background with IRF convolution.

    ``irf``: measured IRF on the histogram's bins, or ``None`` for a Gaussian IRF whose σ is
    fitted (or fixed to ``sigma_ns``). ``fit_range_ns`` restricts the likelihood to bins whose
    centre lies in the range (the model stays periodic over the full period).
    """
    t_peak, bg_bin = _rise_and_background(hist)
    width = float(np.diff(hist.edges_ns).mean())
    keep = np.ones(hist.counts.shape[0], bool)
    if fit_range_ns is not None:
        c = hist.centers_ns
        keep = (c >= fit_range_ns[0]) & (c < fit_range_ns[1])
    starts = _coarse_bins(hist, t_peak)
    edges = np.append(hist.edges_ns[starts], hist.edges_ns[-1])
    counts = np.add.reduceat(hist.counts * keep, starts).astype(float)
    mask = np.add.reduceat(keep.astype(int), starts) == np.diff(np.append(starts, keep.shape[0]))
    coarse = _Likelihood(edges, counts, mask, n_exp, None, sigma_ns)
    lik = coarse if irf is None else _Likelihood(hist.edges_ns, hist.counts.astype(float), keep,
                                                 n_exp, irf, None)
    # The IRF's position and width from one-exponential fits started at the histogram's peak
    # and at the most likely rise.
    one = coarse if n_exp == 1 else _Likelihood(edges, counts, mask, 1, None, sigma_ns)
    rise = _matched_rise(hist.counts * keep, hist.edges_ns, bg_bin)
    tol = 1e-6 if n_exp == 1 and irf is None else 1e-3  # else it only has to lead the way
    # σ held first: with σ free from the start a fit may run to σ far below a bin, where the
    # binned model is a step in t0, flat in t0 and σ (a trap)
    held = _Likelihood(edges, counts, mask, 1, None, one.sigma0) if one.fit_sigma else one
    x1, _ = min((_minimize(held, _pack(held, *_grid_start(held, t0, held.sigma0), t0,
                                       held.sigma0), 1e-3)
                 for t0 in ((t_peak, rise) if abs(rise - t_peak) > 0.5 else (t_peak,))),
                key=lambda r: r[1])
    if one.fit_sigma:
        x1, _ = _minimize(one, np.append(x1, math.log(held.sigma0)), tol)
    _, tau1, _, t01, sigma1 = one.unpack(x1)
    if n_exp == 1 and irf is None:
        x = x1
    else:
        candidates = [_pack(lik, *_grid_start(coarse, t01, sigma1), t01, sigma1)]
        if n_exp == 2:  # and the one-exponential decay split into a fast and a slow part
            candidates.append(_pack(lik, np.full(2, 0.5 * math.exp(x1[0])),
                                    np.array([0.25, 1.5]) * tau1[0], math.exp(x1[2]), t01,
                                    sigma1))
        x, _ = min((_minimize(lik, p) for p in candidates), key=lambda r: r[1])
    # Order components by lifetime.
    order = np.argsort(x[n_exp:2 * n_exp])
    x[:n_exp] = x[:n_exp][order]
    x[n_exp:2 * n_exp] = x[n_exp:2 * n_exp][order]
    amps, taus, bg, t0, sig = lik.unpack(x)
    hess = lik.hessian(x)
    # A background fitted to zero sits on the boundary of log(B): leave it out of the inversion.
    free = np.ones(x.shape[0], bool)
    free[2 * n_exp] = bg * (lik.edges.shape[0] - 1) >= 1.0
    cov = np.zeros_like(hess)
    try:
        cov[np.ix_(free, free)] = np.linalg.inv(hess[np.ix_(free, free)])
        ok = bool(np.all(np.isfinite(cov)) and np.all(np.diag(cov)[free] > 0))
    except np.linalg.LinAlgError:
        cov = np.full_like(hess, np.nan)
        ok = False
    var = np.abs(np.diag(cov))
    taus_err = taus * np.sqrt(var[n_exp:2 * n_exp])
    total = amps.sum()
    weights = amps / total
    # Fractions f_i = A_i/ΣA: Jacobian with respect to log A_j is f_i(δ_ij − f_j).
    jac = np.diag(weights) - np.outer(weights, weights)
    wcov = jac @ cov[:n_exp, :n_exp] @ jac.T
    n_par = x.shape[0]
    fun = lik.nll(x)
    # A positive-definite Hessian is the criterion of a usable fit.
    if not ok:
        log.debug("decay fit (%d exponentials): Hessian not positive definite", n_exp)
    return DecayFit(
        taus_ns=tuple(float(v) for v in taus),
        taus_err_ns=tuple(float(v) for v in taus_err),
        weights=tuple(float(v) for v in weights),
        weights_err=tuple(float(v) for v in np.sqrt(np.abs(np.diag(wcov)))),
        photons=float(total),
        background_per_bin=bg * width,
        t0_ns=t0,
        sigma_ns=sig if irf is None else float("nan"),
        nll=fun,
        bic=2 * fun + n_par * math.log(max(lik.counts.sum(), 2.0)),
        success=ok,
    )
