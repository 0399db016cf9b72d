"""The simulated rig: one simulated instrument per interface, all on one simulated bench
(``sim_hardware``), built (not connected) from a configuration."""

from __future__ import annotations

from cryoscope.config import Config
from cryoscope.rig import Rig

__all__ = ["build_simulated_rig"]


def build_simulated_rig(config: Config) -> Rig:
    """Every simulated instrument on one bench, unconnected, on the bench's clock, with the
    configured faults (``[[simulation.faults]]``) installed."""
    from sim_hardware.bench import Bench, Wiring
    from sim_hardware.camera import SimCamera
    from sim_hardware.clock import SimClock
    from sim_hardware.cryostat import SimCryostat
    from sim_hardware.faults import Fault, install
    from sim_hardware.laser import SimLaser
    from sim_hardware.params import BenchParams
    from sim_hardware.spectrograph import SimSpectrograph
    from sim_hardware.stage import SimRotationStage
    from sim_hardware.tagger import SimTimeTagger
    from sim_hardware.truth import simulation_truth

    ch, sim = config.channels, config.simulation
    bench = Bench(
        BenchParams(config.sample, config.optics, sim.seed, sim.speed_factor),
        Wiring(ch.apd, ch.laser_sync, ch.camera_fire, ch.stage_motion, ch.apd2,
               config.stage.waveplate_zero_deg),
    )
    install(bench, [Fault(f.instrument, f.kind, f.at_s) for f in sim.faults])
    spectrograph = SimSpectrograph(bench, config.spectrograph.gratings_lines_per_mm,
                                   config.spectrograph.focal_length_mm,
                                   config.spectrograph.inclusion_angle_deg)
    cam = config.camera

    return Rig(
        config=config,
        clock=SimClock(bench, sim.speed_factor),
        cryostat=SimCryostat(bench, config.cryostat.target_temperature_k),
        laser=SimLaser(bench, config.laser.repetition_rate_hz, config.laser.power_nw,
                       config.laser.wavelength_nm, config.laser.takes_remote_settings),
        stage=SimRotationStage(bench, config.stage.max_velocity_deg_s,
                               config.stage.acceleration_deg_s2),
        spectrograph=spectrograph,
        camera=SimCamera(bench, spectrograph, (cam.sensor_rows, cam.sensor_columns),
                         cam.pixel_width_um, cam.readout_rate_mhz),
        tagger=SimTimeTagger(bench),
        truth=lambda start_s, end_s: simulation_truth(bench, start_s, end_s),
    )
