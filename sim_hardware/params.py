"""Parameters of the simulated bench: the sample and the optics.

These frozen dataclasses are the simulator's own vocabulary. They carry ``annotated_types``
constraints and ``__pydantic_config__`` so that the application's configuration model can embed
them and validate TOML against them (unknown keys are errors) without this package importing
the application. Numbers and conventions: ``shared/PHYSICS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge, Gt, Interval

_FORBID = {"extra": "forbid"}

Positive = Annotated[float, Gt(0)]
NonNegative = Annotated[float, Ge(0)]
Fraction = Annotated[float, Interval(ge=0, le=1)]


@dataclass(frozen=True)
class EmitterParams:
    """One emission center (one dot; a quantum-dot molecule has two)."""

    __pydantic_config__ = _FORBID

    #: Zero-phonon line energy of the neutral exciton (eV).
    zpl_ev: Annotated[float, Interval(gt=1.0, lt=4.0)] = 2.15
    #: In-plane emission dipole angle φ (degrees, mod 180) in the waveplate's frame.
    dipole_angle_deg: float = 30.0
    #: Degree of linear polarization p (0 = unpolarized, 1 = fully polarized).
    polarization_degree: Fraction = 0.7
    #: Lorentzian FWHM of the ZPL (meV).
    linewidth_mev: Positive = 0.4
    #: Areas of the CdSe and CdS LO-phonon replicas relative to the ZPL.
    phonon_weights: tuple[NonNegative, NonNegative] = (0.15, 0.1)
    #: Energies of those LO phonons (meV): the replicas sit this far below the ZPL (the paper:
    #: 27 meV for CdSe, 37 meV for CdS).
    phonon_energies_mev: tuple[Positive, Positive] = (27.0, 37.0)
    #: Neutral exciton decay components (ns) and their weights (normalized internally).
    lifetimes_ns: tuple[Positive, ...] = (1.5, 100.0)
    lifetime_weights: tuple[NonNegative, ...] = (0.3, 0.7)
    #: Shift of the negative trion's ZPL relative to the neutral one (meV; negative = red).
    trion_shift_mev: float = -15.0
    #: Single-exponential decay of the negative trion (ns).
    trion_lifetime_ns: Positive = 6.0
    #: Trion brightness relative to the neutral exciton.
    trion_brightness: Fraction = 0.4
    #: Biexciton binding energy (meV): the biexciton photon of a cascade comes at the exciton's
    #: ZPL minus this (positive = bound, red-shifted; negative = repulsive, blue-shifted). Small
    #: bare CdSe dots show the biexciton band 30–40 meV below the exciton ("Spectral and dynamical
    #: characterization of multiexcitons in colloidal CdSe semiconductor quantum dots"); the CdS
    #: shell of quasi-type-II CdSe/CdS dots weakens the attraction, and giant shells turn it
    #: repulsive (Morozov et al., Nanoscale 2023: biexciton blue-shifted). The paper's
    #: core/shell dots lie in between: a weakly bound default of a few meV.
    biexciton_binding_mev: float = 5.0
    #: Share of excitons that relax to this center (normalized over the emitters).
    branching: NonNegative = 1.0
    #: RMS of the spectral-diffusion jumps of the ZPL (meV).
    spectral_diffusion_mev: NonNegative = 0.0
    #: Mean rate of spectral-diffusion jumps (Hz).
    spectral_diffusion_rate_hz: NonNegative = 0.1
    #: Rates of charging (neutral → trion) and discharging (trion → neutral) (Hz); 0, 0 = never.
    charging_rate_hz: NonNegative = 0.0
    discharging_rate_hz: NonNegative = 0.0
    #: Rate of falling into a dark (trapped) state (Hz); it recovers at ``dark_recovery_rate_hz``.
    dark_rate_hz: NonNegative = 0.0
    dark_recovery_rate_hz: Positive = 1.0
    #: Permanent bleaching: the center goes dark for good at ``bleaching_time_s`` (simulation
    #: time, s, counted from the rig's start; None = never) or after an exponential time of rate
    #: ``bleaching_rate_hz`` (0 = never), whichever comes first.
    bleaching_time_s: NonNegative | None = None
    bleaching_rate_hz: NonNegative = 0.0

    def __post_init__(self) -> None:
        if len(self.lifetimes_ns) != len(self.lifetime_weights):
            raise ValueError(
                f"lifetimes_ns has {len(self.lifetimes_ns)} entries but lifetime_weights has "
                f"{len(self.lifetime_weights)}"
            )
        if sum(self.lifetime_weights) <= 0:
            raise ValueError("lifetime_weights must not all be zero")


@dataclass(frozen=True)
class SampleParams:
    """The simulated particle and what surrounds it."""

    __pydantic_config__ = _FORBID

    #: Emission centers: one = a dot, two = a dot molecule.
    emitters: tuple[EmitterParams, ...] = (EmitterParams(),)
    #: Stray-light background reaching each detector arm (counts/s per arm): in the APD arm it
    #: adds to the APDs' own dark counts; in the spectrograph arm it is spread evenly over
    #: ``OpticsParams.stray_light_band_nm`` and is unpolarized.
    background_cps: NonNegative = 200.0
    #: Detection efficiency of each arm (APD arm and spectrograph arm), 0–1.
    detection_efficiency: Fraction = 0.03
    #: Absorption cross-section at the laser wavelength (cm²): the saturation parameter. The mean
    #: number absorbed per pulse is ⟨N⟩ = σ · photons per pulse / spot area, and a pulse excites
    #: the particle with probability 1 − exp(−⟨N⟩).
    absorption_cross_section_cm2: Positive = 3e-15
    #: Laser spot area at the sample (µm²), for the photon fluence per pulse.
    spot_area_um2: Positive = 0.2
    #: Quantum yield of the neutral exciton (the trion's is ``trion_brightness`` times it, a dark
    #: center's is 0).
    quantum_yield: Fraction = 0.9
    #: Power-law exponent α of blinking dwell times, P(t) ∝ t^-α·exp(-t/τc); None = exponential.
    #: With a power law, a state's total leaving rate r sets the median dwell time (≈ 1/r before
    #: the truncation) instead of the mean.
    blinking_alpha: Annotated[float, Interval(gt=1.0, lt=3.0)] | None = None
    #: Truncation time τc of the power-law dwell-time distribution (s).
    blinking_cutoff_s: Positive = 30.0
    #: Shift of one center's ZPL for each *other* center that is charged (meV; negative = red).
    dimer_coupling_mev: float = -0.5
    #: Rate at which every neutral center charges at the same instant (Hz), while at least two
    #: are neutral (the paper's "both dots charge at once"); 0 = never.
    joint_charging_rate_hz: NonNegative = 0.0
    #: Distance between neighbouring centers along the dimer axis (nm): center ``i`` sits at
    #: ``i · dimer_spacing_nm``.
    dimer_spacing_nm: Positive = 8.0
    #: A surface charge at axial distance ``d`` from a center shifts that center's ZPL by
    #: ``surface_charge_shift_mev · r² / (r² + d²)`` (meV; negative = red), ``r`` =
    #: ``surface_charge_range_nm``, the charge's distance from the center's axis (core to surface):
    #: the linear Stark shift in the charge's field. With the defaults the near center moves by
    #: 8 meV and the far one by ~1 meV (the paper's Fig. 5: > 5 meV, up to ~15, and ~1 meV).
    surface_charge_shift_mev: float = -8.0
    surface_charge_range_nm: Positive = 3.0
    #: Rate at which the surface charge hops (next to another center, or away) (Hz).
    surface_charge_rate_hz: NonNegative = 0.0
    #: Probability that a center's charging (discharging) moves the surface charge next to
    #: *another* center at the same instant (the paper's simultaneous large jump of the other
    #: center, Fig. 4 events B, D, E).
    surface_charge_on_charging: Fraction = 0.0
    surface_charge_on_discharging: Fraction = 0.0
    #: Where next to a center a moving surface charge lands along the axis: Gaussian spread
    #: around the center's position (nm; 0 = right at it).
    surface_charge_spread_nm: NonNegative = 0.0
    #: Correlation coefficient of the centers' spectral diffusion (−1 to 1): each center's offset
    #: mixes a jump process common to all centers (weight |ρ|, jumping at |ρ| times the mean of
    #: the centers' rates) with its own (weight 1 − |ρ|, at 1 − |ρ| times its rate); centers after
    #: the first take the common part with the sign of ρ. No effect unless two centers diffuse.
    spectral_diffusion_correlation: Annotated[float, Interval(ge=-1, le=1)] = 0.0
    #: Biexciton-to-exciton quantum-yield ratio QY_XX/QY_X: sets g²(0) (≈ this ratio at low
    #: excitation, 2b/(1+b)² in saturation).
    biexciton_yield: Fraction = 0.1
    #: Biexciton decay time (Auger-limited, ns): the exciton photon of a cascade follows it.
    biexciton_lifetime_ns: Positive = 0.2
    #: Older form of the biexciton binding energy, for every center at once: the biexciton
    #: photon's shift from the exciton ZPL (meV; negative = bound, red). When given, it replaces
    #: each emitter's ``biexciton_binding_mev`` by its negative; None = use those.
    biexciton_shift_mev: float | None = None

    def biexciton_offset_mev(self, center: int) -> float:
        """Energy of a center's biexciton photon relative to its exciton ZPL (meV)."""
        if self.biexciton_shift_mev is not None:
            return self.biexciton_shift_mev
        return -self.emitters[center].biexciton_binding_mev

    def center_position_nm(self, center: int) -> float:
        """Position of a center along the dimer axis (nm)."""
        return center * self.dimer_spacing_nm

    def surface_charge_shift_at_mev(self, distance_nm: float) -> float:
        """ZPL shift of a center with a surface charge at this axial distance from it (meV)."""
        r2 = self.surface_charge_range_nm ** 2
        return self.surface_charge_shift_mev * r2 / (r2 + distance_nm ** 2)

