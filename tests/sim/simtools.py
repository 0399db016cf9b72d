"""Helpers of the simulator's physics tests: configurations, file readers, fits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from cryoscope.config import Config, load_config
from sim_hardware.params import EmitterParams

HC_EV_NM = 1239.84193


def make_config(emitters: list[dict[str, Any]] | None = None, **sections: dict[str, Any]) -> Config:
    """The default configuration with some keys of some sections replaced.

    ``emitters`` replaces ``[[sample.emitters]]``; each dict overrides a *steady* emitter (the
    built-in defaults: the default particle's lines without its blinking).
    """
    cfg = load_config()
    if emitters is not None:
        steady = asdict(EmitterParams())
        sections.setdefault("sample", {})
        sections["sample"] = {**sections["sample"],
                              "emitters": [{**steady, **e} for e in emitters]}
    for section, values in sections.items():
        cfg = cfg.with_overrides(section, **values)
    return cfg


@dataclass
class Measurement:
    """What the physics tests read from a measurement file."""

    path: Path
    timestamps_ps: npt.NDArray[np.int64]
    channels: npt.NDArray[np.int32]
    frames: npt.NDArray[np.uint16]
    wavelength_nm: npt.NDArray[np.float64]
    period_ps: int
    apd: int
    laser_sync: int
    camera_fire: int
    stage_motion: int
    bias_adu: float
    truth: dict[str, npt.NDArray[Any]]
    stage: dict[str, npt.NDArray[np.float64]]
    waveplate_zero_deg: float
    start_angle_deg: float

    @property
    def energy_ev(self) -> npt.NDArray[np.float64]:
        return HC_EV_NM / self.wavelength_nm

    def tags(self, channel: int) -> npt.NDArray[np.int64]:
        return self.timestamps_ps[self.channels == channel]

    def exposures_ps(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        n = self.frames.shape[0]
        return self.tags(self.camera_fire)[:n], self.tags(-self.camera_fire)[:n]

    def apd_counts_per_frame(self) -> npt.NDArray[np.int64]:
        starts, ends = self.exposures_ps()
        clicks = self.tags(self.apd)
        return np.searchsorted(clicks, ends) - np.searchsorted(clicks, starts)

    def photon_delays_ps(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """APD click times and their delays after their own laser pulse (conditional filter:
        ``T_rep − (t_sync_next − t_photon)``)."""
        clicks = self.tags(self.apd)
        sync = self.tags(self.laser_sync)
        nxt = np.searchsorted(sync, clicks, side="left")
        ok = nxt < sync.shape[0]
        clicks = clicks[ok]
        return clicks, self.period_ps - (sync[nxt[ok]] - clicks)

    def signal(self) -> npt.NDArray[np.float64]:
        """Bias-subtracted ADU per frame, track and column."""
        return self.frames.astype(np.float64) - self.bias_adu

    def state_at(self, t_ps: npt.NDArray[np.int64], center: int = 0) -> npt.NDArray[np.int8]:
        """The true state of a center at tagger times ``t_ps``."""
        starts = self.truth["truth_time_s"]
        k = np.searchsorted(starts, t_ps / 1e12, side="right") - 1
        return self.truth["truth_state"][np.clip(k, 0, None), center]

    def moving_frames(self) -> npt.NDArray[np.bool_]:
        """Frames during which the waveplate moved (any overlap with a motion interval)."""
        starts, ends = self.exposures_ps()
        up, down = self.tags(self.stage_motion), self.tags(-self.stage_motion)
        moving = np.zeros(starts.shape[0], bool)
        for a, b in zip(up, down[:up.shape[0]], strict=False):
            moving |= (starts < b) & (ends > a)
        return moving

    def waveplate_deg_per_frame(self) -> npt.NDArray[np.float64]:
        """Waveplate angle θ (stage angle − zero) at the middle of each frame (still frames)."""
        starts, ends = self.exposures_ps()
        mid = (starts + ends) / 2
        down = self.tags(-self.stage_motion).astype(np.float64)
        reached = self.stage["reached_deg"]
        k = np.searchsorted(down, mid) - 1
        angle = np.where(k >= 0, reached[np.clip(k, 0, None)], self.start_angle_deg)
        return angle - self.waveplate_zero_deg


def read_measurement(path: Path) -> Measurement:
    with h5py.File(path, "r") as f:
        ch = f["channels"].attrs
        optics = load_optics(f)
        return Measurement(
            path=path,
            timestamps_ps=f["tags/timestamp_ps"][:],
            channels=f["tags/channel"][:],
            frames=f["camera/frames"][:],
            wavelength_nm=f["spectrograph/wavelength_nm"][:],
            period_ps=int(ch["laser_period_ps"]),
            apd=int(ch["apd"]), laser_sync=int(ch["laser_sync"]),
            camera_fire=int(ch["camera_fire"]), stage_motion=int(ch["stage_motion"]),
            bias_adu=float(optics["emccd_bias_adu"]),
            truth={k: v[:] for k, v in f["simulation"].items()},
            stage={k: v[:] for k, v in f["stage"].items()},
            waveplate_zero_deg=float(f["stage"].attrs["waveplate_zero_deg"]),
            start_angle_deg=float(f["stage"].attrs["start_angle_deg"]),
        )


def load_optics(f: h5py.File) -> dict[str, Any]:
    import json

    return dict(json.loads(f["simulation"].attrs["optics_json"]))


def spectrum_peak_ev(energy_ev: npt.NDArray[np.float64], counts: npt.NDArray[np.float64],
                     window_ev: tuple[float, float], half_width: int = 3) -> float:
    """Centroid of the highest peak of a spectrum inside an energy window."""
    inside = np.flatnonzero((energy_ev >= window_ev[0]) & (energy_ev <= window_ev[1]))
    top = inside[np.argmax(counts[inside])]
    sel = slice(max(top - half_width, 0), top + half_width + 1)
    weights = np.clip(counts[sel], 0, None)
    return float(np.sum(energy_ev[sel] * weights) / np.sum(weights))


def fit_decay_ns(delays_ps: npt.NDArray[np.int64], taus_guess_ns: tuple[float, ...],
                 bin_ns: float = 0.1, range_ns: tuple[float, float] = (0.0, 990.0),
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Binned Poisson maximum-likelihood fit of exponentials convolved with a Gaussian IRF.

    Model per bin: background + Σ Aᵢ · exGauss(t; t0, σ, τᵢ), IRF position t0 and width σ free.
    Returns the lifetimes (ns, ascending) and their amplitude fractions.
    """
    from scipy.optimize import minimize
    from scipy.special import log_ndtr

    edges = np.arange(range_ns[0], range_ns[1] + bin_ns / 2, bin_ns)
    counts, _ = np.histogram(delays_ps / 1e3, bins=edges)
    t = (edges[:-1] + edges[1:]) / 2
    n_exp = len(taus_guess_ns)
    total = counts.sum()
    t0_guess = t[np.argmax(counts)] - 0.2
    tail = counts[-200:].mean()

    def unpack(x: npt.NDArray[np.float64]) -> tuple[Any, ...]:
        amps = np.exp(x[:n_exp])
        taus = np.exp(x[n_exp:2 * n_exp])
        t0, sigma, bg = x[2 * n_exp], np.exp(x[2 * n_exp + 1]), np.exp(x[2 * n_exp + 2])
        return amps, taus, t0, sigma, bg

    def expected(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        amps, taus, t0, sigma, bg = unpack(x)
        mu = np.full(t.shape, bg)
        for a, tau in zip(amps, taus, strict=True):
            log_f = (-np.log(tau) + sigma**2 / (2 * tau**2) - (t - t0) / tau
                     + log_ndtr((t - t0) / sigma - sigma / tau))
            mu += a * bin_ns * np.exp(log_f)
        return mu

    def nll(x: npt.NDArray[np.float64]) -> float:
        mu = expected(x)
        return float(np.sum(mu - counts * np.log(mu)))

    x0 = np.concatenate([np.log(np.full(n_exp, total / n_exp)), np.log(taus_guess_ns),
                         [t0_guess, np.log(0.15), np.log(max(tail, 0.1))]])
    res = minimize(nll, x0, method="Nelder-Mead",
                   options={"maxiter": 20000, "maxfev": 20000, "xatol": 1e-6, "fatol": 1e-6})
    res = minimize(nll, res.x, method="L-BFGS-B")
    amps, taus, *_ = unpack(res.x)
    order = np.argsort(taus)
    return taus[order], amps[order] / amps.sum()


def stream_tags(rig: Any, channels: list[int], seconds: float,
                step_s: float = 0.1) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Stream the tagger for ``seconds`` of rig time; all ordinary tags (times, channels)."""
    rig.tagger.start_stream(channels)
    times, chans = [], []
    t_end = rig.clock.now() + seconds
    while rig.clock.now() < t_end:
        rig.clock.sleep(step_s)
        block = rig.tagger.read_block()
        normal = block.event_types == 0
        times.append(block.timestamps_ps[normal])
        chans.append(block.channels[normal])
    rig.tagger.stop_stream()
    return np.concatenate(times), np.concatenate(chans)
