"""The spectrograph arm: line shape with LO-phonon replicas, and the grating's calibration."""

from __future__ import annotations

import numpy as np
import pytest
from simtools import HC_EV_NM, make_config, spectrum_peak_ev

ZPL_EV = 2.15
WEIGHTS = (0.2, 0.15)


@pytest.fixture(scope="module")
def monomer(measure):
    cfg = make_config(
        emitters=[{"zpl_ev": ZPL_EV, "phonon_weights": list(WEIGHTS), "linewidth_mev": 0.4,
                   "spectral_diffusion_mev": 0.0}],
        simulation={"seed": 31},
    )
    return measure(cfg, frames=40, exposure_s=0.5)


def test_zpl_lands_on_its_true_energy(monomer) -> None:
    spectrum = monomer.signal().sum(axis=(0, 1))
    peak = spectrum_peak_ev(monomer.energy_ev, spectrum, (ZPL_EV - 0.01, ZPL_EV + 0.01))
    assert peak == pytest.approx(ZPL_EV, abs=0.2e-3)


@pytest.mark.parametrize(("shift_mev", "weight"), [(-27.0, WEIGHTS[0]), (-37.0, WEIGHTS[1])])
def test_phonon_replicas_sit_at_their_lo_energies(monomer, shift_mev: float,
                                                  weight: float) -> None:
    energy = monomer.energy_ev
    spectrum = monomer.signal().sum(axis=(0, 1))
    zpl = spectrum_peak_ev(energy, spectrum, (ZPL_EV - 0.01, ZPL_EV + 0.01))
    expected = zpl + shift_mev * 1e-3
    replica = spectrum_peak_ev(energy, spectrum, (expected - 0.004, expected + 0.004))
    assert (replica - zpl) * 1e3 == pytest.approx(shift_mev, abs=0.3)

    def area(center: float) -> float:
        return float(spectrum[np.abs(energy - center) < 0.004].sum())

    # Lorentzian areas within ±4 meV: 90.5 % of a replica (FWHM 1.2 meV), 96.8 % of the ZPL
    assert area(expected) / area(zpl) == pytest.approx(weight * 0.905 / 0.968, rel=0.1)


def test_calibration_is_the_grating_equation(monomer) -> None:
    wl = monomer.wavelength_nm
    assert wl.shape == (1024,)
    assert np.all(np.diff(wl) > 0)
    assert (wl[511] + wl[512]) / 2 == pytest.approx(580.0, abs=0.01)
    mev_per_px = -np.gradient(HC_EV_NM / wl)[512] * 1e3
    assert 0.2 < mev_per_px < 0.3  # 600 l/mm, 328 mm, 13 µm pixels around 580 nm


def test_finer_grating_moves_the_line_to_its_new_pixel(measure) -> None:
    cfg = make_config(
        emitters=[{"zpl_ev": ZPL_EV, "spectral_diffusion_mev": 0.0}],
        spectrograph={"grating_lines_per_mm": 1200.0, "center_wavelength_nm": 578.0},
        simulation={"seed": 32},
    )
    m = measure(cfg, frames=6, exposure_s=0.5)
    dispersion = -np.gradient(m.energy_ev)[512] * 1e3
    assert dispersion < 0.13  # about half of the 600 l/mm grating's
    spectrum = m.signal().sum(axis=(0, 1))
    peak = spectrum_peak_ev(m.energy_ev, spectrum, (ZPL_EV - 0.005, ZPL_EV + 0.005))
    assert peak == pytest.approx(ZPL_EV, abs=0.1e-3)
    # the resolution: the ZPL's width on the sensor is the Lorentzian and the slit image
    half = spectrum.max() / 2
    above = np.flatnonzero(spectrum > half)
    fwhm_mev = (above.max() - above.min() + 1) * dispersion
    assert 0.3 < fwhm_mev < 0.8


def test_image_readout_shows_the_v_and_h_replicas_on_their_rows(measure) -> None:
    cfg = make_config(camera={"readout": "image"},
                      emitters=[{"dipole_angle_deg": 0.0, "polarization_degree": 0.9}],
                      simulation={"seed": 33})
    m = measure(cfg, frames=2, exposure_s=0.5)
    assert m.frames.shape == (2, 1024, 1024)
    rows = m.signal().sum(axis=(0, 2))
    optics = cfg.optics
    middle = (optics.v_row + optics.h_row) // 2
    v_peak = np.argmax(rows[:middle])
    h_peak = middle + np.argmax(rows[middle:])
    assert abs(v_peak - optics.v_row) <= 1 and abs(h_peak - optics.h_row) <= 1
    # waveplate at 0° and dipole at 0°: mostly V (I_V/I_H = t_V(1+p)/(t_H(1−p)))
    band = slice(-6, 7)
    v = rows[optics.v_row + band.start: optics.v_row + band.stop].sum()
    h = rows[optics.h_row + band.start: optics.h_row + band.stop].sum()
    assert v / h > 5