@dataclass(frozen=True)
class OpticsParams:
    """The optical path and detectors of the simulated bench."""

    __pydantic_config__ = _FORBID

    #: V and H channel transmissions after the polarizing beam splitter (their ratio is g_V/g_H).
    transmission_v: Fraction = 1.0
    transmission_h: Fraction = 0.9
    #: APD timing jitter (Gaussian IRF FWHM, ps), dead time (ns), afterpulsing probability per
    #: click (the afterpulse follows the dead time by ``Exp(apd_afterpulse_delay_ns)``) and dark
    #: count rate of each APD (counts/s).
    apd_jitter_fwhm_ps: NonNegative = 350.0
    apd_dead_time_ns: NonNegative = 22.0
    apd_afterpulsing: Annotated[float, Interval(ge=0, lt=0.5)] = 0.005
    apd_afterpulse_delay_ns: Positive = 50.0
    apd_dark_cps: NonNegative = 25.0
    #: Spectral resolution of the spectrograph (Gaussian FWHM in pixels, slit image).
    resolution_fwhm_px: Positive = 1.5
    #: Vertical spread of each replica on the sensor (Gaussian sigma, rows).
    spot_sigma_rows: Positive = 2.0
    #: Rows where the V and H replicas of the spectrum fall on the sensor.
    v_row: Annotated[int, Ge(0)] = 480
    h_row: Annotated[int, Ge(0)] = 540
    #: Sustained time-tagger throughput (tags/s), and the tags its buffer absorbs above that rate
    #: before the stream overflows (overflow begin, missed events per channel, overflow end).
    tagger_max_rate_hz: Positive = 9e6
    tagger_buffer_tags: Annotated[int, Ge(0)] = 64_000_000
    #: Wavelength band (nm) over which the spectrograph arm's stray light is spread (the
    #: longpass filter edge to the end of the detection band).
    stray_light_band_nm: tuple[Positive, Positive] = (542.0, 700.0)

    def __post_init__(self) -> None:
        low, high = self.stray_light_band_nm
        if not low < high:
            raise ValueError(f"stray_light_band_nm must be increasing, got {low}, {high}")
    #: Delay of the APD signal after the laser sync (cables, optical path), ns.
    apd_delay_ns: NonNegative = 5.0
    #: Seconds the EMCCD sensor takes to cool by 1/e of the remaining way to its setpoint.
    camera_cooling_tau_s: Positive = 60.0
    #: Whether the simulated sensor is already at its setpoint when the rig connects.
    camera_start_cold: bool = True
    #: Dead time between exposures of a kinetic series (frame transfer), s.
    camera_frame_gap_s: NonNegative = 0.002
    #: EMCCD noise chain: quantum efficiency, clock-induced charge (e⁻/pixel/frame), dark current
    #: at −80 °C (e⁻/pixel/s, doubling every 7 °C), read noise (e⁻ rms after gain), e⁻ per ADU,
    #: bias offset (ADU).
    emccd_quantum_efficiency: Fraction = 0.9
    emccd_cic_per_pixel: NonNegative = 0.005
    emccd_dark_e_per_s: NonNegative = 2.5e-4
    emccd_read_noise_e: NonNegative = 45.0
    emccd_electrons_per_adu: Positive = 12.0
    emccd_bias_adu: NonNegative = 200.0


@dataclass(frozen=True)
class BenchParams:
    """Everything the bench needs besides the instruments' own settings."""

    sample: SampleParams = field(default_factory=SampleParams)
    optics: OpticsParams = field(default_factory=OpticsParams)
    seed: int = 0
    #: Virtual seconds per wall second, or None for as fast as possible.
    speed: float | None = None


__all__ = ["BenchParams", "EmitterParams", "OpticsParams", "SampleParams"]
