"""A small, exactly known measurement file written to the format contract (docs/file-format.md).

Independent of the simulator: every photon, frame and stage move is drawn here from stated
parameters, so tests can compare the analysis with the truth. States are constant per frame.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

HC = 1239.84193


@dataclass(frozen=True)
class Center:
    """One emission center; rates are APD counts/s while neutral."""

    zpl_ev: float = 2.15
    phi_deg: float = 30.0
    p: float = 0.7
    fwhm_mev: float = 0.4
    replicas: tuple[float, float] = (0.15, 0.1)
    lifetimes_ns: tuple[float, ...] = (1.5, 100.0)
    weights: tuple[float, ...] = (0.3, 0.7)
    trion_shift_mev: float = -15.0
    trion_tau_ns: float = 6.0
    trion_brightness: float = 0.4
    rate_cps: float = 20000.0


@dataclass(frozen=True)
class SyntheticRun:
    centers: tuple[Center, ...] = (Center(),)
    frames: int = 40
    exposure_s: float = 0.5
    gap_s: float = 0.002
    dwell_s: float = 10.0
    step_deg: float = 5.0
    waveplate_zero_deg: float = 3.0
    start_angle_deg: float = 3.0
    period_ps: int = 1_000_000
    conditional: bool = True
    irf_sigma_ps: float = 150.0
    irf_offset_ps: float = 3000.0
    background_cps: float = 200.0
    spectro_photons_per_count: float = 0.25  # spectrograph photons per APD count
    transmission_v: float = 1.0
    transmission_h: float = 0.9
    em_gain: float = 50.0
    electrons_per_adu: float = 4.0
    read_noise_e: float = 45.0
    resolution_fwhm_px: float = 1.5
    cosmic_rays: int = 3
    #: per frame and center: 0 neutral, 1 charged, 2 dark; None = all neutral
    frame_state: np.ndarray | None = field(default=None, compare=False)
    seed: int = 0


def _energy_axis() -> np.ndarray:
    return np.linspace(545.0, 614.0, 1024)


def _line_shape(e_ev: np.ndarray, zpl: float, fwhm_mev: float, replicas: tuple[float, float],
                res_mev: float) -> np.ndarray:
    from scipy.special import voigt_profile

    e = e_ev * 1000
    sig = res_mev / 2.3548
    shape = voigt_profile(e - zpl * 1000, sig, fwhm_mev / 2)
    for s, w in zip((27.0, 37.0), replicas, strict=True):
        shape += w * voigt_profile(e - (zpl * 1000 - s), sig, fwhm_mev / 2)
    return shape / shape.sum()


def write_synthetic(path: Path, run: SyntheticRun) -> Path:
    rng = np.random.default_rng(run.seed)
    nc = len(run.centers)
    states = (np.zeros((run.frames, nc), np.int8) if run.frame_state is None
              else np.asarray(run.frame_state, np.int8))
    ps = 1e12
    t0 = 0.1
    starts = t0 + np.arange(run.frames) * (run.exposure_s + run.gap_s)
    stops = starts + run.exposure_s
    end = stops[-1] + 0.05
    # Stage moves every dwell, 1 s long.
    move_starts = np.arange(t0 + run.dwell_s, end, run.dwell_s)
    move_stops = move_starts + 1.0
    reached = run.start_angle_deg + run.step_deg * np.arange(1, move_starts.size + 1)
    rest = np.concatenate([[run.start_angle_deg], reached])

    def theta_at(t: float) -> float:
        k = np.searchsorted(move_starts, t, side="right")
        if k > 0 and t < move_stops[k - 1]:
            frac = (t - move_starts[k - 1]) / 1.0
            ang = rest[k - 1] + (rest[k] - rest[k - 1]) * frac
        else:
            ang = rest[k]
        return float(ang - run.waveplate_zero_deg)

    wl = _energy_axis()
    e = HC / wl
    res_mev = run.resolution_fwhm_px * float(np.mean(np.abs(np.diff(e)))) * 1000
    times, delays = [], []
    frames = np.empty((run.frames, 2, wl.size), np.uint16)
    zpl_truth = np.zeros((run.frames, nc))
    spans = np.concatenate([[0.0], starts[1:], [end]])
    for k in range(run.frames):
        lo, hi = spans[k], spans[k + 1]
        theta = theta_at(0.5 * (starts[k] + stops[k]))
        spec_v = np.zeros(wl.size)
        spec_h = np.zeros(wl.size)
        for c, center in enumerate(run.centers):
            st = states[k, c]
            zpl = center.zpl_ev + (center.trion_shift_mev / 1000 if st == 1 else 0.0)
            zpl_truth[k, c] = zpl
            if st == 2:
                continue
            rate = center.rate_cps * (center.trion_brightness if st == 1 else 1.0)
            n = rng.poisson(rate * (hi - lo))
            t = lo + rng.random(n) * (hi - lo)
            if st == 1:
                d = rng.exponential(center.trion_tau_ns * 1000, n)
            else:
                comp = rng.choice(len(center.weights), n, p=np.array(center.weights) /
                                  sum(center.weights))
                d = rng.exponential(np.array(center.lifetimes_ns)[comp] * 1000)
            pulse = np.floor(t * ps / run.period_ps).astype(np.int64)
            d = d + run.irf_offset_ps + rng.normal(0, run.irf_sigma_ps, n)
            times.append(pulse * run.period_ps + d.astype(np.int64))
            delays.append(d)
            n_spec = rng.poisson(rate * run.exposure_s * run.spectro_photons_per_count)
            m = center.p * np.cos(np.radians(4 * theta - 2 * center.phi_deg))
            shape = _line_shape(e, zpl, center.fwhm_mev, center.replicas, res_mev)
            nv = rng.binomial(n_spec, (1 + m) / 2 * run.transmission_v)
            nh = rng.binomial(n_spec - nv, (1 - m) / 2 * run.transmission_h /
                              max(1 - (1 + m) / 2 * run.transmission_v, 1e-12))
            spec_v += rng.multinomial(nv, shape)
            spec_h += rng.multinomial(nh, shape)
        for track, spec in enumerate((spec_v, spec_h)):
            el = rng.gamma(np.maximum(spec, 1e-12), run.em_gain) * (spec > 0)
            el += rng.normal(0, run.read_noise_e, wl.size)
            adu = el / run.electrons_per_adu + 200
            frames[k, track] = np.clip(np.round(adu), 0, 65535).astype(np.uint16)
    for _ in range(run.cosmic_rays):
        k, tr, px = rng.integers(run.frames), rng.integers(2), rng.integers(wl.size)
        frames[k, tr, px] = min(int(frames[k, tr, px]) + 20000, 65535)
    n_bg = rng.poisson(run.background_cps * end)
    times.append((rng.random(n_bg) * end * ps).astype(np.int64))
    t_apd = np.sort(np.concatenate(times))
    t_apd = t_apd[t_apd > 0]
    if run.conditional:
        t_sync = (t_apd // run.period_ps + 1) * run.period_ps
        t_sync = np.unique(t_sync)
    else:
        t_sync = np.arange(0, int(end * ps), run.period_ps, dtype=np.int64)
    edges = [
        (t_apd, 1), (t_sync, 2), ((starts * ps).astype(np.int64), 3),
        ((stops * ps).astype(np.int64), -3), ((move_starts * ps).astype(np.int64), 4),
        ((move_stops * ps).astype(np.int64), -4)]
    ts = np.concatenate([t for t, _ in edges])
    ch = np.concatenate([np.full(t.size, c, np.int32) for t, c in edges])
    order = np.lexsort((ch, ts))
    ts, ch = ts[order], ch[order]
    with h5py.File(path, "w") as h5:
        h5.attrs.update(format="cryoscope", format_version=1, status="complete",
                        software_version="synthetic", duration_s=float(stops[-1] - starts[0]))
        h5["tags/timestamp_ps"] = ts
        h5["tags/channel"] = ch
        h5.create_group("channels").attrs.update(
            apd=1, laser_sync=2, camera_fire=3, stage_motion=4,
            conditional_filter=run.conditional, laser_period_ps=run.period_ps)
        cam = h5.create_group("camera")
        cam["frames"] = frames
        cam.attrs.update(track_names=["V", "H"], exposure_s=run.exposure_s,
                         em_gain=run.em_gain, readout="tracks")
        h5["spectrograph/wavelength_nm"] = wl
        stage = h5.create_group("stage")
        stage.attrs.update(waveplate_zero_deg=run.waveplate_zero_deg,
                           start_angle_deg=run.start_angle_deg)
        stage["move_start_s"] = move_starts
        stage["move_end_s"] = move_stops
        stage["target_deg"] = reached
        stage["reached_deg"] = reached
        sim = h5.create_group("simulation")
        sim["frame_state"] = states
        sim["frame_zpl_ev"] = zpl_truth
        sim.attrs["sample_json"] = json.dumps({"emitters": [asdict(c) for c in run.centers]})
        sim.attrs["optics_json"] = json.dumps({"transmission_v": run.transmission_v,
                                               "transmission_h": run.transmission_h})
    return path


def blinking_states(frames: int, centers: int, rng: np.random.Generator,
                    p_switch: float = 0.1, allowed: tuple[int, ...] = (0, 1)) -> np.ndarray:
    """Per-frame states of each center: a Markov chain over ``allowed`` states."""
    out = np.zeros((frames, centers), np.int8)
    for c in range(centers):
        s = allowed[0]
        for k in range(frames):
            if rng.random() < p_switch:
                s = allowed[int(rng.integers(len(allowed)))]
            out[k, c] = s
    return out
