"""Fluorescence decays: delay histograms and binned Poisson maximum-likelihood fits.

Model of the expected counts in a delay bin ``[a, b)`` of a laser period ``T``::

    μ = B·(b − a)/w + Σ_i A_i · ∫_a^b (IRF ⊛ D_i)(t) dt

with ``D_i`` the *periodic* (pile-over) decay of component ``i`` — the sum of ``exp(−t/τ_i)/τ_i``
over every earlier pulse — normalized to one photon per period, ``A_i`` its photons, ``B`` the flat
background per bin of width ``w`` and the IRF either a Gaussian (centre ``t0``, width ``σ``, both
fitted; closed-form exponentially modified Gaussian) or a measured array convolved numerically and
shifted by a fitted ``t0``. Fitting minimises the Poisson negative log-likelihood; uncertainties
come from the inverse Hessian of it. Times are in ns inside this module unless a name says ps.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, optimize, special

from cryoscope.analysis.photons import collect_photons
from cryoscope.datafile import MeasurementError

__all__ = [
    "DecayFit",
    "DecayHistogram",
    "FrameDelaySums",
    "decay_histogram",
    "detector_offset_ps",
    "fit_decay",
    "frame_mean_delay_ns",
    "load_irf",
    "model_counts",
    "numerical_hessian",
]

log = logging.getLogger(__name__)

_SQRT2 = math.sqrt(2.0)


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
    d = np.asarray(delay_ps)
    d = d[d >= 0]
    n_bins = max(round(period_ps / bin_ps), 1)
    idx = (d.astype(np.int64) * n_bins) // int(period_ps)
    counts = np.bincount(idx[idx < n_bins], minlength=n_bins).astype(np.int64)
    edges = np.linspace(0.0, period_ps / 1000.0, n_bins + 1)
    return DecayHistogram(counts=counts, edges_ns=edges, period_ns=period_ps / 1000.0)


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


def _gauss_periodic_cdf(x: np.ndarray, tau: float, sigma: float, period: float) -> np.ndarray:
    """Antiderivative of the periodic exp(−t/τ)/τ decay convolved with a N(0, σ) IRF.

    ``x = t − t0``. Differences between bin edges give the photons per bin (one per period).
    """
    s2 = sigma * sigma
    q = math.exp(-period / tau) if period / tau < 700 else 0.0
    out = np.zeros_like(x)
    for shift in (-period, 0.0):
        y = x + shift
        z = (s2 / tau - y) / (sigma * _SQRT2)
        # τ·g(y) with g the exponentially modified Gaussian density, overflow-safe.
        expo = s2 / (2 * tau * tau) - y / tau
        tg = np.where(z > 0, 0.5 * special.erfcx(np.maximum(z, 0)) * np.exp(
            np.minimum(expo - np.maximum(z, 0) ** 2, 700)),
            0.5 * np.exp(np.minimum(expo, 700)) * special.erfc(np.minimum(z, 0)))
        out += special.ndtr(y / sigma) - tg
    # Earlier pulses (n >= 1): fully risen exponentials, a geometric series.
    out -= np.exp(np.minimum(s2 / (2 * tau * tau) - x / tau, 700)) * q / (1 - q)
    return out


def _periodic_exp_cdf(x: np.ndarray, tau: float, period: float) -> np.ndarray:
    """Antiderivative of the periodic decay without IRF, for ``x`` in [0, period]."""
    q = math.exp(-period / tau) if period / tau < 700 else 0.0
    return -np.exp(-x / tau) / (1 - q)


def model_counts(edges_ns: np.ndarray, amplitudes: np.ndarray, taus_ns: np.ndarray,
                 background: float, t0_ns: float, sigma_ns: float,
                 irf: np.ndarray | None = None) -> np.ndarray:
    """Expected counts per bin (see the module docstring); ``background`` in counts per ns.

    The bins may be of unequal width with the Gaussian IRF. ``irf``: a measured IRF sampled on
    the same (equal) bins, any normalization, its peak anywhere (it is shifted so that the peak
    sits at ``t0_ns``); or ``None`` for the Gaussian IRF of width ``sigma_ns``.
    """
    period = float(edges_ns[-1] - edges_ns[0])
    widths = np.diff(edges_ns)
    mu = background * widths
    if irf is None:
        x = edges_ns - t0_ns
        for a, tau in zip(amplitudes, taus_ns, strict=True):
            mu += a * np.diff(_gauss_periodic_cdf(x, float(tau), sigma_ns, period))
        return mu
    kernel = np.asarray(irf, float)
    kernel = kernel / kernel.sum()
    n = widths.shape[0]
    peak = float(np.argmax(kernel)) * widths.mean()
    freq = np.fft.rfftfreq(n, d=widths.mean())
    k_hat = np.fft.rfft(kernel) * np.exp(-2j * np.pi * freq * (t0_ns - peak))
    for a, tau in zip(amplitudes, taus_ns, strict=True):
        decay = np.diff(_periodic_exp_cdf(edges_ns - edges_ns[0], float(tau), period))
        mu += a * np.fft.irfft(np.fft.rfft(decay) * k_hat, n)
    return np.maximum(mu, 1e-300)


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


def _initial_guess(hist: DecayHistogram, n_exp: int) -> tuple[np.ndarray, float, float]:
    c = hist.counts.astype(float)
    t = hist.centers_ns
    w = float(np.diff(hist.edges_ns).mean())
    smooth = np.convolve(c, np.ones(5) / 5, mode="same")
    t0 = float(t[int(np.argmax(smooth))])
    # Background: half the lowest level of the smoothed decay (at high repetition rates the
    # lowest level still holds the previous pulses' tails).
    wide = np.convolve(c, np.ones(64) / 64, mode="valid") if c.size > 64 else c
    bg = max(0.5 * float(wide.min()), 1e-3)
    signal = max(c.sum() - bg * c.shape[0], 1.0)
    after = np.mod(t - t0, hist.period_ns)
    ok = after > 0.5
    mean_delay = float(np.sum(after[ok] * np.maximum(c[ok] - bg, 0)) /
                       max(np.sum(np.maximum(c[ok] - bg, 0)), 1.0))
    tau_long = min(max(mean_delay, 5 * w), hist.period_ns)
    if n_exp == 1:
        taus = np.array([tau_long])
    else:
        taus = np.geomspace(max(tau_long / 40, 3 * w), tau_long * 1.2, n_exp)
    return np.concatenate([np.full(n_exp, signal / n_exp), taus]), bg, t0


def _coarse_bins(hist: DecayHistogram, t0: float) -> np.ndarray:
    """Start indices of merged bins: full resolution near the rise, ~3 % of the delay later."""
    width = float(np.diff(hist.edges_ns).mean())
    after = np.mod(hist.edges_ns[:-1] - t0, hist.period_ns)
    after[after > hist.period_ns - 10.0] = 0.0
    target = np.maximum(width, after / 30.0)
    starts = [0]
    acc = 0.0
    for i in range(1, target.shape[0]):
        acc += width
        if acc >= target[starts[-1]] - 1e-9:
            starts.append(i)
            acc = 0.0
    return np.asarray(starts)


def fit_decay(hist: DecayHistogram, n_exp: int = 2, *, irf: np.ndarray | None = None,
              sigma_ns: float | None = None, fit_range_ns: tuple[float, float] | None = None,
              ) -> DecayFit:
    """Binned Poisson ML fit of ``n_exp`` exponentials + background with IRF convolution.

    ``irf``: measured IRF on the histogram's bins, or ``None`` for a Gaussian IRF whose σ is
    fitted (or fixed to ``sigma_ns``). ``fit_range_ns`` restricts the likelihood to bins whose
    centre lies in the range (the model stays periodic over the full period).
    """
    guess, bg0, t00 = _initial_guess(hist, n_exp)
    width = float(np.diff(hist.edges_ns).mean())
    bg0 /= width
    keep = np.ones(hist.counts.shape[0], bool)
    if fit_range_ns is not None:
        c = hist.centers_ns
        keep = (c >= fit_range_ns[0]) & (c < fit_range_ns[1])
    if irf is None:
        starts = _coarse_bins(hist, t00)
        edges = np.append(hist.edges_ns[starts], hist.edges_ns[-1])
        counts = np.add.reduceat(hist.counts * keep, starts).astype(float)
        mask = np.add.reduceat(keep.astype(int), starts) == np.diff(np.append(
            starts, keep.shape[0]))
    else:
        edges, counts, mask = hist.edges_ns, hist.counts.astype(float), keep
    fit_sigma = irf is None and sigma_ns is None
    sigma0 = sigma_ns if sigma_ns is not None else 0.15

    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, float]:
        amps = np.exp(p[:n_exp])
        taus = np.exp(p[n_exp:2 * n_exp])
        bg = float(np.exp(p[2 * n_exp]))
        t0 = float(p[2 * n_exp + 1])
        sig = float(np.exp(p[2 * n_exp + 2])) if fit_sigma else sigma0
        return amps, taus, bg, t0, sig

    def nll(p: np.ndarray) -> float:
        amps, taus, bg, t0, sig = unpack(p)
        if (np.any(taus < 1e-3) or np.any(taus > 1e3 * hist.period_ns)
                or not 1e-3 < sig < 0.1 * hist.period_ns or abs(t0) > 2 * hist.period_ns):
            return 1e300
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            mu = model_counts(edges, amps, taus, bg, t0, sig, irf)[mask]
        if not np.all(np.isfinite(mu)):
            return 1e300
        mu = np.maximum(mu, 1e-300)
        return float(np.sum(mu - counts[mask] * np.log(mu)))

    p0 = [*np.log(guess[:n_exp]), *np.log(guess[n_exp:]), math.log(bg0), t00]
    if fit_sigma:
        p0.append(math.log(sigma0))
    p = np.array(p0, float)
    best = None
    for method in ("Nelder-Mead", "BFGS"):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            res = optimize.minimize(nll, p, method=method,
                                    options={"maxiter": 4000, "xatol": 1e-4, "fatol": 1e-4}
                                    if method == "Nelder-Mead" else {"gtol": 1e-4})
        if best is None or res.fun <= best.fun:
            best = res
        p = best.x
    assert best is not None
    # Order components by lifetime.
    order = np.argsort(best.x[n_exp:2 * n_exp])
    x = best.x.copy()
    x[:n_exp] = best.x[:n_exp][order]
    x[n_exp:2 * n_exp] = best.x[n_exp:2 * n_exp][order]
    amps, taus, bg, t0, sig = unpack(x)
    with np.errstate(over="ignore", invalid="ignore"):
        hess = numerical_hessian(nll, x, 1e-4)
    # A background fitted to zero sits on the boundary of log(B): leave it out of the inversion.
    free = np.ones(x.shape[0], bool)
    free[2 * n_exp] = bg * counts.shape[0] >= 1.0
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
    fun = float(nll(x))
    # BFGS often stops on "precision loss" at the optimum: a positive-definite Hessian is the
    # criterion of a usable fit.
    success = ok
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
        bic=2 * fun + n_par * math.log(max(counts[mask].sum(), 2.0)),
        success=success,
    )
