"""Spectral states: frames clustered by what their spectrum shows.

Features per frame: the square root of the photons in a window around each candidate line of the
measurement's summed spectrum (variance-stabilized EMCCD counts, so every feature has about the
same noise), clustered with a full-covariance Gaussian mixture whose number of components is
chosen by BIC. A bright neutral state, a red-shifted dim trion and a dark state land in different
windows or intensities, hence in different clusters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from cryoscope.analysis.lines import find_zpls
from cryoscope.analysis.spectra import SpectralFrames

__all__ = ["GaussianMixture", "SpectralStates", "cluster_frames", "fit_gaussian_mixture",
           "line_windows"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GaussianMixture:
    """A fitted Gaussian mixture: weights, means, covariances, labels, log-likelihood, BIC."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    labels: np.ndarray
    log_likelihood: float
    bic: float


def _log_gauss(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (x - mean).T)
    return -0.5 * np.sum(z * z, axis=0) - np.sum(np.log(np.diag(chol))) - 0.5 * d * math.log(
        2 * math.pi)


def fit_gaussian_mixture(x: np.ndarray, k: int, seed: int = 0, n_init: int = 4,
                         max_iter: int = 300, reg: float = 1e-3) -> GaussianMixture:
    """EM for a full-covariance Gaussian mixture with k-means++ starts (best of ``n_init``)."""
    x = np.asarray(x, float)
    n, d = x.shape
    rng = np.random.default_rng(seed)
    floor = reg * np.eye(d) * max(float(np.mean(np.var(x, axis=0))), 1e-12)
    best: GaussianMixture | None = None
    for _ in range(n_init):
        centers = [x[rng.integers(n)]]
        for _c in range(1, k):
            d2 = np.min([np.sum((x - c) ** 2, axis=1) for c in centers], axis=0)
            prob = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
            centers.append(x[rng.choice(n, p=prob)])
        means = np.array(centers)
        labels = np.argmin(((x[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
        resp = np.eye(k)[labels]
        ll_old = -np.inf
        ll = -np.inf
        for _it in range(max_iter):
            nk = resp.sum(axis=0) + 1e-10
            weights = nk / n
            means = (resp.T @ x) / nk[:, None]
            covs = np.empty((k, d, d))
            for j in range(k):
                diff = x - means[j]
                covs[j] = (resp[:, j, None] * diff).T @ diff / nk[j] + floor
            logp = np.stack([np.log(weights[j]) + _log_gauss(x, means[j], covs[j])
                             for j in range(k)], axis=1)
            top = logp.max(axis=1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(logp - top).sum(axis=1))
            ll = float(lse.sum())
            resp = np.exp(logp - lse[:, None])
            if ll - ll_old < 1e-6 * abs(ll):
                break
            ll_old = ll
        n_par = k - 1 + k * d + k * d * (d + 1) // 2
        bic = -2 * ll + n_par * math.log(n)
        if best is None or ll > best.log_likelihood:
            best = GaussianMixture(weights, means, covs, resp.argmax(axis=1), ll, bic)
    assert best is not None
    return best


@dataclass(frozen=True)
class SpectralStates:
    """Frames grouped into spectral states (ordered by decreasing brightness)."""

    labels: np.ndarray  #: int [frames], state of each frame
    n_states: int
    windows_ev: np.ndarray  #: [lines, 2] energy windows used as features (eV)
    features: np.ndarray  #: [frames, lines] √(2·photons + read variance) per window
    bic: tuple[float, ...]  #: BIC for 1 … k_max components


def line_windows(spectra: SpectralFrames, max_lines: int = 6, half_width_mev: float = 2.5,
                 min_fraction: float = 0.01) -> np.ndarray:
    """Energy windows ``[lines, 2]`` (eV) around the peaks of the summed spectrum.

    The peaks are searched in the sum of per-frame normalized spectra, so a rare bright state and a
    long dim one both show up.
    """
    merged = spectra.merged
    noise = np.sqrt(spectra.noise.variance(np.maximum(merged, 0)))
    snr = merged / noise
    # Frames weighted equally: sum of per-frame S/N spectra, clipped to ignore single hot pixels.
    score = np.clip(snr, -5, 50).sum(axis=0)
    centers = np.sort(find_zpls(spectra.energy_ev, score, np.sqrt(merged.shape[0]),
                                max_lines=max_lines, min_snr=6.0))
    windows = np.array([(c - half_width_mev / 1000, c + half_width_mev / 1000)
                        for c in centers]).reshape(-1, 2)
    # Drop windows holding less than min_fraction of the strongest window's light.
    light = np.array([merged[:, (spectra.energy_ev >= lo) & (spectra.energy_ev <= hi)].sum()
                      for lo, hi in windows])
    if light.size:
        windows = windows[light >= min_fraction * light.max()]
    return windows


def _merge_similar(feats: np.ndarray, labels: np.ndarray, fraction: float) -> np.ndarray:
    """Merge clusters whose mean photons differ by less than ``fraction`` in every window.

    Mixture components can split one physical state along slow drifts that are not state
    changes (e.g. the V + H sum follows the waveplate when g_V ≠ g_H); states that matter differ
    by a line switching on or off, or by a blinking step of tens of percent.
    """
    labels = labels.copy()
    while True:
        used = np.unique(labels)
        # Features are √(2x + r): photons ∝ feature² up to the read-noise offset.
        means = np.array([np.mean(feats[labels == j] ** 2, axis=0) for j in used])
        best, pair = np.inf, None
        for a in range(used.size):
            for b in range(a + 1, used.size):
                rel = np.max(np.abs(means[a] - means[b]) / np.maximum(
                    np.maximum(means[a], means[b]), 1e-12))
                if rel < fraction and rel < best:
                    best, pair = rel, (used[a], used[b])
        if pair is None:
            return labels
        labels[labels == pair[1]] = pair[0]


def cluster_frames(spectra: SpectralFrames, k_max: int = 5, seed: int = 0,
                   windows_ev: np.ndarray | None = None, merge_fraction: float = 0.2
                   ) -> SpectralStates:
    """Cluster frames into spectral states; the number of states is chosen by BIC, then states
    whose mean photons per line window differ by less than ``merge_fraction`` are merged."""
    windows = line_windows(spectra) if windows_ev is None else np.asarray(windows_ev, float)
    merged = spectra.merged / spectra.noise.adu_per_photon
    n_frames = merged.shape[0]
    if windows.shape[0] == 0:
        log.warning("no lines found: every frame is one state")
        return SpectralStates(np.zeros(n_frames, int), 1, windows, np.zeros((n_frames, 0)), ())
    feats = np.stack([merged[:, (spectra.energy_ev >= lo) & (spectra.energy_ev <= hi)].sum(axis=1)
                      for lo, hi in windows], axis=1)
    # Variance-stabilizing transform for EMCCD counts plus read noise: Var(x) ≈ 2x + r.
    n_pix = np.array([np.count_nonzero((spectra.energy_ev >= lo) & (spectra.energy_ev <= hi))
                      for lo, hi in windows])
    read = spectra.noise.read_var_adu2 / spectra.noise.adu_per_photon ** 2 * n_pix
    feats = np.sqrt(np.maximum(2 * feats + read, 0.0))
    fits = [fit_gaussian_mixture(feats, k, seed=seed)
            for k in range(1, min(k_max, max(n_frames // 10, 1)) + 1)]
    bics = tuple(f.bic for f in fits)
    best = fits[int(np.argmin(bics))]
    merged = _merge_similar(feats, best.labels, merge_fraction)
    # Order states by brightness (sum of features).
    used = np.unique(merged)
    brightness = np.array([feats[merged == j].sum(axis=1).mean() for j in used])
    order = used[np.argsort(-brightness)]
    remap = {int(j): i for i, j in enumerate(order)}
    labels = np.array([remap[int(j)] for j in merged])
    log.info("spectral states: %d (BIC over k=1..%d)", order.size, len(fits))
    return SpectralStates(labels=labels, n_states=int(order.size), windows_ev=windows,
                          features=feats, bic=bics)
